"""Prefill and decode in profiles of generation tasks: cutting call windows at the first
token's mark (later on a GPU, when prefill's device work ends after it), a CUDA trace parsed
per phase, and a tiny LLM profiled on the CPU with both phases in its operator table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from harness.adapters.cpu import CpuAdapter
from harness.config import RunConfig, TimingOptions
from harness.execution.loop import Runner
from harness.plan import AdapterSpec, Plan
from harness.profiling import torch_profile
from harness.profiling.model import CALL
from harness.profiling.ops import read_ops
from harness.profiling.phases import DECODE, PREFILL, TOKEN, split, token_marks
from harness.results import RunWriter
from harness.workload import Case
from suites.generate import generate


def test_calls_are_cut_at_the_first_tokens_mark() -> None:
    windows = [(0.0, 100.0), (200.0, 260.0)]
    marks = [1.0, 40.0, 60.0, 80.0, 201.0, 230.0, 245.0]
    assert split(windows, marks) == {PREFILL: [(0.0, 40.0), (200.0, 230.0)],
                                     DECODE: [(40.0, 100.0), (230.0, 260.0)]}


def test_device_work_launched_before_the_mark_moves_the_cut_to_its_end() -> None:
    # Launched at 30 (before the mark at 40), done at 55: prefill lasts until 55. Work
    # launched at 45 is decode's, however long it runs; a cut never leaves its window.
    launches = [(30.0, 55.0), (45.0, 90.0), (202.0, 400.0)]
    parts = split([(0.0, 100.0), (200.0, 260.0)], [1.0, 40.0, 201.0, 230.0], launches)
    assert parts[PREFILL] == [(0.0, 55.0), (200.0, 260.0)]
    assert parts[DECODE] == [(55.0, 100.0), (260.0, 260.0)]


def test_a_call_without_the_first_tokens_mark_cannot_be_cut() -> None:
    with pytest.raises(ValueError, match="holds 1 token marks"):
        split([(0.0, 100.0)], [1.0, 150.0])


def test_only_host_annotations_count_as_marks() -> None:
    events = [{"name": TOKEN, "cat": "user_annotation", "ts": 5},
              {"name": TOKEN, "cat": "gpu_user_annotation", "ts": 7},
              {"name": "aten::mm", "cat": "cpu_op", "ts": 6}]
    assert token_marks(events) == [5.0]


def x(name: str, cat: str, ts: float, dur: float, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "name": name, "cat": cat, "ts": ts, "dur": dur, "pid": 0, "tid": 1,
            "args": args}


def test_a_cuda_trace_attributes_kernels_to_the_phase_that_launched_them() -> None:
    # One 100 µs call: prefill's kernel is launched at 10 and runs 20-50, after the host's
    # first-token mark at 15; decode's kernel is launched at 16 and runs 60-90.
    events = [x(CALL, "user_annotation", 0, 100), x(TOKEN, "user_annotation", 1, 0.1),
              x(TOKEN, "user_annotation", 15, 0.1),
              x("cudaLaunchKernel", "cuda_runtime", 10, 2, correlation=1),
              x("cudaLaunchKernel", "cuda_runtime", 16, 2, correlation=2),
              x("gemm", "kernel", 20, 30, correlation=1),
              x("gemv", "kernel", 60, 30, correlation=2)]
    trace = {"traceEvents": events, "harness": {"calls": 1, "wall_s": 1e-4, "call_s": [1e-4],
                                                "device": "cuda:0", "cuda": True,
                                                "phases": True}}
    native = torch_profile.parse(trace)
    times = {(op.op, op.phase): op.time_s for op in native.ops}
    assert times[("gemm", PREFILL)] == pytest.approx(30e-6)
    assert times[("gemv", DECODE)] == pytest.approx(30e-6)
    idle = "(device idle: launches, Python, synchronisation)"
    assert times[(idle, PREFILL)] == pytest.approx(20e-6)  # 0-20, before the kernel
    assert times[(idle, DECODE)] == pytest.approx(20e-6)  # 50-60 and 90-100
    assert native.device_busy_s == pytest.approx(60e-6) and not native.notes


def test_a_trace_without_marks_keeps_one_table_and_says_why() -> None:
    trace = {"traceEvents": [x(CALL, "user_annotation", 0, 100), x("aten::mm", "cpu_op", 10, 50)],
             "harness": {"calls": 1, "wall_s": 1e-4, "call_s": [1e-4], "device": "cpu",
                         "phases": True}}
    native = torch_profile.parse(trace)
    assert {op.phase for op in native.ops} == {""}
    assert native.notes == ["prefill and decode not told apart: a profiled call holds 0 token "
                            "marks, not the mark before prefill and the first token's"]


@pytest.mark.slow
def test_a_tiny_llm_profiled_on_the_cpu_has_prefill_and_decode(tmp_path: Path) -> None:
    params = {"arch": "llama", "size": "tiny", "prompt": 32, "new_tokens": 8, "batch": 1,
              "kv_cache": "on", "attn": "sdpa", "dtype": "float32", "engine": "eager",
              "model_path": ""}
    case = Case("generate", generate, params)
    spec = AdapterSpec("cpu", {"threads": 1})
    timing = TimingOptions(min_time_s=0.05, min_samples=3, max_time_s=1.0, max_warmup_s=0.2)
    writer = RunWriter(tmp_path, {})
    (row,) = Runner(RunConfig(timing=timing, collect=False, profile=True),
                    Plan([case], [spec]), writer).run({spec.label: CpuAdapter(threads=1)})
    writer.close()
    assert row["status"] == "ok", row["message"]
    assert "profiler" not in row["missing"], row["missing"]
    ops = read_ops(writer.path)
    share = {phase: sum(op["share"] for op in ops if op["phase"] == phase)
             for phase in (PREFILL, DECODE, "")}
    assert share[PREFILL] > 0.05 and share[DECODE] > 0.05
    assert math.isclose(sum(share.values()), 1.0, rel_tol=1e-6)
    # Each of decode's seven steps runs every layer, as prefill's one pass does.
    mm = {phase: sum(op["calls"] for op in ops if op["phase"] == phase
                     and op["op"] in ("aten::mm", "aten::addmm", "aten::linear"))
          for phase in (PREFILL, DECODE)}
    assert mm[PREFILL] > 0 and mm[DECODE] == pytest.approx(7 * mm[PREFILL])
