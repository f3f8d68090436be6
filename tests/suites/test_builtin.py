"""Every built-in workload, at quick size on the cpu adapter, passes its own check."""

from __future__ import annotations

import pytest

from harness import plugins
from harness.adapters.cpu import CpuAdapter
from harness.workload import Case


def quick_cases() -> list[Case]:
    return [
        Case(suite=suite.name, workload=wl, params=params)
        for suite in plugins.all_suites()
        for wl in suite.workloads.values()
        for params in wl.grid("quick")
    ]


@pytest.mark.parametrize("case", quick_cases(), ids=lambda c: c.id)
def test_quick_case_passes_its_check_on_cpu(case: Case) -> None:
    task = case.build()
    assert task.check is not None, "every built-in workload must define a correctness check"
    assert task.flops is not None and task.flops >= 0
    assert task.bytes is not None and task.bytes > 0
    adapter = CpuAdapter(threads=1)
    try:
        step = adapter.prepare(task)
        with adapter.running():
            task.check(adapter.to_host(step()))
    finally:
        adapter.close()
