"""``harness import``: store another tool's results (pytest-benchmark JSON) as a run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    imp = sub.add_parser("import", help="store another tool's results as a run")
    imp.add_argument("format", choices=("pytest-benchmark",), help="the file's format")
    imp.add_argument("file", type=Path, help="a pytest-benchmark JSON file")
    imp.add_argument("--out", type=Path, default=Path("results"), metavar="DIR",
                     help="results directory (default: results/)")
    imp.add_argument("--reference", metavar="ADAPTER", help=argparse.SUPPRESS)


def command(args: argparse.Namespace) -> int:
    from harness.importers import import_pytest_benchmark
    from harness.report.table import render
    from harness.results import read_rows

    run = import_pytest_benchmark(args.file, args.out)
    print(render(read_rows(run)))
    print(f"\nrun folder: {run}")
    return 0
