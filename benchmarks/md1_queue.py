"""The server scenario against queueing theory: a step with a fixed service time D, batching
off, Poisson arrivals at 50% and 80% load, on the real clock.

For each load ρ it prints the measured mean wait (service start minus scheduled arrival), the
M/D/1 queue's mean wait for the same seeded arrivals and the service times the calls took
(Lindley's recursion), and the closed-form mean ρD / (2(1 − ρ)), which one sequence of a few
hundred arrivals only approaches (±17% at ρ = 0.8 from one seed to the next). Target (the load
scenarios issue): measured within 10% of the M/D/1 prediction.

    .venv/bin/python benchmarks/md1_queue.py [--service-ms 10] [--seconds 8]
"""

from __future__ import annotations

import argparse
import time
from typing import Any, ClassVar

import numpy as np

from harness.adapters import Adapter, Step
from harness.scenarios.case import Batches, run_scenario
from harness.scenarios.figures import figures
from harness.scenarios.options import LoadOptions
from harness.scenarios.schedule import poisson_offsets
from harness.workload import Task


def hold(seconds: float) -> None:
    """Sleep, then spin the last millisecond: a fixed service time despite sleep's overshoot."""
    end = time.perf_counter() + seconds
    if seconds > 2e-3:
        time.sleep(seconds - 1e-3)
    while time.perf_counter() < end:
        pass


class HostAdapter(Adapter):
    name: ClassVar[str] = "host"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    def prepare(self, task: Task) -> Step:
        fn, inputs = task.fn, task.inputs
        return lambda: fn(*inputs)


def lindley(offsets: Any, service: Any) -> Any:
    waits = np.zeros(len(offsets))
    for i in range(1, len(offsets)):
        waits[i] = max(0.0, waits[i - 1] + service[i - 1] - (offsets[i] - offsets[i - 1]))
    return waits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-ms", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    d = args.service_ms / 1e3
    adapter = HostAdapter()
    batches = Batches(adapter, {1: adapter.prepare(Task(fn=hold, inputs=(d,)))})
    worst = 0.0
    for rho in (0.5, 0.8):
        qps = rho / d
        options = LoadOptions("server", qps=qps, rule="quick", duration_s=args.seconds, seed=11)
        trace = run_scenario(batches, options, qps)
        row, _, _ = figures(trace, options, items=1)
        offsets = poisson_offsets(qps, len(trace.scheduled_ns), seed=11)
        served = (trace.done_ns - trace.start_ns) * 1e-9
        waits = (trace.start_ns - trace.scheduled_ns) * 1e-9
        predicted = lindley(offsets, served).mean()
        closed = rho * d / (2 * (1 - rho))
        ratio = waits.mean() / predicted
        worst = max(worst, abs(ratio - 1))
        print(f"rho {rho}: {len(offsets)} queries, service {served.mean() * 1e3:.3f} ms; mean wait "
              f"{waits.mean() * 1e3:.2f} ms measured, {predicted * 1e3:.2f} ms M/D/1 "
              f"(ratio {ratio:.3f}), {closed * 1e3:.2f} ms closed form; generator lag p99 "
              f"{row['generator_lag_s'] * 1e3:.2f} ms, valid {row['load_valid']}")
    print("PASS" if worst <= 0.10 else "FAIL", f"(largest deviation {worst:.1%}, target 10%)")
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    raise SystemExit(main())
