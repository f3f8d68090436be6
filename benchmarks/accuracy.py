"""Accuracy: the harness's median against torch.utils.benchmark and pytest-benchmark.

For each case (attention, ffn, BERT tiny and base, hash and B-tree lookups, quick sizes, on
``cpu``), one process times the same prepared callable three ways, interleaved over rounds
(this VM's speed drifts between seconds; ratios within a round hold, and each reference is
compared with the mean of the harness measurements just before and after it):

- **harness**: :class:`harness.timer.Timer` with default options on the ``cpu`` adapter's step;
- **torch**: ``torch.utils.benchmark.Timer(...).blocked_autorange(min_run_time=1)``;
- **pytest-benchmark**: the same case through our pytest plugin, ``pytest.main`` in-process.

Prints, per case, the median ratio harness/torch and harness/pytest-benchmark over the rounds,
and a summary line. Target (issue 7): within ±3% of each reference.

    .venv/bin/python benchmarks/accuracy.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import plugins
from harness.adapters.cpu import CpuAdapter
from harness.timer import Timer
from harness.workload import Case, format_value

CASES = [
    ("attention", {"impl": "sdpa"}),
    ("ffn", {}),
    ("bert", {"size": "tiny"}),
    ("bert", {"size": "base"}),
    ("hash_lookup", {"impl": "torch"}),
    ("btree_lookup", {"impl": "searchsorted", "op": "point"}),
]


def case_for(workload: str, overrides: dict[str, Any]) -> Case:
    for suite in plugins.all_suites():
        if workload in suite.workloads:
            wl = suite.workloads[workload]
            params = {**wl.grid("quick")[0], **overrides}
            return Case(suite=suite.name, workload=wl, params=params)
    raise SystemExit(f"no workload {workload}")


def harness_median(step: Any, adapter: CpuAdapter) -> float:
    with adapter.running():
        return statistics.median(Timer().measure(step, adapter.synchronize).samples_s)


def torch_median(step: Any, adapter: CpuAdapter) -> float:
    import torch
    from torch.utils import benchmark

    # torch's Timer runs single-threaded unless told otherwise: match the adapter's threads.
    timer = benchmark.Timer(stmt="step()", globals={"step": step},
                            num_threads=torch.get_num_threads())
    with adapter.running():
        return float(timer.blocked_autorange(min_run_time=1.0).median)


def pytest_benchmark_median(case: Case, folder: Path) -> float:
    import pytest

    out = folder / "bench.json"
    args = ["--pyargs", "harness.pytest_cases", "--harness", "--harness-adapter", "cpu",
            "--harness-workload", case.workload.name, "-q", "-p", "no:cacheprovider",
            "--benchmark-only", f"--benchmark-json={out}"]
    for key, value in case.params.items():
        if value != "":  # an empty free value (bert's model_path) keeps its default
            args += ["--harness-param", f"{key}={format_value(value)}"]
    if pytest.main(args) != 0:
        raise SystemExit(f"pytest-benchmark failed on {case.id}")
    benches = json.loads(out.read_text())["benchmarks"]
    (bench,) = [b for b in benches if b["extra_info"]["harness_case_id"] == case.id]
    return float(bench["stats"]["median"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    adapter = CpuAdapter()
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for workload, overrides in CASES:
            case = case_for(workload, overrides)
            step = adapter.prepare(case.build())
            vs_torch, vs_pytest, ours = [], [], []
            for _ in range(args.rounds):
                # Each reference is bracketed by harness measurements (H T H P H): comparing it
                # with the mean of the two around it cancels a drift that is linear over the
                # round, which on this VM is most of it.
                before = harness_median(step, adapter)
                torch_s = torch_median(step, adapter)
                middle = harness_median(step, adapter)
                pytest_s = pytest_benchmark_median(case, Path(tmp))
                after = harness_median(step, adapter)
                vs_torch.append((before + middle) / 2 / torch_s)
                vs_pytest.append((middle + after) / 2 / pytest_s)
                ours.append(middle)
            table.append((case.id, statistics.median(ours), statistics.median(vs_torch),
                          statistics.median(vs_pytest)))
    adapter.close()
    print(f"\n{'case':<70}  {'harness':>9}  {'/torch':>7}  {'/pytest-bm':>10}")
    for case_id, ours, t, p in table:
        print(f"{case_id[:70]:<70}  {ours * 1e3:>7.3f}ms  {t:>7.3f}  {p:>10.3f}")
    worst = max(max(abs(t - 1), abs(p - 1)) for _, _, t, p in table)
    ok = worst <= 0.03
    print(f"{'PASS' if ok else 'FAIL'}: largest deviation of the harness's median from a "
          f"reference {worst:.1%} (target ±3%), median of {args.rounds} bracketed rounds")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
