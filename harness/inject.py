"""Calibrated extra work: make a task slower by a known fraction, for detection studies.

A regression gate is judged by how often it flags a slowdown of a given size and how often it
flags nothing at all (A/A). That needs slowdowns of known size that behave like a real code
change: more work of the same kind on the same core, not a sleep (a sleep does not slow down
when the machine does, and frees the core). :func:`slowed` appends ``n`` steps of an interpreter
loop to every call, with ``n`` calibrated so that they cost ``fraction`` of one call.

The calibration interleaves calls of the task with blocks of extra work, so both see the same
machine, and compares their fast ends (see :func:`calibrate`). The slowdown a study actually
injected is still a measurement to report (the paired time ratio), not this target.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from harness.workload import Task, WorkloadError

#: the calibration's interleaved rounds: at least this many, and until this much time passed
#: (a short call gets many rounds: the ratio's median then steadies to a fraction of a percent).
ROUNDS = 31
CALIBRATION_S = 0.3


def spin(n: int) -> int:
    """``n`` units of extra work: steps of a plain interpreter loop (tens of ns each, so even
    a 2% slowdown of a 50 µs call is many units and the rounding error stays small)."""
    total = 0
    for i in range(n):
        total += i
    return total


def calibrate(call: Callable[[], Any], fraction: float, rounds: int = ROUNDS,
              budget_s: float = CALIBRATION_S) -> int:
    """How many units of :func:`spin` cost ``fraction`` of one ``call``, measured interleaved:
    each round times one call and then a block of extra work.

    The ratio is taken between the fast ends (10th percentiles) of the two: a neighbour's burst
    slows a multi-threaded call (threads stall each other) far more than the single-threaded
    extra work, so ratios taken under contention would overshoot once the machine is quiet;
    the fast end is each side's uncontended cost.
    """
    clock = time.perf_counter_ns
    call()
    start = clock()
    call()
    call_ns = max(clock() - start, 1)
    spin(1000)
    start = clock()
    spin(1000)
    unit_ns = max((clock() - start) / 1000, 1e-3)
    # A block of about as many units as the answer, so each timed block is long enough to read.
    block = max(100, round(fraction * call_ns / unit_ns))
    calls: list[int] = []
    units: list[float] = []
    end = clock() + budget_s * 1e9
    while len(calls) < rounds or (clock() < end and len(calls) < 100 * rounds):
        t0 = clock()
        call()
        t1 = clock()
        spin(block)
        t2 = clock()
        calls.append(max(t1 - t0, 1))
        units.append((t2 - t1) / block)
    return max(1, round(fraction * _low(calls) / max(_low(units), 1e-3)))


def _low(values: list[Any]) -> float:
    """The 10th percentile: the fast end of a timing's spread."""
    ordered = sorted(values)
    return float(ordered[len(ordered) // 10])


def check_fraction(value: Any) -> None:
    """A workload validator: ``value`` is a slowdown fraction in [0, 10)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 10:
        raise WorkloadError(f"must be a fraction in [0, 10), got {value!r}")


def slowed(task: Task, fraction: float, units: int | None = None) -> Task:
    """``task`` with calibrated extra work making each call ``fraction`` slower (0: unchanged).

    The extra work runs after ``task.fn`` in the same call, so every adapter that runs the
    Python callable (``cpu``, ``null``) times it; adapters that compile or export ``fn`` are not
    what a study of the gate needs, and the calibration is for eager execution on the host.
    ``units`` skips the calibration (a study reuses one calibration across its trials, so
    each trial injects the same work, as one code change would). ``meta`` records the target
    fraction and the units of work added.
    """
    try:
        check_fraction(fraction)
    except WorkloadError as exc:
        raise WorkloadError(f"slowdown {exc}") from None
    if fraction == 0:
        return replace(task, meta={**task.meta, "injected_slowdown": 0.0})
    import torch

    fn, inputs = task.fn, task.inputs
    # Calibrated in the conditions the cpu adapter times in (inference mode, its threads).
    if units is None:
        with torch.inference_mode():
            units = calibrate(lambda: fn(*inputs), fraction)
    extra = units

    def padded(*args: Any) -> Any:
        out = fn(*args)
        spin(extra)
        return out

    return replace(task, fn=padded, impls={},
                   meta={**task.meta, "injected_slowdown": fraction, "injected_units": units})
