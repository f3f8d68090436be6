"""``harness compare``: a candidate run against a baseline, case by case."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import UsageError, fraction, writing


def add_parser(sub: Any) -> None:
    cmp = sub.add_parser("compare", help="compare a candidate run with a baseline, case by case")
    cmp.add_argument("baseline", help="a run folder, a results directory, or a baseline name "
                                      "(results/baselines/NAME)")
    cmp.add_argument("candidate", help="a run folder or a results directory")
    cmp.add_argument("--threshold", type=fraction, default=0.05, metavar="PCT",
                     help="smallest slowdown that counts, e.g. 5%% or 0.05 (default 5%%)")
    cmp.add_argument("--alpha", type=float, default=0.01, metavar="A",
                     help="false-discovery rate across cases (default 0.01)")
    cmp.add_argument("--memory-threshold", type=fraction, metavar="PCT",
                     help="flag a peak-memory growth beyond this as a regression (default: "
                          "memory is not judged)")
    cmp.add_argument("--energy-threshold", type=fraction, metavar="PCT",
                     help="flag an energy-per-item growth beyond this as a regression (default: "
                          "energy is not judged)")
    cmp.add_argument("--max-missing", type=fraction, default=0.0, metavar="PCT",
                     help="fail (exit 1, verdict missing) when the candidate lacks more than "
                          "this fraction of the cases the baseline measured (default 0%%: a "
                          "case that stopped running fails the comparison)")
    cmp.add_argument("--markdown", type=Path, metavar="FILE",
                     help="also write the comparison as Markdown (CI summary, PR comment)")
    cmp.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                     help="where baseline names are looked up (default: results/)")


def command(args: argparse.Namespace) -> int:
    from harness import baselines
    from harness.compare import Options, compare
    from harness.profile_diff import diff_profiles
    from harness.profiling.ops import read_ops
    from harness.report.comparison import render_markdown, render_text
    from harness.results import read_rows, run_folders

    try:
        options = Options(threshold=args.threshold, alpha=args.alpha,
                          memory_threshold=args.memory_threshold,
                          energy_threshold=args.energy_threshold,
                          max_missing=args.max_missing)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    baseline = baselines.resolve(args.baseline, args.results)
    runs = [list(run_folders([path])) for path in (baseline, Path(args.candidate))]
    rows = [[row for run in side for row in read_rows(run)] for side in runs]
    report = compare(rows[0], rows[1], options)
    ops = [[op for run in side for op in read_ops(run)] for side in runs]
    where = diff_profiles(report.comparisons, ops[0], ops[1])
    print(render_text(report, where))
    if args.markdown:
        title = f"Benchmark comparison: {args.candidate} against {args.baseline}"
        with writing(args.markdown):
            args.markdown.write_text(render_markdown(report, title, where), encoding="utf-8")
    return 1 if report.failed else 0
