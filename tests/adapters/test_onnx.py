"""The onnxruntime and fpga adapters: availability, export cache, provider checks, workloads.

The ``fpga`` tests run without an FPGA: ONNX Runtime's real behaviour (a missing provider falls
back to the CPU with only a warning) and fake sessions stand in for the hardware.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

import onnxruntime
import torch

from harness import Skip, Task
from harness.adapters import AdapterError
from harness.adapters import onnx as onnx_adapter
from harness.adapters.onnx import (
    CPU_PROVIDER,
    VITIS_AI_PROVIDER,
    FpgaAdapter,
    OnnxRuntimeAdapter,
    ProviderNotInUse,
    placement,
)
from harness.adapters.onnx_export import case_key
from harness.collectors.energy import RaplCollector
from harness.collectors.xrt_power import XrtPowerCollector
from harness.config import RunConfig, TimingOptions
from harness.execution.loop import Runner
from harness.plan import AdapterSpec, Plan
from harness.results import RunWriter
from harness.roofline import NoPeaks
from harness.workload import Case

REAL_SESSION = onnxruntime.InferenceSession
FAST = TimingOptions(min_time_s=0.01, min_samples=3, max_time_s=0.5, max_warmup_s=0.05)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the module: each model is exported once across these tests."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture
def ort_adapter(cache: Path) -> Any:
    adapter = OnnxRuntimeAdapter(threads=1, cache_dir=str(cache))
    yield adapter
    adapter.close()


@pytest.fixture
def with_vitis_ai(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime claims to have the Vitis AI provider (it does not: sessions fall back)."""
    real = onnxruntime.get_available_providers()
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: [VITIS_AI_PROVIDER, *real])


def _scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    return torch.tanh(x) * factor


def scale_task(factor: float = 2.0, n: int = 8) -> Task:
    x = torch.linspace(-1, 1, n)

    def check(out: Any) -> None:
        torch.testing.assert_close(out, torch.tanh(x) * factor)

    return Task(fn=_scale, inputs=(x, factor), check=check, dtype="float32")


def run_once(adapter: Any, task: Task) -> Any:
    step = adapter.prepare(task)
    with adapter.running():
        output = step()
    adapter.synchronize()
    return adapter.to_host(output)


# --- availability --------------------------------------------------------------------------


def test_onnxruntime_is_available_here() -> None:
    assert OnnxRuntimeAdapter.available() == (True, "")


def test_unavailable_names_what_is_missing_and_how_to_get_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = onnx_adapter.importlib.util.find_spec
    monkeypatch.setattr(onnx_adapter.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxscript" else real(name, *a))
    ok, reason = OnnxRuntimeAdapter.available()
    assert not ok
    assert reason.startswith("onnxscript not installed")
    assert "pip install 'inference-harness[onnx]'" in reason and "\n" not in reason


def test_fpga_is_unavailable_here_with_a_precise_reason() -> None:
    ok, reason = FpgaAdapter.available()
    assert not ok and "\n" not in reason
    assert reason.startswith("ONNX Runtime here has no VitisAIExecutionProvider (providers: ")
    assert "CPUExecutionProvider" in reason
    assert "Vitis AI ONNX Runtime build" in reason and "XRT" in reason


def test_fpga_without_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    real = onnx_adapter.importlib.util.find_spec
    monkeypatch.setattr(onnx_adapter.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    ok, reason = FpgaAdapter.available()
    assert not ok and reason.startswith("onnxruntime is not installed; install AMD's Vitis AI")


def test_fpga_is_available_where_the_provider_is(with_vitis_ai: None) -> None:
    assert FpgaAdapter.available() == (True, "")


def test_fpga_refuses_to_be_built_without_its_provider(cache: Path) -> None:
    with pytest.raises(AdapterError, match="ONNX Runtime here has no VitisAIExecutionProvider"):
        FpgaAdapter(cache_dir=str(cache))


def test_fpga_refuses_the_cpu_provider() -> None:
    with pytest.raises(AdapterError, match="use the onnxruntime adapter"):
        FpgaAdapter(provider=CPU_PROVIDER)


def test_onnxruntime_refuses_a_provider_this_build_lacks() -> None:
    with pytest.raises(AdapterError, match="no CUDAExecutionProvider"):
        OnnxRuntimeAdapter(provider="CUDAExecutionProvider")


def test_options_parse_typed_and_threads_are_recorded(cache: Path) -> None:
    assert OnnxRuntimeAdapter.parse_options("threads=2,provider=CPUExecutionProvider") == {
        "threads": 2, "provider": CPU_PROVIDER}
    assert FpgaAdapter.parse_options("config_file=/opt/vaip_config.json,bdf=0000:b3:00.1") == {
        "config_file": "/opt/vaip_config.json", "bdf": "0000:b3:00.1"}
    default = OnnxRuntimeAdapter(cache_dir=str(cache))
    assert isinstance(default.config["threads"], int) and default.config["threads"] >= 1
    info = OnnxRuntimeAdapter(threads=1, cache_dir=str(cache)).info()
    assert info["threads"] == 1 and info["device"] == "cpu"
    assert info["onnxruntime"] == onnxruntime.__version__
    assert CPU_PROVIDER in info["available_providers"]
    with pytest.raises(AdapterError, match="positive integer"):
        OnnxRuntimeAdapter(threads=0)
    assert OnnxRuntimeAdapter.parse_options("spin=false") == {"spin": False}
    with pytest.raises(AdapterError, match="spin must be true or false"):
        OnnxRuntimeAdapter(spin="sometimes")


def test_spinning_can_be_turned_off(cache: Path) -> None:
    spinning = "session.intra_op.allow_spinning"
    adapter = OnnxRuntimeAdapter(threads=1, spin=False, cache_dir=str(cache))
    run_once(adapter, scale_task())
    assert adapter._session.get_session_options().get_session_config_entry(spinning) == "0"
    assert adapter.info()["spin"] is False


# --- export, cache and execution -----------------------------------------------------------


def test_runs_a_function_with_a_constant_input(ort_adapter: Any) -> None:
    task = scale_task()
    out = run_once(ort_adapter, task)
    assert isinstance(out, torch.Tensor)
    assert task.check is not None
    task.check(out)
    assert ort_adapter.compile_s is not None and ort_adapter.compile_s > 0
    assert ort_adapter.memory_stats() == {}
    assert ort_adapter.info()["session_providers"] == [CPU_PROVIDER]
    assert (ort_adapter.last_model.parent / "model.onnx").is_file()


def test_second_prepare_reuses_the_cached_export(ort_adapter: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    real = torch.onnx.export

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", counting)
    task = scale_task(factor=3.5, n=5)  # a case no other test exports
    run_once(ort_adapter, task)
    assert len(calls) == 1 and ort_adapter.last_export_s > 0
    first = ort_adapter.last_model
    out = run_once(ort_adapter, scale_task(factor=3.5, n=5))
    assert len(calls) == 1, "the second prepare of the same case exported again"
    assert ort_adapter.last_export_s == 0.0 and ort_adapter.last_model == first
    assert task.check is not None
    task.check(out)
    # A different constant is a different graph, hence a new export.
    run_once(ort_adapter, scale_task(factor=4.5, n=5))
    assert len(calls) == 2


def test_case_key_follows_what_shapes_the_graph() -> None:
    from suites.transformer import attention_fn

    q = (torch.ones(1, 2, 4, 8),) * 3
    assert case_key(attention_fn("sdpa", False), q, {}) == case_key(
        attention_fn("sdpa", False), q, {})  # stable across rebuilt closures
    assert case_key(attention_fn("sdpa", False), q, {}) != case_key(
        attention_fn("sdpa", True), q, {})  # a closure cell (causal)
    assert case_key(attention_fn("math", False), q, {}) != case_key(
        attention_fn("math", True), q, {})  # a partial's keyword
    smaller = (torch.ones(1, 2, 2, 8),) * 3
    assert case_key(attention_fn("sdpa", False), q, {}) != case_key(
        attention_fn("sdpa", False), smaller, {})  # input shapes
    # Input values are fed at run time: they do not change the graph.
    assert case_key(_scale, (torch.zeros(3), 2.0), {}) == case_key(_scale, (torch.ones(3), 2.0),
                                                                    {})
    torch.manual_seed(0)
    a = torch.nn.Linear(4, 4)
    torch.manual_seed(1)
    b = torch.nn.Linear(4, 4)
    assert case_key(a, (torch.ones(4),), {}) != case_key(b, (torch.ones(4),), {})  # weights
    assert case_key(a, (torch.ones(4),), {"dtype": "float32"}) != case_key(
        a, (torch.ones(4),), {"dtype": "float16"})  # meta


def test_to_host_returns_a_tensor_or_a_tuple(ort_adapter: Any) -> None:
    import numpy as np

    one = ort_adapter.to_host([np.arange(3)])
    assert isinstance(one, torch.Tensor) and one.tolist() == [0, 1, 2]
    two = ort_adapter.to_host([np.zeros(2), np.ones(1)])
    assert isinstance(two, tuple) and [t.tolist() for t in two] == [[0.0, 0.0], [1.0]]


def test_several_outputs_come_back_as_a_tuple(ort_adapter: Any) -> None:
    def both(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return a + b, a - b

    out = run_once(ort_adapter, Task(fn=both, inputs=(torch.ones(3), torch.arange(3.0))))
    assert isinstance(out, tuple) and [t.tolist() for t in out] == [[1, 2, 3], [1, 0, -1]]


# --- what does not run, and why ------------------------------------------------------------


@pytest.mark.parametrize(("facts", "reason"), [
    ({"host_only": True}, "runs Python objects on the host"),
    ({"engine": "compile"}, "engine 'compile' is a torch compiler"),
    ({"torch_kernel": "SDPA FLASH_ATTENTION"},
     "the task pins torch's own SDPA FLASH_ATTENTION kernel; an exported ONNX graph has no torch "
     "kernels to pin"),
])
def test_unsupported_tasks_say_why(ort_adapter: Any, facts: dict[str, Any], reason: str) -> None:
    ok, why = ort_adapter.supports(Task(fn=abs, **{"host_only": False, **facts}))
    assert not ok and reason in why


def test_a_plain_python_function_is_skipped_not_exported(ort_adapter: Any) -> None:
    # A user's own sort: nothing torch in it, so there is no graph; never a failed export.
    ok, why = ort_adapter.supports(Task(fn=sorted, inputs=([3.0, 1.0, 2.0],)))
    assert not ok and why.startswith("plain Python function: ONNX Runtime never runs it")


def test_a_model_output_exports_its_primary_tensor(ort_adapter: Any) -> None:
    outputs = pytest.importorskip("transformers.modeling_outputs")

    class Encoder(torch.nn.Module):
        """Returns a ModelOutput, as an unwrapped Hugging Face model does."""

        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> Any:
            hidden = self.layer(x)
            return outputs.BaseModelOutputWithPast(last_hidden_state=hidden,
                                                   hidden_states=(x, hidden))

    torch.manual_seed(0)
    model, x = Encoder().eval(), torch.randn(2, 4)
    field = "BaseModelOutputWithPast.last_hidden_state"
    out = run_once(ort_adapter, Task(fn=model, inputs=(x,)))
    torch.testing.assert_close(out, model(x).last_hidden_state, rtol=1e-5, atol=1e-6)
    assert ort_adapter.case_meta() == {"output_field": field}
    # From the cache, without exporting again, the row still says which field it was.
    run_once(ort_adapter, Task(fn=model, inputs=(x,)))
    assert ort_adapter.last_export_s == 0.0 and ort_adapter.case_meta()["output_field"] == field


def test_python_objects_as_inputs_are_not_supported(ort_adapter: Any) -> None:
    ok, why = ort_adapter.supports(Task(fn=len, inputs=({1: 2},), host_only=False))
    assert not ok and why.startswith("input 0 is a dict")


def test_an_op_onnx_lacks_is_a_skip(ort_adapter: Any) -> None:
    keys = torch.tensor([1, 3, 5, 7])
    task = Task(fn=torch.searchsorted, inputs=(keys, torch.tensor([2, 5])))
    with pytest.raises(Skip, match=r"torch.onnx.export: aten::searchsorted \(Tensor\) has no "
                                   "ONNX translation"):
        ort_adapter.prepare(task)


def test_a_dtype_without_kernels_is_a_skip(ort_adapter: Any) -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 4).to(torch.bfloat16)
    task = Task(fn=layer, inputs=(torch.ones(2, 4, dtype=torch.bfloat16),))
    with pytest.raises(Skip, match="CPUExecutionProvider has no kernel for this graph: Could "
                                   "not find an implementation for"):
        ort_adapter.prepare(task)


# --- the fpga adapter's refusal to report CPU figures -------------------------------------


def test_fpga_refuses_a_silent_cpu_fallback(with_vitis_ai: None, cache: Path) -> None:
    # The real ONNX Runtime: asked for a provider it lacks, it warns and runs on the CPU.
    adapter = FpgaAdapter(cache_dir=str(cache), config_file="/nonexistent/vaip_config.json")
    assert adapter._providers() == [
        (VITIS_AI_PROVIDER, {"config_file": "/nonexistent/vaip_config.json"}), CPU_PROVIDER]
    with pytest.raises(ProviderNotInUse, match=(
            r"^VitisAIExecutionProvider not in use \(session providers: CPUExecutionProvider\); "
            "refusing to report CPU figures as FPGA figures$")):
        adapter.prepare(scale_task())


class FakeSession:
    """A real CPU session that claims the Vitis AI provider and returns a chosen profile."""

    profile: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, path: str, options: Any, providers: list[Any]) -> None:
        options.enable_profiling = False
        self.real = REAL_SESSION(path, options, providers=[CPU_PROVIDER])
        self.folder = Path(path).parent

    def get_providers(self) -> list[str]:
        return [VITIS_AI_PROVIDER, CPU_PROVIDER]

    def get_inputs(self) -> Any:
        return self.real.get_inputs()

    def run(self, names: Any, feeds: Any) -> Any:
        return self.real.run(names, feeds)

    def end_profiling(self) -> str:
        path = self.folder / "fake-profile.json"
        path.write_text(json.dumps(self.profile))
        return str(path)


def _node(provider: str, dur_us: int) -> dict[str, Any]:
    return {"cat": "Node", "name": "n", "dur": dur_us, "args": {"provider": provider}}


def test_fpga_refuses_when_the_provider_takes_no_node(
        with_vitis_ai: None, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "InferenceSession", FakeSession)
    monkeypatch.setattr(FakeSession, "profile", [_node(CPU_PROVIDER, 5), _node(CPU_PROVIDER, 7)])
    adapter = FpgaAdapter(cache_dir=str(cache))
    with pytest.raises(ProviderNotInUse, match=(
            "VitisAIExecutionProvider ran no node of this graph \\(2 on CPUExecutionProvider\\); "
            "refusing to report CPU figures as FPGA figures")):
        adapter.prepare(scale_task())


def test_fpga_runs_and_records_a_partial_placement(
        with_vitis_ai: None, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnxruntime, "InferenceSession", FakeSession)
    monkeypatch.setattr(FakeSession, "profile", [
        {"cat": "Session", "name": "model_run", "dur": 99, "args": {}},
        _node(VITIS_AI_PROVIDER, 40), _node(CPU_PROVIDER, 5), _node(CPU_PROVIDER, 7)])
    adapter = FpgaAdapter(cache_dir=str(cache), bdf="0000:b3:00.1")
    task = scale_task()
    out = run_once(adapter, task)
    assert task.check is not None
    task.check(out)
    assert adapter.last_placement == {
        VITIS_AI_PROVIDER: {"nodes": 1, "kernel_s": 40e-6},
        CPU_PROVIDER: {"nodes": 2, "kernel_s": 12e-6},
    }
    assert adapter.device == "fpga:vitisai"
    (collector,) = adapter.collectors()
    assert isinstance(collector, XrtPowerCollector) and collector.device == "0000:b3:00.1"
    with pytest.raises(NoPeaks, match="no datasheet peak"):
        adapter.peaks("float32")


def test_placement_counts_nodes_and_kernel_time() -> None:
    assert placement([_node("A", 1_000_000), _node("A", 500_000), _node("B", 1),
                      {"cat": "Session", "dur": 7}]) == {
        "A": {"nodes": 2, "kernel_s": 1.5}, "B": {"nodes": 1, "kernel_s": 1e-6}}


def test_onnxruntime_measures_energy_with_rapl(ort_adapter: Any) -> None:
    (collector,) = ort_adapter.collectors()
    assert isinstance(collector, RaplCollector)


def test_bfloat16_peaks_are_missing_with_the_reason(ort_adapter: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.adapters import calibration

    monkeypatch.setitem(calibration.GEMM_N, "bfloat16", 16)  # a small matmul: the kernel is missing
    with pytest.raises(NoPeaks, match="calibration matmul cannot run here: ONNX Runtime's "
                                      "CPUExecutionProvider has no kernel"):
        ort_adapter.peaks("bfloat16")


# --- the built-in workloads' quick cases ---------------------------------------------------


def _case(workload: Any, **params: Any) -> Case:
    grid = workload.grid("quick")[0]
    return Case("test", workload, {**grid, **params})


@pytest.mark.parametrize("impl", ["sdpa", "math"])
def test_attention_passes_its_check(ort_adapter: Any, impl: str) -> None:
    from suites.transformer import attention

    task = _case(attention, impl=impl, batch=1, seq=16).build()
    assert ort_adapter.supports(task) == (True, "")
    assert task.check is not None
    task.check(run_once(ort_adapter, task))


def test_ffn_passes_its_check_through_the_runner(ort_adapter: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from suites.transformer import ffn

    def no_peaks(dtype: str) -> Any:
        raise NoPeaks("not measured in this test")

    monkeypatch.setattr(ort_adapter, "peaks", no_peaks)
    case = _case(ffn, tokens=16, hidden=64, intermediate=128)
    writer = RunWriter(tmp_path, {})
    runner = Runner(RunConfig(timing=FAST, collect=False, out=tmp_path),
                    Plan(cases=[case], adapters=[AdapterSpec("onnxruntime")]), writer)
    (row,) = runner.run({"onnxruntime": ort_adapter})
    writer.close()
    assert row["status"] == "ok", row["message"]
    assert row["correct"] is True and row["device"] == "cpu"
    assert row["compile_s"] > 0 and not math.isnan(row["latency_median_s"])


@pytest.mark.slow
def test_bert_tiny_passes_its_check(ort_adapter: Any) -> None:
    pytest.importorskip("transformers")
    from suites.bert import bert

    task = _case(bert, seq=32, padding=0.5).build()
    assert task.check is not None
    task.check(run_once(ort_adapter, task))


@pytest.mark.slow
@pytest.mark.parametrize("op", ["point", "range"])
def test_lookups_export_or_skip(ort_adapter: Any, op: str) -> None:
    from suites.lookup import btree_lookup, hash_lookup

    for task in (_case(hash_lookup, impl="torch", batch=256).build(),
                 _case(btree_lookup, impl="eytzinger", op=op, batch=256).build()):
        assert task.check is not None
        task.check(run_once(ort_adapter, task))
    with pytest.raises(Skip, match="aten::searchsorted"):
        ort_adapter.prepare(_case(btree_lookup, impl="searchsorted", op=op, batch=256).build())


def test_the_export_is_quiet(ort_adapter: Any, capfd: pytest.CaptureFixture[str]) -> None:
    run_once(ort_adapter, scale_task(factor=-1.25, n=3))
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_partial_functions_export(ort_adapter: Any) -> None:
    task = Task(fn=functools.partial(_scale, factor=0.5), inputs=(torch.ones(2),))
    assert run_once(ort_adapter, task).tolist() == pytest.approx([math.tanh(1) / 2] * 2)


def test_cpu_provider_roof_is_the_best_of_ort_and_torch_on_this_cpu(
        ort_adapter: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.adapters import calibration, cpu
    from harness.roofline import Peaks

    ort = Peaks(flops_per_s=1.9e11, bytes_per_s=2.6e10, source="ort")
    torch_cpu = Peaks(flops_per_s=3.2e11, bytes_per_s=2.2e10, source="torch")
    monkeypatch.setattr(calibration, "measure_peaks", lambda adapter, dtype: ort)
    monkeypatch.setattr(cpu, "host_peaks", lambda dtype: torch_cpu)
    peaks = ort_adapter.peaks("float32")
    assert (peaks.flops_per_s, peaks.bytes_per_s) == (3.2e11, 2.6e10)
    assert "FLOP/s from [torch], bytes/s from [ort]" in peaks.source


def test_cpu_provider_ceiling_is_the_host_cpus_at_its_thread_count(
        ort_adapter: Any, host_ceiling_calls: list[tuple[str, int | None]]) -> None:
    assert ort_adapter.ceiling("float32").flops_per_s == 1e12
    assert host_ceiling_calls == [("float32", ort_adapter.config["threads"])]
