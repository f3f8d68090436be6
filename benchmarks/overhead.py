"""The harness's own cost: the `null` adapter's timed call against a bare perf_counter_ns loop.

Both time the same empty function, interleaved over several rounds in one process (absolute
times drift on a shared machine; ratios within a round hold):

- **raw**: ``for _ in range(n): fn()`` between two ``perf_counter_ns`` reads, n = 100,000;
- **harness**: :class:`harness.timer.Timer` on the ``null`` adapter's step, default options:
  calibrated loops per sample, warm-up, sampling, the adapter's synchronise in every sample.

Per call, the harness's cost is its median minus the raw loop's; per sample, the fixed cost of a
clock read plus a synchronise (measured by the timer itself) over the sample's length. Targets
(issue 7): under 100 ns per call after calibration, under 0.1% of a sample.

    .venv/bin/python benchmarks/overhead.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from harness.adapters.null import NullAdapter
from harness.timer import Timer
from harness.workload import Task

RAW_CALLS = 100_000


def nothing() -> None:
    return None


def raw_per_call_s(fn: object, calls: int = RAW_CALLS, repeats: int = 21) -> float:
    """Median over ``repeats`` of a bare loop's seconds per call."""
    results = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()  # type: ignore[operator]
        results.append((time.perf_counter_ns() - t0) / calls * 1e-9)
    return statistics.median(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    adapter = NullAdapter()
    step = adapter.prepare(Task(fn=nothing))
    rows = []
    for r in range(args.rounds):
        raw = raw_per_call_s(step)
        m = Timer().measure(step, adapter.synchronize)
        median = statistics.median(m.samples_s)
        per_call = median - raw
        per_sample = m.overhead_s / (median * m.loops)
        rows.append((r + 1, raw, median, per_call, m.loops, m.overhead_s, per_sample))
    print(f"{'round':>5}  {'raw ns/call':>11}  {'harness ns/call':>15}  {'cost ns/call':>12}  "
          f"{'loops':>8}  {'clock+sync ns':>13}  {'of a sample':>11}")
    for r, raw, median, per_call, loops, overhead, share in rows:
        print(f"{r:>5}  {raw * 1e9:>11.1f}  {median * 1e9:>15.1f}  {per_call * 1e9:>12.1f}  "
              f"{loops:>8}  {overhead * 1e9:>13.0f}  {share * 100:>10.4f}%")
    cost = statistics.median(row[3] for row in rows)
    share = statistics.median(row[6] for row in rows)
    ok = cost < 100e-9 and share < 1e-3
    print(f"{'PASS' if ok else 'FAIL'}: harness cost {cost * 1e9:.1f} ns per call over a bare "
          f"loop (target < 100 ns), clock+sync {share * 100:.4f}% of a sample (target < 0.1%); "
          f"median of {args.rounds} rounds")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
