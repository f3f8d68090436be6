"""Re-record the profiler fixtures of tests/profiling/fixtures from the real profilers.

Run from the repository root: ``python -m tests.profiling.record``. Each fixture is the Chrome
trace exactly as the harness stores it (``traces/*.json.gz``, with its ``harness`` key) of a
small FFN (Linear, GELU, Linear) profiled for three calls; ``cprofile_stats.json`` is pstats'
raw table of a plain Python function. The CUDA fixture cannot be recorded without a GPU: it is
written by hand (see ``cuda_torch.json``).
"""

from __future__ import annotations

import cProfile
import gzip
import json
import pstats
from pathlib import Path
from typing import Any

from harness import plugins
from harness.workload import Case

HERE = Path(__file__).parent / "fixtures"
PARAMS = {"tokens": 16, "hidden": 64, "intermediate": 256, "dtype": "float32",
          "engine": "eager"}


def python_work(n: int = 2000) -> int:
    """A plain Python function: sums of squares in a dict."""
    table = {i: i * i for i in range(n)}
    return sum(table[i] for i in range(n))


def record(adapter_name: str, file: str) -> None:
    suite = plugins.load_suite("transformer")
    task = Case(suite=suite.name, workload=suite.workloads["ffn"], params=PARAMS).build()
    adapter = plugins.adapter_class(adapter_name)()
    try:
        step = adapter.prepare(task)
        with adapter.running():
            native = adapter.profile(task, step, 3)
    finally:
        adapter.close()
    assert native.trace is not None
    (HERE / file).write_bytes(gzip.compress(json.dumps(native.trace).encode()))


def record_cprofile() -> None:
    profiler = cProfile.Profile()
    for _ in range(3):
        profiler.runcall(python_work)
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [[file, line, func, cc, nc, tt, ct]
            for (file, line, func), (cc, nc, tt, ct, _callers) in stats.items()]
    (HERE / "cprofile_stats.json").write_text(json.dumps(rows, indent=0) + "\n")


if __name__ == "__main__":
    record("cpu", "torch_cpu.json.gz")
    record("xla-cpu", "jax_xla_cpu.json.gz")
    record("onnxruntime", "onnxruntime_cpu.json.gz")
    record_cprofile()
