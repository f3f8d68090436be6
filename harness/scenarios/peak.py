"""``--find-peak``: the highest offered QPS whose p99 latency stays within the bound.

The search runs on a grid of QPS values ``start × 1.2^k`` (k an integer), so that it ends on
two neighbours that were both measured: the peak (the bound met) and the QPS 20% above it (the
bound missed). It gallops from the start (k = 1, 2, 4, 8 … up while the bound is met, or down
while it is missed), then bisects the bracket until the two are neighbours. Every probe is a
full server run of its own; on a noisy machine two probes may disagree with monotonicity, and
the result is simply the last bracket the probes measured, stated as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

#: Neighbouring grid values differ by this factor: the peak is confirmed by a run this much above.
STEP = 1.2
#: Server runs one search may take at most (each one lasts the scenario's full duration).
MAX_PROBES = 16


@dataclass
class PeakSearch:
    """The outcome: ``peak_qps`` met the bound, ``above_qps`` (20% higher) missed it; either is
    None when the search never found one (the note says why). ``probes`` lists each run's
    (qps, met) in the order they ran."""

    peak_qps: float | None = None
    above_qps: float | None = None
    probes: list[tuple[float, bool]] = field(default_factory=list)
    note: str = ""


def find_peak(probe: Callable[[float], bool], start_qps: float,
              max_probes: int = MAX_PROBES) -> PeakSearch:
    """Search with ``probe(qps) -> met`` (one server run per call) from ``start_qps``."""
    search = PeakSearch()
    met: dict[int, bool] = {}

    def at(k: int) -> bool:
        if k not in met:
            qps = start_qps * STEP ** k
            met[k] = probe(qps)
            search.probes.append((qps, met[k]))
        return met[k]

    def budget() -> bool:
        return len(met) < max_probes

    low: int | None = None
    high: int | None = None
    if at(0):
        low, step = 0, 1
        while budget():
            if at(low + step):
                low, step = low + step, step * 2
            else:
                high = low + step
                break
    else:
        high, step = 0, 1
        while budget():
            if at(high - step):
                low = high - step
                break
            high, step = high - step, step * 2
    while low is not None and high is not None and high - low > 1 and budget():
        middle = (low + high) // 2
        if at(middle):
            low = middle
        else:
            high = middle
    if low is None:
        lowest = min(q for q, _ in search.probes)
        search.note = (f"no QPS met the bound, down to {lowest:.4g} after {len(met)} runs")
        return search
    search.peak_qps = start_qps * STEP ** low
    if high is None:
        search.note = (f"the bound was still met at {search.peak_qps:.4g} QPS when the search "
                       f"ran out of its {max_probes} runs: the peak is higher")
    elif high - low > 1:
        search.note = (f"the search ran out of its {max_probes} runs between "
                       f"{search.peak_qps:.4g} and {start_qps * STEP ** high:.4g} QPS")
    else:
        search.above_qps = start_qps * STEP ** high
    return search
