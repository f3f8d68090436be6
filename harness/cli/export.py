"""``harness export``: a run's rows as CSV or Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import writing


def add_parser(sub: Any) -> None:
    export = sub.add_parser("export", help="write a run's rows as CSV or Parquet")
    export.add_argument("run", type=Path, help="a run folder")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv",
                        help="csv or parquet (default: csv; parquet needs the [parquet] extra)")
    export.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="destination file (default: rows.csv or rows.parquet in the run "
                             "folder)")


def command(args: argparse.Namespace) -> int:
    from harness.results import export

    with writing(args.output or args.run):
        print(export(args.run, args.format, args.output))
    return 0
