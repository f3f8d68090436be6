"""Workloads with an injected, calibrated slowdown: the test bed of the detection-power study.

Each workload here is one of the real suites' quick cases plus a ``slowdown`` parameter, the
fraction of extra work :func:`harness.inject.slowed` adds to every call (0: the case itself).
``benchmarks/detection_power.py`` times ``slowdown=0`` against ``slowdown=0`` (A/A) and against
0.02, 0.05 and 0.10 (A/B) to count false alarms and detections. Not a registered suite (it is
not part of a default run); load it as ``-s suites.injected``.
"""

from __future__ import annotations

from harness import Task, workload
from harness.inject import check_fraction, slowed
from suites import lookup, transformer

SLOWDOWNS = [0.0, 0.02, 0.05, 0.1]

#: (workload, slowdown, other parameters) → calibrated units of extra work. Calibrated once per
#: process, so every build of a case injects the same work, as one code change would.
_UNITS: dict[tuple[str, float, str], int] = {}


def _slowed(name: str, task: Task, slowdown: float, params: str) -> Task:
    key = (name, slowdown, params)
    out = slowed(task, slowdown, _UNITS.get(key))
    if slowdown:
        _UNITS[key] = int(out.meta["injected_units"])
    return out


@workload(params={"slowdown": SLOWDOWNS, "tokens": [128]}, validate={"slowdown": check_fraction})
def ffn(slowdown: float, tokens: int) -> Task:
    """The transformer FFN block (768 → 3072 → 768, float32, eager), ``slowdown`` slower."""
    task = transformer.ffn.build(tokens=tokens, hidden=768, intermediate=3072,
                                 dtype="float32", engine="eager")
    return _slowed("ffn", task, slowdown, f"tokens={tokens}")


@workload(params={"slowdown": SLOWDOWNS, "impl": ["dict", "pandas"]},
          validate={"slowdown": check_fraction})
def hash_lookup(slowdown: float, impl: str) -> Task:
    """Hash lookups (1,000 keys, 4,096 queries, 90% hits), ``slowdown`` slower."""
    task = lookup.hash_lookup.build(n_keys=1_000, batch=4096, hit_rate=0.9, impl=impl)
    return _slowed("hash_lookup", task, slowdown, f"impl={impl}")
