"""The plain-text results table printed at the end of ``harness run``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.report import units


def _ci(row: dict[str, Any]) -> str:
    low, high, median = row.get("latency_ci_low_s"), row.get("latency_ci_high_s"), row.get(
        "latency_median_s")
    if units._missing(low) or units._missing(high) or units._missing(median) or not median:
        return units.DASH
    # The interval as ± percent of the median reads faster than two more times.
    half = max(median - low, high - median) / median * 100
    return f"±{half:.1f}%"


def _check(row: dict[str, Any]) -> str:
    return {True: "pass", False: "FAIL"}.get(row.get("correct"), units.DASH)  # type: ignore[arg-type]


def render(rows: Iterable[dict[str, Any]]) -> str:
    """A fixed-width table: one line per result, errors and skips with their message."""
    rows = list(rows)
    header = ("case", "adapter", "status", "median", "95% CI", "p99", "throughput", "% peak",
              "peak RSS", "check")
    lines: list[Sequence[str]] = [header]
    notes = []
    for row in rows:
        status = row.get("status", "")
        if status == "ok":
            lines.append((
                row["case_id"], row["adapter"], status,
                units.seconds(row.get("latency_median_s")), _ci(row),
                units.seconds(row.get("latency_p99_s")) + ("*" if row.get("p99_low_confidence")
                                                           else ""),
                units.rate(row.get("throughput_items_per_s"), "items/s"),
                units.percent(row.get("peak_fraction")),
                units.size(row.get("peak_rss_bytes")), _check(row),
            ))
        else:
            lines.append((row["case_id"], row["adapter"], status) + (units.DASH,) * 7)
        if row.get("message"):
            notes.append(f"  {row['case_id']} on {row['adapter']}: {row['message']}")
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    if any(row.get("p99_low_confidence") for row in rows if row.get("status") == "ok"):
        out.append("* p99 from fewer than 662 samples: low confidence "
                   "(MLPerf early-stopping minimum)")
    if notes:
        out.append("")
        out.append("notes:")
        out.extend(notes)
    return "\n".join(out)
