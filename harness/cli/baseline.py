"""``harness baseline``: save a run as a named baseline, or list the saved ones."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import Parser


def add_parser(sub: Any) -> None:
    base = sub.add_parser("baseline", help="save a run as a named baseline, or list baselines")
    base_sub = base.add_subparsers(dest="action", required=True, parser_class=Parser,
                                   metavar="{save,list}")
    save = base_sub.add_parser("save", help="copy a run to results/baselines/NAME")
    save.add_argument("run", type=Path, help="a run folder")
    save.add_argument("name", help="letters, digits, '.', '_' or '-'")
    save.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                      help="results directory the baselines live in (default: results/)")
    save.add_argument("--force", action="store_true", help="replace an existing baseline")
    listing = base_sub.add_parser("list", help="the saved baselines")
    listing.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                         help="results directory the baselines live in (default: results/)")


def command(args: argparse.Namespace) -> int:
    from harness import baselines

    if args.action == "save":
        print(baselines.save(args.run, args.name, args.results, replace=args.force))
    else:
        for name, path in baselines.names(args.results).items():
            print(f"{name:<20} {path}")
    return 0
