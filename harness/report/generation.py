"""Generation rows in the terminal report: time to first token, time per output token and
tokens per second per case, beside the whole-call figures of the timing-loop table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.report import units
from harness.stats import P99_MIN_SAMPLES
from harness.workload import format_value

Row = dict[str, Any]
HEADER = ("adapter", "TTFT", "TPOT", "95% CI", "TPOT p99", "decode tok/s", "e2e",
          "prefill % peak", "decode % peak", "tokens = ref")
NOTE = ("TTFT: prefill and the first token; TPOT: decode time per further token (median over "
        "calls, interval of the median); tokens = ref: share of generated tokens equal to the "
        "float32 reference's.")


def is_generation_row(row: Row) -> bool:
    """A row with generation figures (or a failed generation case's row)."""
    return row.get("ttft_s") is not None or "new_tokens" in (row.get("params") or {})


def _ci(row: Row) -> str:
    low, high, median = row.get("tpot_ci_low_s"), row.get("tpot_ci_high_s"), row.get("tpot_s")
    if units.missing(low) or units.missing(high) or units.missing(median) or not median:
        return units.DASH
    return f"±{max(median - low, high - median) / median * 100:.1f}%"


def _line(row: Row) -> tuple[str, ...]:
    if row.get("status") != "ok":
        return (row["adapter"], str(row.get("status", "")), *(units.DASH,) * (len(HEADER) - 2))
    calls = row.get("generate_calls")
    star = "*" if isinstance(calls, int | float) and calls < P99_MIN_SAMPLES else ""
    p99 = units.seconds(row.get("tpot_p99_s"))
    return (row["adapter"], units.seconds(row.get("ttft_s")), units.seconds(row.get("tpot_s")),
            _ci(row), p99 + (star if p99 != units.DASH else ""),
            units.rate(row.get("decode_tokens_per_s"), "tok/s"), units.seconds(row.get("e2e_s")),
            units.percent(row.get("prefill_peak_fraction")),
            units.percent(row.get("decode_peak_fraction")),
            units.percent(row.get("token_agreement")))


def text(rows: Sequence[Row]) -> str:
    """One table of the generation rows (parameters that vary get a column), or ""."""

    rows = [row for row in rows if is_generation_row(row)]
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for row in rows for k in row.get("params", {})))
    varying = [k for k in keys if len({format_value(row["params"].get(k, "")) for row in rows}) > 1]
    lines: list[Sequence[str]] = [(*varying, *HEADER)]
    for row in rows:
        lines.append((*(format_value(row["params"].get(k, "")) for k in varying), *_line(row)))
    out = ["generation", *("  " + line for line in units.grid(lines)), NOTE]
    if any(row.get("status") == "ok" and (row.get("generate_calls") or 0) < P99_MIN_SAMPLES
           for row in rows):
        out.append(f"* TPOT p99 over fewer than {P99_MIN_SAMPLES} calls: low confidence")
    return "\n".join(out)
