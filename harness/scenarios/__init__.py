"""Load scenarios (MLPerf LoadGen's single-stream, offline, server and multi-stream) for any
workload on any adapter: latency under load, queueing included, from a schedule fixed in advance.

Modules: ``options`` (the scenario settings and their minimum durations and counts),
``schedule`` (seeded Poisson issue times), ``early_stopping`` (LoadGen's rule for tail
figures), ``serve`` (the issuing and serving loops), ``figures`` (a trace → row columns),
``case`` (one case under load on one adapter → one row), ``peak`` (the highest QPS within a
latency bound) and ``driver`` (a plan's cases, in worker processes, rows written as they come).
"""

from __future__ import annotations

from typing import Any

#: The scenarios ``--scenario`` offers; ``loop`` is the harness's calibrated timing loop
#: (many calls per sample for short calls), which is not a load scenario.
SCENARIOS = ("loop", "single-stream", "offline", "server", "multi-stream")
LOAD_SCENARIOS = SCENARIOS[1:]


def is_load_row(row: dict[str, Any]) -> bool:
    """Whether a result row comes from a load scenario (its latencies include queueing and it
    must not be pooled or compared with timing-loop rows of the same case)."""
    return row.get("scenario") in LOAD_SCENARIOS
