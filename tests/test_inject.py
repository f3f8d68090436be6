"""Calibrated extra work: the calibration's arithmetic, the wrapped task, bad fractions."""

from __future__ import annotations

import pytest

from harness.inject import calibrate, slowed, spin
from harness.workload import Task, WorkloadError


def test_calibration_finds_the_units_that_cost_the_fraction() -> None:
    # A call that is itself 20,000 units: 10% of it is 2,000 units. The bounds are a factor of
    # two wide (a shared machine), but a calibration that confused units with nanoseconds or
    # inverted the ratio would land orders of magnitude away.
    units = calibrate(lambda: spin(20_000), 0.10, budget_s=0.05)
    assert 1_000 <= units <= 4_000


def test_zero_slowdown_leaves_the_task_alone() -> None:
    task = Task(fn=abs, inputs=(-3,))
    same = slowed(task, 0.0)
    assert same.fn is abs
    assert same.meta["injected_slowdown"] == 0.0


def test_slowed_task_returns_the_same_answer_with_the_work_added() -> None:
    calls = []

    def fn(x: int) -> int:
        calls.append(x)
        return x * 2

    task = Task(fn=fn, inputs=(21,), impls={"cpu": fn}, meta={"model": "doubler"})
    padded = slowed(task, 0.05, units=1_000)
    assert padded.fn(*padded.inputs) == 42
    assert calls == [21]
    assert padded.impls == {}  # an adapter's own implementation would skip the extra work
    assert padded.meta == {"model": "doubler", "injected_slowdown": 0.05,
                           "injected_units": 1_000}


@pytest.mark.parametrize("fraction", [-0.01, 10.0])
def test_a_fraction_out_of_range_is_refused(fraction: float) -> None:
    with pytest.raises(WorkloadError, match="slowdown must be a fraction"):
        slowed(Task(fn=abs, inputs=(1,)), fraction)


def test_the_injected_suite_reuses_one_calibration_per_case() -> None:
    from suites import injected

    first = injected.hash_lookup.build(slowdown=0.05, impl="dict")
    second = injected.hash_lookup.build(slowdown=0.05, impl="dict")
    assert first.meta["injected_units"] == second.meta["injected_units"] > 0
    assert first.check is not None
    first.check(first.fn(*first.inputs))  # still the right answers
    with pytest.raises(WorkloadError, match="slowdown"):
        injected.hash_lookup.check_params({"slowdown": -1.0})
