"""Where a slower case's extra time went: its categories' and operators' per-call seconds in the
baseline's and the candidate's profiles, the change of each, and its part of the whole change.

The verdict itself comes from ``harness.compare`` (timed samples); this only explains a
``slower`` case from the profiling pass of both runs. Each profiled repetition (a process) gives
one value per category and operator; a change is *within noise* when the two sides' ranges of
values overlap. With a single profiled repetition per side there is no range to judge by, and
the part says so (``within_noise`` is None): profile with ``--repeat`` to tell.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from harness import opstats
from harness.compare import Comparison

K = TypeVar("K", bound=Hashable)
#: operators listed per case: those that changed most, either way.
TOP_OPERATORS = 8


@dataclass(frozen=True)
class Part:
    """One category or operator of a slower case, per case call (median over repetitions)."""

    name: str
    category: str
    baseline_s: float
    candidate_s: float
    #: change ÷ the change of the whole profiled time per call; NaN when that did not grow.
    contribution: float
    #: the repetitions' ranges overlap; None with one profiled repetition per side.
    within_noise: bool | None

    @property
    def delta_s(self) -> float:
        return self.candidate_s - self.baseline_s


@dataclass(frozen=True)
class ProfileDiff:
    """A slower case's change, by category and by operator; or why it cannot be attributed."""

    case_id: str
    adapter: str
    #: the timed ratio, candidate median ÷ baseline median.
    ratio: float
    baseline_s: float = math.nan
    candidate_s: float = math.nan
    repetitions: tuple[int, int] = (0, 0)
    categories: tuple[Part, ...] = ()
    operators: tuple[Part, ...] = ()
    within_noise: bool | None = None
    note: str = ""

    @property
    def delta_s(self) -> float:
        return self.candidate_s - self.baseline_s


def diff_profiles(comparisons: Iterable[Comparison], baseline_ops: Iterable[opstats.Op],
                  candidate_ops: Iterable[opstats.Op],
                  top: int = TOP_OPERATORS) -> list[ProfileDiff]:
    """A profile diff per ``slower`` comparison; none at all when neither run was profiled."""
    base, cand = opstats.by_case(baseline_ops), opstats.by_case(candidate_ops)
    if not base and not cand:
        return []
    out = []
    for c in comparisons:
        if c.verdict != "slower":
            continue
        b, k = _find(base, c.case_id, c.adapter), _find(cand, c.case_id, c.adapter)
        if not b or not k:
            which = " and ".join(side for side, ops in (("baseline", b), ("candidate", k))
                                 if not ops)
            out.append(ProfileDiff(c.case_id, c.adapter, c.ratio,
                                   note=f"no profile in the {which} (run it with --profile)"))
            continue
        out.append(_diff(c, b, k, top))
    return out


def _find(grouped: dict[opstats.CaseKey, list[opstats.Op]], case_id: str,
          adapter: str) -> list[opstats.Op]:
    """The case's operators on ``adapter``: by its label, or the one label of that adapter
    (``cpu`` finds ``cpu:threads=2`` when that is the only cpu profile of the case)."""
    if (case_id, adapter) in grouped:
        return grouped[(case_id, adapter)]
    labels = [label for case, label in grouped
              if case == case_id and label.startswith(f"{adapter}:")]
    return grouped[(case_id, labels[0])] if len(labels) == 1 else []


def _diff(c: Comparison, base: list[opstats.Op], cand: list[opstats.Op],
          top: int) -> ProfileDiff:
    by_category = (opstats.per_repetition(base, opstats.category_key),
                   opstats.per_repetition(cand, opstats.category_key))
    totals = tuple([sum(values) for values in zip(*side.values(), strict=True)]
                   for side in by_category)
    before, after = opstats.median(totals[0]), opstats.median(totals[1])
    change = after - before
    categories = _parts(*by_category, change, lambda key: (str(key), str(key)))
    by_op = (opstats.per_repetition(base, opstats.op_key),
             opstats.per_repetition(cand, opstats.op_key))
    operators = _parts(*by_op, change, lambda key: (str(key[0]), str(key[1])))
    largest = sorted(operators, key=lambda p: -abs(p.delta_s))[:top]
    note = ""
    if not change > 0:
        note = ("the profiled time per call did not grow: the profiles do not show this "
                "slowdown (profiler overhead can hide a change; profile with --repeat)")
    return ProfileDiff(c.case_id, c.adapter, c.ratio, before, after,
                       (len(opstats.repetitions(base)), len(opstats.repetitions(cand))),
                       tuple(categories), tuple(sorted(largest, key=lambda p: -p.delta_s)),
                       _within_noise(*totals), note)


def _parts(base: dict[K, list[float]], cand: dict[K, list[float]], change: float,
           names: Callable[[K], tuple[str, str]]) -> list[Part]:
    """A part per key of either side (0 s in every repetition of a side without it), largest
    increase first."""
    reps = (len(next(iter(base.values()), [0.0])), len(next(iter(cand.values()), [0.0])))
    out = []
    for key in dict.fromkeys([*base, *cand]):
        b, k = base.get(key, [0.0] * reps[0]), cand.get(key, [0.0] * reps[1])
        name, category = names(key)
        delta = opstats.median(k) - opstats.median(b)
        out.append(Part(name, category, opstats.median(b), opstats.median(k),
                        delta / change if change > 0 else math.nan, _within_noise(b, k)))
    return sorted(out, key=lambda p: -p.delta_s)


def _within_noise(base: Sequence[float], cand: Sequence[float]) -> bool | None:
    """Whether the two sides' per-repetition values overlap; None with one value each."""
    if len(base) < 2 and len(cand) < 2:
        return None
    return min(cand) <= max(base) and max(cand) >= min(base)
