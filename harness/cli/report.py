"""``harness report``: an HTML or Markdown report of runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import writing


def add_parser(sub: Any) -> None:
    rep = sub.add_parser("report", help="write an HTML or Markdown report of runs")
    rep.add_argument("runs", nargs="+", type=Path, help="run folders or results directories")
    rep.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                     help="report.html (self-contained, with plots) or report.md")
    rep.add_argument("--reference", default="cpu", metavar="ADAPTER",
                     help="adapter the speedups are relative to (default: cpu)")
    rep.add_argument("--baseline", metavar="RUN",
                     help="a run folder, results directory or baseline name "
                          "(results/baselines/NAME): the summary opens with the confirmed "
                          "regressions of the runs against it, as harness compare judges them")


def command(args: argparse.Namespace) -> int:
    from harness import baselines
    from harness.report.build import write_report

    baseline = [baselines.resolve(args.baseline, Path("results"))] if args.baseline else []
    with writing(args.output):
        print(write_report(args.runs, args.output, reference=args.reference, baseline=baseline))
    return 0
