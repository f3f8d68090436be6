"""The plain-text results table printed at the end of ``harness run``.

Rows are grouped by workload: parameters shared by every row of a group go on the group's
heading, and only the parameters that vary get a column, so the table stays readable. When a run
covers several adapters, each row also shows its speedup over the reference adapter on the same
case (reference median / row median: above 1 is faster), so adapters compare side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from harness.report import scenarios, units
from harness.report.units import grid
from harness.terminal import printable
from harness.workload import format_value

TERMINAL_FIGURES = ("median", "95% CI", "p99", "throughput", "% peak", "peak RSS", "check")


def _ci(row: dict[str, Any]) -> str:
    low, high = row.get("latency_ci_low_s"), row.get("latency_ci_high_s")
    median = row.get("latency_median_s")
    if units.missing(low) or units.missing(high) or units.missing(median) or not median:
        return units.DASH
    # The interval as ± percent of the median reads faster than two more times.
    half = max(median - low, high - median) / median * 100
    return f"±{half:.1f}%"


def _check(row: dict[str, Any]) -> str:
    correct = row.get("correct")
    if correct is None and (row.get("meta") or {}).get("check") == "test":
        return "test"  # an imported test's own assertions, not the harness's check
    return "pass" if correct is True else "FAIL" if correct is False else units.DASH


def _figures(row: dict[str, Any]) -> tuple[str, ...]:
    if row.get("status") != "ok":
        return (row.get("status", ""),) + (units.DASH,) * (len(TERMINAL_FIGURES) - 1)
    p99 = units.seconds(row.get("latency_p99_s")) + ("*" if row.get("p99_low_confidence") else "")
    return (units.seconds(row.get("latency_median_s")), _ci(row), p99,
            units.rate(row.get("throughput_items_per_s"),
                       f"{(row.get('meta') or {}).get('items_unit', 'items')}/s"),
            _peak(row), units.size(row.get("peak_rss_bytes")), _check(row))


def _peak(row: dict[str, Any]) -> str:
    """The fraction of the hardware's ceiling; where no ceiling is known, the fraction of the
    measured roof, marked ``†`` (it may exceed 100%: the roof is a calibration kernel)."""
    ceiling = row.get("peak_fraction")
    if isinstance(ceiling, int | float) and ceiling == ceiling:
        return units.percent(ceiling)
    measured = row.get("attainable_fraction")
    if isinstance(measured, int | float) and measured == measured:
        return units.percent(measured) + "†"
    return units.DASH


def _key(row: dict[str, Any]) -> tuple[str, int]:
    return row["case_id"], row.get("repetition") or 0


def _speedup(row: dict[str, Any], reference: dict[str, Any] | None) -> str:
    """``2.31×`` over the reference row of the same case; a dash when either has no median.
    An interleaved run's measured speedup with its interval, ``1.47× (1.41–1.52)``, marked
    ``~`` when the interval holds 1 (no clear difference)."""
    if row.get("interleaved"):
        if _label(row) == row.get("speedup_reference"):
            return "reference"
        value, low, high = (row.get(k) for k in ("speedup", "speedup_ci_low", "speedup_ci_high"))
        if units.missing(value):
            return units.DASH
        if low is None or high is None or units.missing(low) or units.missing(high):
            return f"{value:.3g}× (no interval)"
        same = "~" if low <= 1 <= high else ""
        return f"{same}{value:.3g}× ({low:.3g}–{high:.3g})"
    if reference is None or row.get("status") != "ok" or reference.get("status") != "ok":
        return units.DASH
    mine, theirs = row.get("latency_median_s"), reference.get("latency_median_s")
    if units.missing(mine) or units.missing(theirs) or not mine:
        return units.DASH
    return f"{theirs / mine:.3g}×"


def render(rows: Iterable[dict[str, Any]], reference: str | None = "cpu") -> str:
    """Fixed-width tables, one per workload; errors and skips are listed with their message.

    With rows from more than one adapter and ``reference`` among them, a ``vs <reference>``
    column gives each row's speedup over the reference adapter's row of the same case. Rows of
    load scenarios follow in their own tables (:mod:`harness.report.scenarios`).
    """
    from harness.report import generation

    rows, load_rows = scenarios.split(list(rows))
    loop = _render_loop(rows, reference)
    # Every table names the adapter as the user wrote it (`cpu:threads=1`), as the loop's does.
    load = scenarios.text([{**row, "adapter": _label(row)} for row in load_rows])
    generated = generation.text([{**row, "adapter": _label(row)} for row in rows])
    return "\n\n".join(part for part in (loop, generated, load) if part)


def _label(row: dict[str, Any]) -> str:
    """The adapter as the user wrote it (``cpu:threads=1``)."""
    return str(row.get("adapter_label") or row["adapter"])


def _render_loop(rows: list[dict[str, Any]], reference: str | None) -> str:
    adapters = {row["adapter"] for row in rows}
    compare = reference if len(adapters) > 1 and reference in adapters else None
    interleaved = {str(r["speedup_reference"]) for r in rows if r.get("speedup_reference")}
    if interleaved:
        compare = ", ".join(sorted(interleaved))
    baseline = {_key(row): row for row in rows if row["adapter"] == compare}
    # Rows of a --repeat run: one per repetition, told apart by a `rep` column.
    repeated = len({row.get("repetition") or 0 for row in rows}) > 1
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(f"{row['suite']}/{row['workload']}", []).append(row)
    out: list[str] = []
    for name, group in groups.items():
        # Each case's rows together (adapters, then repetitions, side by side), cases in the
        # order they first ran.
        first = {row["case_id"]: i for i, row in reversed(list(enumerate(group)))}
        group = sorted(group, key=lambda row: first[row["case_id"]])
        keys = list(dict.fromkeys(k for row in group for k in row.get("params", {})))
        varying = [k for k in keys
                   if len({format_value(row["params"].get(k, "")) for row in group}) > 1]
        fixed = " ".join(f"{k}={format_value(group[0]['params'][k])}" for k in keys
                         if k not in varying and group[0]["params"].get(k, "") != "")
        out.append(printable(f"{name}  {fixed}".rstrip()))
        speedup: tuple[str, ...] = (f"vs {compare}",) if compare else ()
        rep: tuple[str, ...] = ("rep",) if repeated else ()
        header = (*varying, *rep, "adapter", *TERMINAL_FIGURES[:1], *speedup, *TERMINAL_FIGURES[1:])
        lines: list[Sequence[str]] = [header]
        for row in group:
            params = tuple(format_value(row["params"].get(k, "")) for k in varying)
            if repeated:
                params = (*params, str(row.get("repetition") or 0))
            figures = _figures(row)
            if compare:
                figures = (figures[0], _speedup(row, baseline.get(_key(row))), *figures[1:])
            lines.append((*params, _label(row), *figures))
        out.extend("  " + line for line in grid(lines))
        out.append("")
    if any(_peak(row).endswith("†") for row in rows if row.get("status") == "ok"):
        out.append("† of the measured roof (a calibration kernel): no ceiling is known for this "
                   "hardware (see missing.peak_fraction)")
    if any(row.get("p99_low_confidence") for row in rows if row.get("status") == "ok"):
        out.append("* p99 from fewer than 662 samples: low confidence "
                   "(MLPerf early-stopping minimum)")
    if any(_check(row) == "test" for row in rows if row.get("status") == "ok"):
        out.append("test: checked by the test's own assertions, not by the harness "
                   "(see missing.correct)")
    if interleaved:
        out.append("speedups measured interleaved, with 95% intervals; ~: the interval holds "
                   "1.00×, no clear difference")
    notes = [printable(f"  {row['case_id']} on {_label(row)}"
                       + (f" (repetition {row.get('repetition') or 0})" if repeated else "")
                       + f": {row['message']}")
             for row in rows if row.get("message")]
    if notes:
        out.extend(["notes:", *notes])
    return "\n".join(out).rstrip()
