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


def command(args: argparse.Namespace) -> int:
    from harness.report.build import write_report

    with writing(args.output):
        print(write_report(args.runs, args.output, reference=args.reference))
    return 0
