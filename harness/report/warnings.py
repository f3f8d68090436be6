"""What a report warns about before a reader trusts its figures: errors and skips, failed checks,
noisy medians, low-confidence tails, and every figure left empty, grouped by reason.

Each warning names its *cause* (what several rows can share: "95% CI of the median wider than
±5%") apart from what is particular to its row ("±12.5%"), so :func:`causes` can say each
cause once with the rows it touches, however many backends and cases share it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Row = dict[str, Any]

#: A median whose 95% CI reaches further than this from it is flagged as noisy.
NOISY_CI = 0.05
#: Figures the report shows, by the columns whose `missing` reasons explain an empty one.
REPORTED = {"latency_median_s": "median latency", "latency_p99_s": "p99",
            "throughput_items_per_s": "throughput", "peak_rss_bytes": "peak RSS",
            "peak_device_bytes": "peak device memory", "energy_per_item_j": "energy",
            "energy_j": "energy", "peak_fraction": "% of peak", "peak_flops_per_s": "% of peak",
            "achieved_flops_per_s": "roofline", "arithmetic_intensity": "roofline"}
#: Where a figure's own column is empty but no reason was stored, this column is checked.
PRIMARY = {"median latency": "latency_median_s", "throughput": "throughput_items_per_s",
           "peak RSS": "peak_rss_bytes", "energy": "energy_per_item_j",
           "% of peak": "peak_fraction"}

#: Warning kinds in the order a reader should see them, with their headings.
KINDS = (("error", "Errors"), ("check", "Failed checks"), ("noisy", "Noisy measurements"),
         ("skipped", "Skipped"), ("low-confidence", "Low-confidence figures"),
         ("missing", "Missing figures"), ("note", "Notes"))

WarningKind = Literal["error", "skipped", "check", "noisy", "low-confidence", "missing", "note"]


@dataclass(frozen=True)
class ReportWarning:
    """Something a reader must know before trusting a figure; ``cases`` may group several."""

    kind: WarningKind
    adapter: str
    cases: tuple[str, ...]
    text: str
    #: what rows can share; empty: ``text`` is the cause, with nothing particular to the row.
    cause: str = ""


@dataclass(frozen=True)
class Touch:
    """One row a cause touches: its case, its adapter, and what is particular to it."""

    case: str
    adapter: str
    detail: str = ""


@dataclass(frozen=True)
class Cause:
    """One cause, said once, with every row it touches."""

    kind: WarningKind
    text: str
    rows: tuple[Touch, ...]
    #: "every case on cpu, onnxruntime" where the cause touches every successful case of
    #: each adapter it touches (set by the summary, which knows the rows); else empty.
    scope: str = ""

    @property
    def adapters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(touch.adapter for touch in self.rows))

    @property
    def cases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(touch.case for touch in self.rows))

    def by_case(self) -> list[tuple[str, list[Touch]]]:
        """The rows by case, in first-seen order: a case is named once, its adapters after it."""
        out: dict[str, list[Touch]] = {}
        for touch in self.rows:
            out.setdefault(touch.case, []).append(touch)
        return list(out.items())


#: "the cpu adapter has no device memory" is one cause on every adapter that says it.
_ADAPTER_NAMED = re.compile(r"\bthe \S+ adapter\b")


def causes(warnings: Sequence[ReportWarning]) -> list[Cause]:
    """The warnings grouped by kind and cause, in :data:`KINDS` order, then first seen; a
    cause that differs between adapters only by naming its own adapter is one cause."""
    groups: dict[tuple[WarningKind, str], list[Touch]] = {}
    for warning in warnings:
        said = _ADAPTER_NAMED.sub("the adapter", warning.cause or warning.text)
        detail = warning.text if warning.cause else ""
        touches = groups.setdefault((warning.kind, said), [])
        touches += [Touch(case, warning.adapter, detail) for case in warning.cases]
    rank = {kind: i for i, (kind, _) in enumerate(KINDS)}
    ordered = sorted(groups.items(), key=lambda item: rank[item[0][0]])
    return [Cause(kind, text, tuple(dict.fromkeys(rows)))
            for (kind, text), rows in ordered]


def ci_half(row: Row) -> float | None:
    """The 95% CI's larger half-width as a fraction of the median; None without an interval."""
    low, high, median = (row.get(k) for k in ("latency_ci_low_s", "latency_ci_high_s",
                                               "latency_median_s"))
    if low is None or high is None or not median:
        return None
    return float(max(median - low, high - median) / median)


# --- warnings --------------------------------------------------------------------------------


def find_warnings(rows: Sequence[Row]) -> list[ReportWarning]:
    """What a reader must know before trusting the figures: errors, skips, failed checks, noisy
    medians (95% CI beyond ±5% or a warm-up that never settled), low-confidence tails, and
    figures left empty (grouped by adapter, figure and reason)."""
    out: list[ReportWarning] = []
    for row in rows:
        out.extend(_row_warnings(row))
    out.extend(_missing_warnings(rows))
    return out


def _row_warnings(row: Row) -> list[ReportWarning]:
    adapter, cases = str(row.get("adapter")), (str(row.get("case_id")),)
    message = str(row.get("message") or "").strip()
    status = row.get("status")
    if status in ("error", "skipped"):
        return [ReportWarning(status, adapter, cases, message or f"{status}, no message")]
    if status != "ok":
        return [ReportWarning("note", adapter, cases, f"status {status!r}: {message}")]
    out = []
    if row.get("correct") is False:
        out.append(ReportWarning("check", adapter, cases,
                                 message or "the output differs from the reference"))
        message = ""
    half = ci_half(row)
    if half is not None and half > NOISY_CI:
        out.append(ReportWarning("noisy", adapter, cases, f"±{half * 100:.1f}%",
                                 f"95% CI of the median wider than ±{NOISY_CI * 100:g}%: "
                                 "rerun on a quieter machine"))
    if row.get("warmup_steady") is False:
        out.append(ReportWarning("noisy", adapter, cases,
                                 message or "warm-up never settled (timings still drifting)"))
        message = ""
    out.extend(_tail_warnings(row, adapter, cases))
    if message:
        out.append(ReportWarning("note", adapter, cases, message))
    return out


def _tail_warnings(row: Row, adapter: str, cases: tuple[str, ...]) -> list[ReportWarning]:
    n = row.get("n_samples")
    samples = f"{int(n)} samples" if n is not None else "too few samples"
    tails = [name for name, flag, need in (("p90", "p90_low_confidence", 64),
                                          ("p99", "p99_low_confidence", 662)) if row.get(flag)]
    out = []
    if tails:
        out.append(ReportWarning("low-confidence", adapter, cases, samples,
                                 f"{' and '.join(tails)} from too few samples (64 needed for "
                                 "p90, 662 for p99): low confidence"))
    if row.get("latency_median_s") is not None and ci_half(row) is None:
        out.append(ReportWarning("low-confidence", adapter, cases, samples,
                                 "no confidence interval for the median (6 samples needed)"))
    return out


def _missing_warnings(rows: Sequence[Row]) -> list[ReportWarning]:
    """Empty figures of successful rows, one warning per adapter, figure and reason."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for row in rows:
        if row.get("status") != "ok":
            continue
        for figure, reason in _missing_figures(row).items():
            key = (str(row["adapter"]), figure, reason)
            groups.setdefault(key, []).append(str(row["case_id"]))
    return [ReportWarning("missing", adapter, tuple(cases), f"{figure} empty: {reason}")
            for (adapter, figure, reason), cases in groups.items()]


def _missing_figures(row: Row) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for column, reason in (row.get("missing") or {}).items():
        if column in REPORTED:
            reasons.setdefault(REPORTED[column], str(reason))
    for figure, column in PRIMARY.items():
        if row.get(column) is None and figure not in reasons:
            reasons[figure] = "no reason recorded"
    return reasons
