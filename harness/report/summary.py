"""The report's answer, said first: per workload the fastest backend and its speedup with its
95% interval, the confirmed regressions when the report covers a comparison, the failed and
skipped cases with their reasons, and each limitation of the machine or of a backend once.

:func:`summarize` builds it as plain text; the HTML page and the Markdown report only lay it
out, so a pull-request comment says what the page says. A speedup measured interleaved
(``harness run`` with several adapters) carries its interval; one taken from two medians
measured apart has none and says so, never borrowing an interval it does not have.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from harness.report import units
from harness.report.warnings import Cause, ReportWarning, causes, ci_half

if TYPE_CHECKING:
    from harness.compare import ComparisonReport

Row = dict[str, Any]

#: A workload with at most this many cases lists each case's speedup in the summary.
LIST_CASES = 3
#: The regressions table's header.
REGRESSION_HEADER = ("case", "adapter", "change", "95% interval", "note")


def _positive(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0)


def _number(value: Any) -> float | None:
    """A positive finite number as a float; None for anything else (NaN, 0, a string)."""
    return float(value) if _positive(value) else None


def ratio(value: float) -> str:
    """Three significant digits, never in scientific notation (219000, not 2.19e+05)."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


@dataclass(frozen=True)
class Speedup:
    """How much faster an adapter ran a case than the reference did: the reference's time over
    this adapter's. Measured interleaved it has a 95% interval; two medians measured apart
    give none, and over several repetitions it is the median of theirs, without one."""

    value: float
    low: float | None = None
    high: float | None = None
    interleaved: bool = False
    repetitions: int = 1

    @property
    def clear(self) -> bool | None:
        """Whether the interval excludes 1× (a real difference); None without an interval."""
        if self.low is None or self.high is None:
            return None
        return not self.low <= 1.0 <= self.high

    def text(self) -> str:
        """``2.1× (1.9–2.3)``; ``~1.01× (0.9–1.1)`` when the interval holds 1×; ``2.1×``."""
        if self.low is None or self.high is None:
            return f"{ratio(self.value)}×"
        mark = "" if self.clear else "~"
        return f"{mark}{ratio(self.value)}× ({ratio(self.low)}–{ratio(self.high)})"

    def how(self) -> str:
        """How the figure was measured, and why it has no interval where it has none."""
        if self.repetitions > 1:
            return f"median of {self.repetitions} repetitions' speedups: no interval"
        if self.interleaved:
            return ("interleaved, 95% interval" if self.low is not None
                    else "interleaved, too few generations for an interval")
        return "not interleaved: ratio of medians, no interval"


def speedup(row: Row, base: Row | None, reference: str) -> Speedup | None:
    """``row``'s speedup over ``base`` (the reference adapter's row of the same case and
    repetition): the interleaved run's own figure where it was measured against this
    reference, else the ratio of the two medians. None where there is nothing to compare."""
    if row.get("status") != "ok" or str(row.get("adapter")) == reference:
        return None
    value = _number(row.get("speedup"))
    if row.get("interleaved") and row.get("speedup_reference") == reference and value:
        low, high = _number(row.get("speedup_ci_low")), _number(row.get("speedup_ci_high"))
        if low and high:
            return Speedup(value, low, high, True)
        return Speedup(value, interleaved=True)
    if base is None or base.get("status") != "ok":
        return None
    reference_s = _number(base.get("latency_median_s"))
    this_s = _number(row.get("latency_median_s"))
    return Speedup(reference_s / this_s) if reference_s and this_s else None


@dataclass(frozen=True)
class Summary:
    """What the report opens with, as plain text: the header and rows of the fastest-backend
    table, the comparison's headline and regressions, failures, skips, limitations (one line
    each) and the remaining warnings by cause."""

    reference: str
    header: tuple[str, ...]
    fastest: tuple[tuple[str, ...], ...]
    comparison: str
    regressions: tuple[tuple[str, ...], ...]
    failed: tuple[Cause, ...]
    skipped: tuple[Cause, ...]
    limitations: tuple[str, ...]
    warnings: tuple[Cause, ...]


def summarize(rows: Sequence[Row], warnings: Sequence[ReportWarning], reference: str,
              comparison: ComparisonReport | None = None) -> Summary:
    """The summary of timing-loop ``rows`` (prepared as ``build`` does: a ``label`` per row,
    NaN as None), every warning of the report, and the comparison it covers, if any."""
    ok: dict[str, set[str]] = {}
    for row in rows:
        if row.get("status") == "ok":
            ok.setdefault(str(row.get("adapter")), set()).add(str(row.get("case_id")))
    grouped: list[Cause] = []
    limits: list[Cause] = []
    for cause in causes(warnings):
        # An empty figure on every case of a backend is a fact of the machine or the backend:
        # said once as a limitation, and only its other rows stay a warning about cases.
        whole = _whole(cause, ok) if cause.kind == "missing" else []
        if whole:
            limits.append(replace(cause, rows=tuple(t for t in cause.rows if t.adapter in whole),
                                  scope=_scope(whole, ok)))
            cause = replace(cause, rows=tuple(t for t in cause.rows if t.adapter not in whole))
        if cause.rows:
            # Any other cause on every case of its backends says so instead of listing them.
            whole = _whole(cause, ok)
            every = bool(whole) and whole == list(cause.adapters)
            grouped.append(replace(cause, scope=_scope(whole, ok) if every else ""))
    header, fastest = _fastest(rows, reference, list(ok))
    headline, regressions = _comparison(comparison)
    return Summary(
        reference=reference, header=header, fastest=fastest, comparison=headline,
        regressions=regressions,
        failed=tuple(c for c in grouped if c.kind in ("error", "check")),
        skipped=tuple(c for c in grouped if c.kind == "skipped"),
        limitations=tuple(f"{c.text} — {c.scope}" for c in limits),
        warnings=tuple(c for c in grouped if c.kind not in ("error", "check", "skipped")))


def _whole(cause: Cause, ok: dict[str, set[str]]) -> list[str]:
    """The adapters on which ``cause`` touches every successful case (``ok``: by adapter)."""
    touched: dict[str, set[str]] = {}
    for touch in cause.rows:
        touched.setdefault(touch.adapter, set()).add(touch.case)
    return [a for a, cases in touched.items() if ok.get(a) and ok[a] <= cases]


def _scope(adapters: list[str], ok: dict[str, set[str]]) -> str:
    """"every case on every backend (a, b)", "every case on a" or "every case"."""
    if len(ok) == 1:
        return "every case"
    if set(adapters) == set(ok):
        return f"every case on every backend ({', '.join(adapters)})"
    return f"every case on {', '.join(adapters)}"


def _comparison(report: ComparisonReport | None) -> tuple[str, tuple[tuple[str, ...], ...]]:
    if report is None:
        return "", ()
    from harness.report.comparison import change, headline, interval

    kind = ("A/B run, samples paired" if report.method == "paired"
            else "against the baseline, run by run")
    rows = tuple((c.case_id, c.adapter, change(c.ratio), interval(c.ratio_low, c.ratio_high),
                  "; ".join(x for x in (*c.other_regressions, c.note) if x))
                 for c in report.regressions)
    return f"{headline(report)}; {kind}", rows


# --- the fastest backend per workload --------------------------------------------------------


@dataclass(frozen=True)
class _Case:
    """One case's answer: its fastest adapter, and the speedup of ``compared`` over the
    reference (the fastest, or the runner-up where the reference is fastest)."""

    label: str
    fastest: str
    compared: str
    speedup: Speedup | None
    note: str = ""


def _fastest(rows: Sequence[Row], reference: str,
             adapters: list[str]) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    workloads: dict[str, list[Row]] = {}
    for row in rows:
        if row.get("status") == "ok":
            workloads.setdefault(f"{row.get('suite')}/{row.get('workload')}", []).append(row)
    header: tuple[str, ...]
    if len(adapters) == 1:
        header = ("workload", "backend", "median ± 95% CI")
        return header, tuple((name, adapters[0], _medians(group))
                             for name, group in workloads.items())
    header = ("workload", "fastest", f"speedup over {reference} (95% interval)", "measured")
    out = []
    for name, group in workloads.items():
        cases: dict[str, list[Row]] = {}
        for row in group:
            cases.setdefault(str(row.get("case_id")), []).append(row)
        answers = [_answer(members, reference) for members in cases.values()]
        out.append((name, *_workload_line(answers, reference)))
    return header, tuple(out)


def _case_label(row: Row) -> str:
    """The part of the chart label after the workload: its varying parameters, or the case."""
    label = str(row.get("label") or row.get("case_id"))
    if "[" in label and "]" in label:
        return label[label.index("[") + 1:label.rindex("]")]
    return label


def _medians(group: list[Row]) -> str:
    texts = []
    for row in group[:LIST_CASES]:
        half = ci_half(row)
        text = units.seconds(row.get("latency_median_s")) + (
            f" ±{half * 100:.1f}%" if half is not None else "")
        texts.append(f"{_case_label(row)}: {text}" if len(group) > 1 else text)
    more = len(group) - LIST_CASES
    return "; ".join(texts) + (f"; and {more} more in the tables" if more > 0 else "")


def _answer(members: list[Row], reference: str) -> _Case:
    """The case's fastest adapter by its speedup over the reference (the reference counts
    1×); where the reference has no result, by median latency, without a speedup. A backend
    whose output failed its check is not a candidate: fast and wrong is not an answer."""
    by_adapter: dict[str, list[Row]] = {}
    for row in members:
        by_adapter.setdefault(str(row.get("adapter")), []).append(row)
    wrong = [a for a, rs in by_adapter.items() if any(r.get("correct") is False for r in rs)]
    by_adapter = {a: rs for a, rs in by_adapter.items() if a not in wrong}
    label = _case_label(members[0])
    if not by_adapter:
        return _Case(label, units.DASH, "", None, "every backend failed its check")
    base = {row.get("repetition"): row for row in by_adapter.get(reference, [])}
    found = {a: s for a in by_adapter if a != reference
             for s in [_combined(by_adapter[a], base, reference)] if s is not None}
    if reference not in by_adapter or not found:
        timed = {a: statistics.median(float(r["latency_median_s"]) for r in rs)
                 for a, rs in by_adapter.items()
                 if all(_positive(r.get("latency_median_s")) for r in rs)}
        if not timed:
            return _Case(label, units.DASH, "", None, "no median to rank by")
        best = min(timed, key=lambda a: timed[a])
        why = (f"only {best} has a result" if len(by_adapter) == 1 else
               f"no result on {reference}" if reference not in by_adapter
               else "no speedup measured")
        if wrong:
            why += f" ({', '.join(wrong)} failed the check)"
        return _Case(label, best, "", None, why if len(by_adapter) == 1
                     else f"{why}: fastest by median")
    ranked = sorted(found, key=lambda a: found[a].value, reverse=True)
    if found[ranked[0]].value > 1.0:
        return _Case(label, ranked[0], ranked[0], found[ranked[0]])
    return _Case(label, reference, ranked[0], found[ranked[0]])


def _combined(rows: list[Row], base: dict[Any, Row], reference: str) -> Speedup | None:
    """One speedup over the repetitions: the row's own, or the median of several (no
    interval: an interval over a handful of repetitions is not what a 95% CI claims)."""
    each = [s for row in rows for s in [speedup(row, base.get(row.get("repetition")), reference)]
            if s is not None]
    if len(each) <= 1:
        return each[0] if each else None
    return Speedup(statistics.median(s.value for s in each),
                   interleaved=all(s.interleaved for s in each), repetitions=len(each))


def _said(answer: _Case, reference: str) -> str:
    if answer.speedup is None:
        return answer.note
    if answer.compared == answer.fastest:
        return answer.speedup.text()
    return f"{reference} fastest; next {answer.compared} at {answer.speedup.text()}"


def _workload_line(answers: list[_Case], reference: str) -> tuple[str, str, str]:
    """(fastest, speedup, how measured) for one workload's cases."""
    hows = list(dict.fromkeys(a.speedup.how() for a in answers if a.speedup is not None))
    how = hows[0] if len(hows) == 1 else "; ".join(hows) or units.DASH
    if len(answers) == 1:
        return answers[0].fastest, _said(answers[0], reference), how
    wins = Counter(a.fastest for a in answers)
    top, count = wins.most_common(1)[0]
    others = ", ".join(f"{a} on {n}" for a, n in wins.items() if a != top)
    fastest = f"{top} on {count} of {len(answers)} cases" + (f"; {others}" if others else "")
    if len(answers) <= LIST_CASES:
        said = [f"{a.label}: " + (f"{a.fastest} " if a.fastest != top and a.speedup is not None
                                 and a.compared == a.fastest else "") + _said(a, reference)
                for a in answers]
        return fastest, "; ".join(said), how
    values = [a.speedup.value for a in answers
              if a.speedup is not None and a.compared == top == a.fastest]
    if top == reference or not values:
        return fastest, "each case's speedup is in its table", how
    return (fastest, f"{ratio(min(values))}× to {ratio(max(values))}× over {reference} across "
                     f"{len(values)} cases; each case's interval is in its table", how)
