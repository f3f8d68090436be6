"""Where each profiled case's time goes, backends side by side: the terminal table printed after
``harness run``'s results, and the report's tables (categories per case, top operators per
backend, a roofline point per category).

A profile is read from the run's operator table (``ops.jsonl``: per-call seconds per operator,
each with a category) and the profiling figures on its result row (``profile_wall_s``,
``profile_coverage``, ``profile_overhead``, ``profiler``). Figures are per case call, the median
over profiled repetitions. Profiled times include the profiler's own cost: the row's overhead
(profiled time per call ÷ timed median) says how much, and is shown beside them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness import opstats
from harness.profiling.categories import CATEGORIES
from harness.report import units
from harness.report.model import PlainTable
from harness.report.units import DASH, grid
from harness.scenarios import is_load_row

Row = dict[str, Any]

UNATTRIBUTED = "unattributed"
#: Categories named in the terminal table; the rest are summed into one line.
TOP_CATEGORIES = 6
#: Operators named per backend in the terminal table and in the report.
TERMINAL_OPS, REPORT_OPS = 3, 10
#: Below this coverage, or above this overhead, the profile's shares deserve a warning.
LOW_COVERAGE, HIGH_OVERHEAD = 0.9, 1.5
#: Row columns whose reason (in ``missing``) says why a case has no profile.
PROFILE_COLUMNS = ("profiler", "profile_wall_s", "profile_coverage", "profile_overhead")
NAME_WIDTH = 32


@dataclass(frozen=True)
class Operator:
    """One operator of a profile, per case call (median over repetitions)."""

    op: str
    category: str
    provider: str
    calls: float
    self_time_s: float
    share: float
    flops: float
    bytes: float
    flops_source: str


@dataclass(frozen=True)
class Breakdown:
    """One case on one adapter: seconds and shares per category, operators, trust figures.
    Without operator rows, ``reason`` says why (the row's own reason where it gives one)."""

    case_id: str
    adapter: str
    label: str
    repetitions: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)
    operators: tuple[Operator, ...] = ()
    wall_s: float = math.nan
    coverage: float = math.nan
    overhead: float = math.nan
    profiler: str = ""
    reason: str = ""
    row: Row = field(default_factory=dict)

    @property
    def profiled(self) -> bool:
        return bool(self.seconds)

    def share(self, category: str) -> float:
        """The stored share (of the profiled wall time per call), or seconds ÷ wall."""
        share = self.shares.get(category, math.nan)
        if math.isfinite(share):
            return share
        seconds = self.seconds.get(category, math.nan)
        return seconds / self.wall_s if self.wall_s > 0 else math.nan


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def label_of(row: Row) -> str:
    """The adapter label a row's operators carry (``cpu:threads=1``), whatever the row."""
    return str(row.get("adapter_label") or row.get("adapter"))


def breakdowns(rows: Iterable[Row], ops: Iterable[Row]) -> list[Breakdown]:
    """A breakdown per timing-loop case and adapter of ``rows``, in row order, for every case
    that at least one adapter profiled; operators of runs other than the rows' are ignored.
    Empty when nothing was profiled."""
    loop = [row for row in rows if not is_load_row(row)]
    wanted = {(str(row.get("run_id") or ""), str(row["case_id"]), label_of(row)) for row in loop}
    mine = [op for op in ops if (str(op.get("run_id") or ""), str(op["case_id"]),
                                 str(op["adapter"])) in wanted]
    grouped = opstats.by_case(mine)
    profiled_cases = {case for case, _ in grouped}
    members: dict[opstats.CaseKey, list[Row]] = {}
    for row in loop:
        if str(row["case_id"]) in profiled_cases:
            members.setdefault((str(row["case_id"]), label_of(row)), []).append(row)
    return [_breakdown(key, group, grouped.get(key, [])) for key, group in members.items()]


def _breakdown(key: opstats.CaseKey, rows: list[Row], ops: list[Row]) -> Breakdown:
    case_id, adapter = key
    # The report labels each repetition's row; a profile stands for all of them.
    label = str(rows[0].get("label") or case_id).removesuffix(
        f" rep {rows[0].get('repetition') or 0}")
    times = opstats.per_repetition(ops, opstats.category_key)
    if not times:
        why = _reason(rows) if not ops else "its operator rows hold no self times"
        return Breakdown(case_id, adapter, label, reason=why, row=rows[0])
    shares = opstats.per_repetition(ops, opstats.category_key, "share")
    seconds = {c: opstats.median(v) for c, v in times.items()}
    totals = [sum(values) for values in zip(*times.values(), strict=True)]
    wall = opstats.median([_number(r.get("profile_wall_s")) for r in rows])
    return Breakdown(
        case_id, adapter, label, repetitions=len(opstats.repetitions(ops)),
        seconds=dict(sorted(seconds.items(), key=lambda item: -item[1])),
        shares={c: opstats.median(v) for c, v in shares.items()},
        operators=_operators(ops), wall_s=wall if math.isfinite(wall) else opstats.median(totals),
        coverage=opstats.median([_number(r.get("profile_coverage")) for r in rows]),
        overhead=opstats.median([_number(r.get("profile_overhead")) for r in rows]),
        profiler=str(next((r["profiler"] for r in rows if r.get("profiler")), "")), row=rows[0])


def _operators(ops: list[Row]) -> tuple[Operator, ...]:
    times = opstats.per_repetition(ops, opstats.op_key)
    shares = opstats.per_repetition(ops, opstats.op_key, "share")
    calls = opstats.per_repetition(ops, opstats.op_key, "calls")
    known: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    sources: dict[tuple[str, str, str], str] = {}
    for op in ops:
        figures = known.setdefault(opstats.op_key(op), {"flops": [], "bytes": []})
        for column in figures:  # work per call does not change between repetitions
            figures[column].append(_number(op.get(column)))
        sources.setdefault(opstats.op_key(op), str(op.get("flops_source") or ""))
    out = []
    for key, values in times.items():
        name, category, provider = key
        out.append(Operator(name, category, provider, opstats.median(calls.get(key, [])),
                            opstats.median(values), opstats.median(shares.get(key, [])),
                            opstats.median(known[key]["flops"]),
                            opstats.median(known[key]["bytes"]), sources[key]))
    # The unattributed remainder is a category line of its own, not an operator.
    return tuple(sorted((o for o in out if o.category != UNATTRIBUTED),
                        key=lambda o: -o.self_time_s))


def _reason(rows: Sequence[Row]) -> str:
    for row in rows:
        missing = row.get("missing") or {}
        for column in PROFILE_COLUMNS:
            if isinstance(missing, dict) and missing.get(column):
                return str(missing[column])
    row = rows[0]
    if row.get("status") != "ok":
        return f"{row.get('status')}: {row.get('message') or 'no result'}"
    return "no operator rows for it in ops.jsonl"


def by_case(found: Iterable[Breakdown]) -> dict[str, list[Breakdown]]:
    """Breakdowns grouped by case, adapters side by side, in first-seen order."""
    out: dict[str, list[Breakdown]] = {}
    for breakdown in found:
        out.setdefault(breakdown.case_id, []).append(breakdown)
    return out


def categories(group: Sequence[Breakdown]) -> list[str]:
    """The categories of a case's profiles, the known ones in reading order, then the others
    by time; ``unattributed`` last."""
    seen = {c for b in group for c in b.seconds}
    known = [c for c in CATEGORIES if c in seen and c != UNATTRIBUTED]
    other = sorted(seen - set(CATEGORIES), key=lambda c: -max(b.seconds.get(c, 0) for b in group))
    return [*known, *other, *([UNATTRIBUTED] if UNATTRIBUTED in seen else [])]


def _short(name: str, width: int = NAME_WIDTH) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _cell(b: Breakdown, category: str) -> str:
    if category not in b.seconds:
        return DASH
    return f"{units.seconds(b.seconds[category])} {units.percent(b.share(category))}"


def _rest_cell(b: Breakdown, rest: Sequence[str]) -> str:
    seconds = sum(b.seconds.get(c, 0.0) for c in rest)
    shares = [b.share(c) for c in rest if c in b.seconds]
    return f"{units.seconds(seconds)} {units.percent(sum(shares))}" if shares else DASH


def _wall_cell(b: Breakdown) -> str:
    text = units.seconds(b.wall_s)
    return text + (f" ({b.overhead:.2f}× timed)" if math.isfinite(b.overhead) else "")


def _op_cell(b: Breakdown, index: int) -> str:
    if index >= len(b.operators):
        return ""
    op = b.operators[index]
    share = op.share if math.isfinite(op.share) else (
        op.self_time_s / b.wall_s if b.wall_s > 0 else math.nan)
    return f"{_short(op.op, 24)} {units.percent(share)}"


def _case_lines(group: Sequence[Breakdown]) -> list[tuple[str, ...]]:
    profiled = [b for b in group if b.profiled]
    named = [c for c in categories(profiled) if c != UNATTRIBUTED]
    top = sorted(named, key=lambda c: -max(_finite(b.share(c)) for b in profiled))
    shown = [c for c in named if c in top[:TOP_CATEGORIES]]
    rest = [c for c in named if c not in shown]

    def line(name: str, cell: Any) -> tuple[str, ...]:
        return (name, *(cell(b) if b.profiled else DASH for b in group))

    lines = [("category", *(b.adapter for b in group))]
    lines += [line(c, lambda b, c=c: _cell(b, c)) for c in shown]
    if rest:
        lines.append(line(f"{len(rest)} more", lambda b: _rest_cell(b, rest)))
    if any(UNATTRIBUTED in b.seconds for b in profiled):
        lines.append(line(UNATTRIBUTED, lambda b: _cell(b, UNATTRIBUTED)))
    lines.append(("profiled/call", *(_wall_cell(b) if b.profiled else "not profiled"
                                     for b in group)))
    lines.append(line("coverage", lambda b: units.percent(b.coverage)))
    for i in range(min(TERMINAL_OPS, max(len(b.operators) for b in profiled))):
        lines.append(line("top operators" if i == 0 else "", lambda b, i=i: _op_cell(b, i)))
    return lines


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def cautions(b: Breakdown) -> list[str]:
    """What a reader must know before trusting the profile's shares, in words."""
    if not b.profiled:
        return [f"not profiled: {b.reason}"]
    missing = b.row.get("missing")
    notes = missing.get("profiler") if isinstance(missing, dict) else None
    out = [f"profiler: {notes}"] if notes else []  # what the profiler warned of (lost events)
    if math.isfinite(b.coverage) and b.coverage < LOW_COVERAGE:
        out.append(f"operators cover {units.percent(b.coverage)} of the profiled time; the "
                   "rest is shown as unattributed")
    if math.isfinite(b.overhead) and b.overhead > HIGH_OVERHEAD:
        out.append(f"profiled calls took {b.overhead:.2f}× the timed median: the profiler's "
                   "per-operator cost inflates short operators")
    return out


def render_text(rows: Iterable[Row], ops: Iterable[Row]) -> str:
    """The terminal's "where the time goes" tables, one per profiled case; empty when the run
    has no operator rows."""
    cases = by_case(breakdowns(rows, ops))
    if not cases:
        return ""
    out = ["where the time goes (profiling pass after timing; per call, share of the profiled "
           "time; median over profiled repetitions):"]
    for case_id, group in cases.items():
        out += ["", case_id, *("  " + line for line in grid(_case_lines(group)))]
        out += [f"  {b.adapter}: {text}" for b in group for text in cautions(b)]
    return "\n".join(out)


# --- the report's tables ---------------------------------------------------------------------


def report_tables(found: Sequence[Breakdown]) -> tuple[PlainTable, ...]:
    """Per case: its categories with the backends side by side, then each backend's top
    operators."""
    out = []
    for case_id, group in by_case(found).items():
        profiled = [b for b in group if b.profiled]
        rows = [(c, *(_cell(b, c) if b.profiled else DASH for b in group))
                for c in categories(profiled)]
        rows += [("profiled time per call", *(_wall_cell(b) if b.profiled else DASH
                                              for b in group)),
                 ("coverage", *(units.percent(b.coverage) for b in group)),
                 ("profiler", *(b.profiler or DASH for b in group))]
        notes = [f"{b.adapter}: {text}" for b in group for text in cautions(b)]
        out.append(PlainTable(f"Where the time goes: {case_id}",
                              ("category", *(b.adapter for b in group)), tuple(rows),
                              "; ".join(notes)))
        out += [_operator_table(b) for b in profiled]
    return tuple(out)


def _operator_table(b: Breakdown) -> PlainTable:
    header = ("operator", "category", "provider", "calls", "self time", "share", "FLOPs",
              "FLOP/s")
    rows = []
    for op in b.operators[:REPORT_OPS]:
        flops = f"{units.rate(op.flops, 'FLOP')}" + (f" ({op.flops_source})"
                                                      if op.flops_source else "")
        achieved = op.flops / op.self_time_s if op.flops > 0 and op.self_time_s > 0 else math.nan
        rows.append((op.op, op.category, op.provider or DASH,
                     f"{op.calls:.3g}" if math.isfinite(op.calls) else DASH,
                     units.seconds(op.self_time_s), units.percent(op.share),
                     flops if math.isfinite(op.flops) else DASH, units.rate(achieved, "FLOP/s")))
    more = len(b.operators) - REPORT_OPS
    note = (f"{more} more operators; " if more > 0 else "") + (
        "per case call, median over profiled repetitions; FLOP/s is FLOPs ÷ self time "
        "under the profiler")
    return PlainTable(f"Top operators: {b.case_id} on {b.adapter}", header, tuple(rows), note)


# --- a roofline point per category -----------------------------------------------------------


@dataclass(frozen=True)
class CategoryPoint:
    """One category of one profile on the roofline, from its operators whose FLOPs and bytes
    are both known (``covered``: their share of the category's time)."""

    breakdown: Breakdown
    category: str
    flops: float
    bytes: float
    seconds: float
    covered: float

    @property
    def achieved(self) -> float:
        return self.flops / self.seconds

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes


def roofs(row: Row) -> list[tuple[str, float, float]]:
    """(name, FLOP/s, bytes/s) of each roof a row carries: the theoretical ceiling from the
    hardware, then the measured attainable peaks."""
    out = []
    for name, flops, bandwidth in (("ceiling", "peak_flops_ceiling", "peak_bytes_ceiling"),
                                   ("measured", "peak_flops_per_s", "peak_bytes_per_s")):
        pair = (_number(row.get(flops)), _number(row.get(bandwidth)))
        if all(v > 0 for v in pair):
            out.append((name, *pair))
    return out


def category_points(found: Iterable[Breakdown]) -> list[CategoryPoint]:
    """A point per profiled case, adapter and category with operators of known work."""
    points = []
    for b in found:
        for category in categories([b]):
            ops = [o for o in b.operators if o.category == category]
            known = [o for o in ops if o.flops > 0 and o.bytes > 0 and o.self_time_s > 0]
            if not known:
                continue
            seconds = sum(o.self_time_s for o in known)
            points.append(CategoryPoint(b, category, sum(o.flops for o in known),
                                        sum(o.bytes for o in known), seconds,
                                        seconds / sum(o.self_time_s for o in ops)))
    return points


def roof_fraction(point: CategoryPoint) -> tuple[float, str]:
    """The point's rate against the tightest known roof at its intensity (the ceiling where
    the row has one), and that roof's name; a rate above it is the roof's error, so the
    fraction is then NaN and the name says so."""
    known = roofs(point.breakdown.row)
    if not known:
        return math.nan, ""
    name, flops, bandwidth = known[0]
    roof = min(flops, point.intensity * bandwidth)
    if point.achieved > roof:
        return math.nan, f"above the {name} roof ({units.rate(roof, 'FLOP/s')}): that roof is wrong"
    return point.achieved / roof, name


def roofline_table(points: Sequence[CategoryPoint]) -> PlainTable | None:
    """The category points as a table (the Markdown report has no chart)."""
    if not points:
        return None
    rows = []
    for p in points:
        fraction, name = roof_fraction(p)
        rows.append((p.breakdown.case_id, p.breakdown.adapter, p.category,
                     units.rate(p.achieved, "FLOP/s"), f"{p.intensity:.3g} FLOP/B",
                     f"{units.percent(fraction)} of {name}" if math.isfinite(fraction)
                     else name or DASH, units.percent(p.covered)))
    return PlainTable("Roofline by category",
                      ("case", "adapter", "category", "FLOP/s", "intensity", "of roof",
                       "covers"), tuple(rows),
                      "Each category's FLOPs and bytes ÷ its self time under the profiler, from "
                      "its operators whose FLOPs and bytes are both known (\"covers\": their "
                      "share of the category's time); categories without such operators are "
                      "not placed. The roof is the theoretical ceiling where known, else the "
                      "measured peak.")
