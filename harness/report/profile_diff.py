"""``harness compare``'s account of where a slower case's time went, from both runs' profiles:
per category and per operator, per-call seconds before and after, the change, its part of the
whole change, and a note where the change is within the noise of the profiled repetitions."""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.profile_diff import Part, ProfileDiff
from harness.report import units

HEADING = ("where the slower cases' time went (profiling pass, per call, median over profiled "
           "repetitions; the profiler's own cost is included on both sides)")
CATEGORY_HEADER = ("category", "baseline", "candidate", "change", "of the change", "note")
OPERATOR_HEADER = ("operator", "category", "baseline", "candidate", "change", "of the change",
                   "note")


def _signed(seconds: float) -> str:
    if not math.isfinite(seconds):
        return units.DASH
    if seconds == 0:
        return "0"
    return ("+" if seconds > 0 else "-") + units.seconds(abs(seconds))


def _noise(within: bool | None) -> str:
    return {True: "within noise", False: "", None: "noise unknown"}[within]


def _figures(part: Part) -> tuple[str, ...]:
    return (units.seconds(part.baseline_s), units.seconds(part.candidate_s),
            _signed(part.delta_s), units.percent(part.contribution), _noise(part.within_noise))


def _operator_name(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def summary(a: ProfileDiff) -> str:
    """One line: the case, the timed change, and the profiled time per call before and after."""
    timed = f"{(a.ratio - 1) * 100:+.1f}%" if math.isfinite(a.ratio) else units.DASH
    head = f"{a.case_id} on {a.adapter}: timed {timed}"
    if not a.categories:
        return f"{head}; {a.note}"
    line = (f"{head}; profiled {units.seconds(a.baseline_s)} → {units.seconds(a.candidate_s)} "
            f"({_signed(a.delta_s)}), {a.repetitions[0]}/{a.repetitions[1]} profiled "
            "repetitions")
    if a.within_noise:
        line += "; the profiled change is within the noise of the repetitions"
    return line + (f"; {a.note}" if a.note else "")


def rows(a: ProfileDiff) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """The category rows and operator rows of one profile diff, as text."""
    categories = [(p.name, *_figures(p)) for p in a.categories]
    operators = [(_operator_name(p.name), p.category, *_figures(p)) for p in a.operators]
    return categories, operators


def text(diffs: Sequence[ProfileDiff]) -> list[str]:
    """Lines for the terminal: per slower case its summary, categories and operators."""
    if not diffs:
        return []
    out = [HEADING]
    for a in diffs:
        out += ["", summary(a)]
        categories, operators = rows(a)
        if categories:
            out += ["  " + line for line in units.grid([CATEGORY_HEADER, *categories])]
            out += ["", *("  " + line for line in units.grid([OPERATOR_HEADER, *operators]))]
    return out
