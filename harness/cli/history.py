"""``harness history``: many runs as one table, oldest first, with each case's change."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness.cli.common import UsageError, writing


def add_parser(sub: Any) -> None:
    hist = sub.add_parser("history", help="many runs as one table, oldest first")
    hist.add_argument("dirs", nargs="*", type=Path, default=[Path("results")],
                      help="results directories or run folders (default: results/)")
    hist.add_argument("-c", "--case", metavar="TEXT", help="only cases whose id contains TEXT")
    hist.add_argument("-o", "--output", type=Path, metavar="FILE.csv|.parquet",
                      help="also write every row of the history as CSV or Parquet")


def command(args: argparse.Namespace) -> int:
    from harness.history import history, trend
    from harness.report import units
    from harness.report.units import grid

    frame = history(args.dirs)
    if args.case:
        frame = frame[frame["case_id"].str.contains(args.case, regex=False)]
    if args.output:
        suffix = args.output.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise UsageError(f"--output must end in .csv or .parquet, got {args.output}")
        out = frame.assign(samples_s=[str(v) for v in frame["samples_s"]])
        with writing(args.output):
            (out.to_csv(args.output, index=False) if suffix == ".csv"
             else out.to_parquet(args.output))
    table = trend(frame)
    # An A/B run's sides are separate lines: name them only where the history holds one.
    sided = bool((table["variant"] != "").any())
    lines = [("started", "git", "case", "adapter", *(("variant",) if sided else ()), "median",
              "change")]
    for row in table.itertuples():
        started = row.run_started_at
        change = row.change
        lines.append((str(started)[:19] if started == started else units.DASH,
                      str(row.git_sha or units.DASH)[:12], row.case_id, row.adapter,
                      *((row.variant or units.DASH,) if sided else ()),
                      units.seconds(row.latency_median_s),
                      units.DASH if change != change else f"{change * 100:+.1f}%"))
    print("\n".join(grid(lines)))
    return 0
