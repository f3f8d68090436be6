"""Each profiler's events mapped to operators and categories, from traces recorded with the
real profilers (``python -m tests.profiling.record``: a small FFN, Linear-GELU-Linear of
16×64→256→64, three calls) and, for CUDA, a trace written by hand after torch.profiler's format
(no GPU where the fixtures were recorded)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from harness.profiling import jax_profile, ort_profile, python_profile, torch_profile
from harness.profiling.model import NativeProfile, OpTime

HERE = Path(__file__).parent / "fixtures"
#: FLOPs of one FFN call: two matmuls of 16×64×256 multiply-adds.
FFN_FLOPS = 2 * (2.0 * 16 * 64 * 256)


def recorded(name: str) -> dict[str, Any]:
    data = (HERE / name).read_bytes()
    trace: dict[str, Any] = json.loads(gzip.decompress(data) if name.endswith(".gz") else data)
    return trace


def by_op(profile: NativeProfile) -> dict[str, OpTime]:
    return {op.op: op for op in profile.ops}


def coverage(profile: NativeProfile) -> float:
    return sum(op.time_s for op in profile.ops) / profile.wall_s


def test_torch_cpu_operators_categories_and_flops() -> None:
    profile = torch_profile.parse(recorded("torch_cpu.json.gz"))
    ops = by_op(profile)
    assert profile.profiler == "torch.profiler" and profile.calls == 3
    assert ops["aten::addmm"].category == "matmul"
    assert ops["aten::addmm"].count == 6  # two linears per call, warm-up calls left out
    assert ops["aten::addmm"].flops == pytest.approx(3 * FFN_FLOPS)
    assert ops["aten::addmm"].flops_source == "torch with_flops"
    assert ops["aten::gelu"].category == "activation"
    assert ops["aten::gelu"].flops != ops["aten::gelu"].flops  # with_flops has none: unknown
    assert ops["aten::transpose"].category == "memory"
    assert ops["(Python and dispatch outside aten operators)"].category == "host"
    assert 0.9 < coverage(profile) <= 1.0
    assert profile.device_busy_s is None and "host processor" in profile.device_missing


def test_jax_xla_cpu_operations_from_the_compiled_program() -> None:
    trace = recorded("jax_xla_cpu.json.gz")
    profile = jax_profile.parse(trace)
    ops = by_op(profile)
    matmuls = [op for op in profile.ops if op.category == "matmul"]
    assert sum(op.count for op in matmuls if "dot" in trace["harness"]["hlo"][op.op]["opcodes"]
               ) == 6
    gelu = [op for op in profile.ops if "gelu" in trace["harness"]["hlo"].get(op.op, {}).get(
        "lineage", "")]
    assert gelu and {op.category for op in gelu} == {"activation"}
    assert not any(name.startswith("end: ") for name in ops)  # end markers are not operators
    assert ops["(dispatch and waiting outside XLA operations)"].category == "host"
    assert all(op.provider == "xla:cpu:0" for op in profile.ops)
    assert 0.9 < coverage(profile) <= 1.0


def test_onnxruntime_nodes_by_op_type_and_provider_with_runtime_overhead_shown() -> None:
    profile = ort_profile.parse(recorded("onnxruntime_cpu.json.gz"))
    ops = by_op(profile)
    assert ops["Gemm"].category == "matmul" and ops["Gemm"].count == 6
    assert ops["Gemm"].provider == "CPUExecutionProvider"
    assert ops["Gemm"].flops == pytest.approx(3 * FFN_FLOPS)
    assert ops["Gemm"].flops_source == "analytic"
    assert ops["Gelu"].category == "activation"
    between = ops["(ONNX Runtime between nodes, inside model_run)"]
    assert between.category == "host" and between.time_s > 0
    assert 0.9 < coverage(profile) <= 1.0


def test_onnxruntime_leaves_out_the_warm_up_runs() -> None:
    trace = recorded("onnxruntime_cpu.json.gz")
    runs = [e for e in trace["traceEvents"] if e.get("name") == "model_run"]
    assert len(runs) == 3 + trace["harness"]["warmup_runs"]
    assert by_op(ort_profile.parse(trace))["Gelu"].count == 3


def test_matmul_flops_from_recorded_shapes() -> None:
    def args(a: list[int], out: list[int]) -> dict[str, Any]:
        return {"input_type_shape": [{"float": a}, {"float": [0]}],
                "output_type_shape": [{"float": out}]}

    assert ort_profile.matmul_flops("MatMul", args([8, 16, 64], [8, 16, 32])) == (
        2 * 8 * 16 * 32 * 64)
    # Gemm with its first input transposed: K is the dimension that is not M.
    assert ort_profile.matmul_flops("Gemm", args([64, 16], [16, 32])) == 2 * 16 * 32 * 64
    missing = ort_profile.matmul_flops("Add", args([2, 2], [2, 2]))
    assert missing != missing


def test_cprofile_functions_by_self_time() -> None:
    rows = json.loads((HERE / "cprofile_stats.json").read_text())
    stats = {(f, line, name): (cc, nc, tt, ct, {}) for f, line, name, cc, nc, tt, ct in rows}
    profile = python_profile.from_stats(stats, calls=3, wall_s=0.004)
    ops = by_op(profile)
    assert "record.python_work" in ops and ops["record.python_work"].category == "host"
    assert ops["<built-in method builtins.sum>"].count == 3
    assert not any("_lsprof" in name for name in ops)  # the profiler's own entries
    assert profile.trace is None and "no trace" in profile.trace_missing


def test_cuda_kernels_by_device_time_and_the_device_busy_fraction() -> None:
    """Hand-written after torch.profiler's Chrome trace with CUDA activity (see the file)."""
    profile = torch_profile.parse(recorded("cuda_torch.json"))
    ops = {op.category: op for op in profile.ops}
    assert profile.profiler == "torch.profiler (CUDA)"
    assert ops["matmul"].count == 2 and ops["matmul"].time_s == pytest.approx(400e-6)
    assert ops["activation"].time_s == pytest.approx(80e-6)
    assert ops["memory"].op.startswith("Memcpy DtoD")
    # The device was busy 260 µs of each 500 µs call; the rest is the host's.
    assert profile.device_busy_s == pytest.approx(520e-6)
    assert ops["host"].time_s == pytest.approx(480e-6)
    assert all(op.provider == "cuda:0" for op in profile.ops)


def test_a_trace_that_lost_calls_is_refused_rather_than_misattributed() -> None:
    trace = recorded("torch_cpu.json.gz")
    trace["traceEvents"] = [e for e in trace["traceEvents"] if e.get("name") != "harness.call"]
    with pytest.raises(ValueError, match=r"0 'harness\.call' annotations for 3 profiled calls"):
        torch_profile.parse(trace)
    trace = recorded("onnxruntime_cpu.json.gz")
    runs = [i for i, e in enumerate(trace["traceEvents"]) if e.get("name") == "model_run"]
    del trace["traceEvents"][runs[-1]:]  # the last run's events, as at ORT's event limit
    with pytest.raises(ValueError, match="model_run events"):
        ort_profile.parse(trace)
