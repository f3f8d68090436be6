"""Arithmetic on operator tables (``ops.jsonl`` rows): grouping by case and adapter, per-call
seconds per category or operator in each profiled repetition, and their medians.

A profiled repetition is one (run, repetition) pair: the profiles of separate processes, so
their spread is the between-process noise of the profile. Something absent from a repetition's
table took no time there (0 s), so a category that appears in one process only is not mistaken
for a steady cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

Op = dict[str, Any]
K = TypeVar("K", bound=Hashable)
#: (case id, adapter label): what a profile belongs to, whichever run it came from.
CaseKey = tuple[str, str]


def by_case(ops: Iterable[Op]) -> dict[CaseKey, list[Op]]:
    """Operator rows grouped by case and adapter label, in first-seen order."""
    out: dict[CaseKey, list[Op]] = {}
    for op in ops:
        out.setdefault((str(op["case_id"]), str(op["adapter"])), []).append(op)
    return out


def repetitions(ops: Iterable[Op]) -> list[tuple[str, int]]:
    """The profiled repetitions, (run id, repetition), in first-seen order."""
    return list(dict.fromkeys((str(op.get("run_id") or ""), int(op.get("repetition") or 0))
                              for op in ops))


def per_repetition(ops: Sequence[Op], key: Callable[[Op], K],
                   column: str = "self_time_s") -> dict[K, list[float]]:
    """``column`` summed per ``key`` in each profiled repetition: one value per repetition, 0
    where a repetition has no such operator; unknown (NaN) values are left out of the sums."""
    reps = repetitions(ops)
    index = {rep: i for i, rep in enumerate(reps)}
    out: dict[K, list[float]] = {}
    for op in ops:
        value = op.get(column)
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        sums = out.setdefault(key(op), [0.0] * len(reps))
        sums[index[(str(op.get("run_id") or ""), int(op.get("repetition") or 0))]] += value
    return out


def median(values: Sequence[float]) -> float:
    """The median; NaN for no values."""
    ordered = sorted(v for v in values if math.isfinite(v))
    if not ordered:
        return math.nan
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def op_key(op: Op) -> tuple[str, str, str]:
    """What identifies an operator across repetitions and runs: name (with its phase, for a
    generation task's prefill and decode), category, provider."""
    name = str(op["op"]) + (f" [{op['phase']}]" if op.get("phase") else "")
    return name, str(op["category"]), str(op.get("provider") or "")


def category_key(op: Op) -> str:
    return str(op["category"])
