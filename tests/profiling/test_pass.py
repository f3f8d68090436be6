"""The profiling pass: how many calls, the trust figures, and a failing profiler that empties
the profile but keeps the row."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness import Task, workload
from harness.adapters import Step
from harness.adapters.null import NullAdapter
from harness.config import RunConfig, TimingOptions
from harness.execution.loop import Runner
from harness.plan import AdapterSpec, Plan
from harness.profiling.model import NativeProfile, OpTime
from harness.profiling.ops import PROFILE_KEY, UNATTRIBUTED, read_ops
from harness.profiling.pass_ import (
    MAX_CALLS,
    MIN_CALLS,
    PROFILE_COLUMNS,
    figures,
    profile_calls,
)
from harness.results import RunWriter, read_rows
from harness.workload import Case

FAST = TimingOptions(min_time_s=0.01, min_samples=3, max_warmup_s=0.05, warmup_window=2)


def add(x: int) -> int:
    return sum(range(x))


@workload(params={"n": [200]})
def summing(n: int) -> Task:
    return Task(fn=add, inputs=(n,), items=1, host_only=True)


class FailingProfiler(NullAdapter):
    name: ClassVar[str] = "null"

    def profile(self, task: Task, step: Step, calls: int) -> NativeProfile:
        raise RuntimeError("profiler library not loaded")


def run(adapter: NullAdapter, tmp_path: Path, profile: bool = True) -> dict[str, Any]:
    case = Case(suite="test", workload=summing, params={"n": 200})
    spec = AdapterSpec("null", {})
    writer = RunWriter(tmp_path, {})
    config = RunConfig(timing=FAST, collect=False, profile=profile)
    Runner(config, Plan([case], [spec]), writer).run({spec.label: adapter})
    writer.close()
    (row,) = read_rows(writer.path)
    return {"row": row, "ops": read_ops(writer.path), "path": writer.path}


@pytest.mark.parametrize("median, calls", [
    (1.0, MIN_CALLS), (0.01, 50), (1e-7, MAX_CALLS), (float("nan"), MIN_CALLS), (0.0, MIN_CALLS),
])
def test_calls_cover_about_half_a_second_within_bounds(median: float, calls: int) -> None:
    assert profile_calls(median) == calls


def test_figures_per_call_with_the_remainder_unattributed() -> None:
    native = NativeProfile("fake", calls=4, wall_s=0.4, ops=[
        OpTime("mm", "matmul", 8, 0.2, flops=8e9, flops_source="analytic"),
        OpTime("(Python)", "host", 4, 0.1)],
        trace={"traceEvents": []}, device_missing="no device here")
    row = {"case_id": "s/w", "adapter_label": "cpu", "repetition": 1}
    values, missing = figures(native, row, median=0.08)
    assert values["profile_wall_s"] == pytest.approx(0.1)
    assert values["profile_overhead"] == pytest.approx(1.25)
    assert values["profile_coverage"] == pytest.approx(0.75)
    assert math.isnan(values["device_busy_fraction"])
    assert missing["device_busy_fraction"] == "no device here"
    assert values["profile_trace"].endswith("s_w--cpu--r1.json.gz")
    ops = values[PROFILE_KEY]["ops"]
    assert [op["op"] for op in ops] == ["mm", "(Python)", UNATTRIBUTED]
    assert ops[0]["calls"] == 2 and ops[0]["self_time_s"] == pytest.approx(0.05)
    assert ops[0]["flops"] == pytest.approx(2e9)
    assert ops[-1]["share"] == pytest.approx(0.25) and ops[-1]["category"] == "unattributed"
    assert sum(op["share"] for op in ops) == pytest.approx(1.0)


def test_a_profiled_case_writes_its_ops_beside_its_row(tmp_path: Path) -> None:
    found = run(NullAdapter(), tmp_path)
    row = found["row"]
    assert row["status"] == "ok" and row["profiler"] == "cProfile"
    assert row["profile_calls"] >= MIN_CALLS and row["profile_coverage"] > 0
    assert PROFILE_KEY not in row
    assert {op["case_id"] for op in found["ops"]} == {row["case_id"]}
    assert found["ops"][-1]["op"] == UNATTRIBUTED
    assert "profile_trace" in row["missing"]  # cProfile has no timeline


def test_a_failing_profiler_empties_the_profile_and_keeps_the_row(tmp_path: Path) -> None:
    found = run(FailingProfiler(), tmp_path)
    row = found["row"]
    assert row["status"] == "ok" and row["latency_median_s"] > 0
    for column in PROFILE_COLUMNS:
        assert row[column] is None
        assert "profiler library not loaded" in row["missing"][column]
    assert found["ops"] == []


def test_an_unprofiled_run_has_no_profile(tmp_path: Path) -> None:
    found = run(NullAdapter(), tmp_path, profile=False)
    assert found["row"]["profiler"] is None and found["ops"] == []
    assert not (found["path"] / "traces").exists()


def test_a_row_without_nvml_says_why_its_utilization_is_empty(tmp_path: Path) -> None:
    row = run(NullAdapter(), tmp_path, profile=False)["row"]
    assert row["nvml_utilization"] is None  # stored empty
    assert row["missing"]["nvml_utilization"] == "the null adapter has no NVML utilization counter"
