"""``harness ab``: two versions of a suite timed interleaved, and their paired comparison."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from harness.cli.common import (
    UsageError,
    add_selection,
    fraction,
    parse_params,
    positive_seconds,
    seconds,
    writing,
)
from harness.config import RunConfig, TimingOptions


def add_parser(sub: Any) -> None:
    ab = sub.add_parser("ab", help="time two versions of a suite interleaved and compare them")
    ab.add_argument("baseline", help="the baseline suite: a name, dotted module or .py file")
    ab.add_argument("candidate", help="the candidate suite, with the same workloads")
    add_selection(ab)
    ab.add_argument("--full", action="store_true", help="the full grids (default: quick)")
    ab.add_argument("--repeat", type=int, default=5, metavar="N",
                    help="repetitions, each case in a fresh worker every time (default 5)")
    ab.add_argument("--min-time", type=seconds, metavar="S", help="minimum sampling time per side")
    ab.add_argument("--out", type=Path, default=Path("results"), metavar="DIR",
                    help="results directory (default: results/)")
    ab.add_argument("--no-isolate", dest="isolate", action="store_false",
                    help="run every pair in this process")
    ab.add_argument("--timeout", type=positive_seconds, metavar="S",
                    help="kill a pair after S seconds")
    ab.add_argument("--threshold", type=fraction, default=0.02, metavar="PCT",
                    help="smallest change flagged (default 2%%: pairs cancel drift; the spread "
                         "of the repetitions' paired ratios raises it where larger)")
    ab.add_argument("--alpha", type=float, default=0.01,
                    help="false-discovery rate across cases (default 0.01)")
    ab.add_argument("--max-missing", type=fraction, default=0.0, metavar="PCT",
                    help="fail when the candidate side lacks more than this fraction of the "
                         "cases the baseline side measured (default 0%%)")
    ab.add_argument("--markdown", type=Path, metavar="FILE",
                    help="also write the comparison as Markdown (CI summary, PR comment)")


def command(args: argparse.Namespace) -> int:
    from harness import environment
    from harness.compare import Options
    from harness.execution import Limits
    from harness.execution.ab import PairingError, run_ab
    from harness.paired import compare_paired
    from harness.plan import make_plan
    from harness.progress import Progress
    from harness.report.comparison import render_markdown, render_text
    from harness.results import RunWriter

    timing = TimingOptions()
    if args.min_time is not None:
        timing = dataclasses.replace(timing, min_time_s=args.min_time,
                                     max_time_s=max(timing.max_time_s, args.min_time))
    try:
        options = Options(threshold=args.threshold, alpha=args.alpha,
                          max_missing=args.max_missing)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    configs = [RunConfig(suites=(suite,), workloads=tuple(args.workload),
                         adapters=tuple(args.adapter), params=parse_params(args.param),
                         preset="full" if args.full else "quick", out=args.out, timing=timing,
                         collect=False, repeat=args.repeat)
               for suite in (args.baseline, args.candidate)]
    plans = (make_plan(configs[0]), make_plan(configs[1]))
    context = environment.collect()
    context["config"] = {"ab": [args.baseline, args.candidate], "workloads": args.workload,
                         "adapters": [s.label for s in plans[1].adapters],
                         "params": configs[1].params, "preset": configs[1].preset,
                         "timing": timing.__dict__, "repeat": args.repeat}
    writer = RunWriter(args.out, context)
    progress = Progress(0, sys.stderr)
    try:
        rows = run_ab(configs[1], plans, writer, args.isolate,
                      Limits(timeout_s=args.timeout or Limits.timeout_s), progress.hooks())
    except PairingError as exc:
        raise UsageError(str(exc)) from None
    finally:
        writer.close()
        progress.finish()
    report = compare_paired(rows, options)
    print(render_text(report))
    print(f"\nrun folder: {writer.path}")
    if args.markdown:
        title = f"A/B: {args.candidate} against {args.baseline}"
        with writing(args.markdown):
            args.markdown.write_text(render_markdown(report, title), encoding="utf-8")
    return 1 if report.failed else 0
