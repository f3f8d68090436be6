"""Issue schedules, fixed by a seed before a run starts (so a slow system cannot change them).

A server scenario's queries arrive as a Poisson process: independent exponential gaps of mean
``1 / qps`` (LoadGen draws its server schedule the same way, from ``schedule_rng_seed``).
Because every issue time is known in advance, a query's latency is counted from the time it
*should* have been issued; a system that falls behind cannot hide the wait (no coordinated
omission).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt


def poisson_offsets(qps: float, count: int, seed: int) -> npt.NDArray[np.float64]:
    """``count`` issue times in seconds from the start, Poisson at ``qps``; the same seed gives
    the same schedule. The first query is issued at its first gap, not at 0, as in LoadGen."""
    if not (math.isfinite(qps) and qps > 0):
        raise ValueError(f"qps must be a positive number, got {qps!r}")
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.exponential(1.0 / qps, size=count))


def server_count(qps: float, min_duration_s: float, min_queries: int) -> int:
    """Queries in a server schedule: enough to span the minimum duration and reach the
    minimum count, whichever needs more."""
    return max(min_queries, math.ceil(qps * min_duration_s), 1)
