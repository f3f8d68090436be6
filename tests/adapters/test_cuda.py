"""The cuda adapter: why it is unavailable, what it refuses, datasheet peaks, moving data.

Tests marked ``device`` need an NVIDIA GPU and a CUDA build of torch; elsewhere they are
skipped with the reason. ``benchmarks/cuda_quick.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import collections
import math
from typing import Any, NamedTuple

import pytest
import torch

from harness import Task
from harness.adapters import AdapterError, cuda
from harness.adapters.cuda import CudaAdapter, TorchBuild, datasheet_for, datasheet_peaks

HAS_GPU = torch.cuda.is_available()
needs_gpu = pytest.mark.skipif(
    not HAS_GPU, reason=f"no usable CUDA GPU: {CudaAdapter.available()[1] or 'none visible'}")


# --- availability ---------------------------------------------------------------------------


@pytest.mark.skipif(torch.version.cuda is not None, reason="this torch is a CUDA build")
def test_cpu_build_is_unavailable_with_the_fix() -> None:
    ok, reason = CudaAdapter.available()
    assert not ok
    assert reason == (
        f"torch {torch.__version__} is a CPU-only build (torch.version.cuda is None); "
        f"install a CUDA build: pip install torch=={torch.__version__.split('+')[0]} "
        "--index-url https://download.pytorch.org/whl/cu128")


def test_build_is_read_without_importing_torch() -> None:
    build = cuda.torch_build()
    assert build == TorchBuild(torch.__version__, torch.version.cuda,
                               getattr(torch.version, "hip", None))


def test_missing_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda, "torch_build", lambda: None)
    ok, reason = CudaAdapter.available()
    assert not ok and reason.startswith("torch is not installed; install a CUDA build: pip")


def test_rocm_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda, "torch_build", lambda: TorchBuild("2.13.0+rocm6.4", None, "6.4"))
    ok, reason = CudaAdapter.available()
    assert not ok
    assert reason.startswith("torch 2.13.0+rocm6.4 is a ROCm build (torch.version.hip is 6.4)")
    assert "pip install torch==2.13.0 --index-url" in reason


def test_cuda_build_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cuda, "torch_build", lambda: TorchBuild("2.13.0", "12.8", None))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    ok, reason = CudaAdapter.available()
    assert not ok
    assert reason.startswith("no NVIDIA GPU visible (torch.cuda.device_count() == 0); "
                             "CUDA_VISIBLE_DEVICES=''")


def test_cuda_build_with_an_old_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    def available() -> bool:
        warnings.warn("CUDA initialization: The NVIDIA driver on your system is too old "
                      "(found version 11040).\nPlease update your GPU driver.", stacklevel=1)
        return False

    monkeypatch.setattr(cuda, "torch_build", lambda: TorchBuild("2.13.0", "12.8", None))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", available)
    ok, reason = CudaAdapter.available()
    assert not ok
    assert reason == ("CUDA is unusable here: CUDA initialization: The NVIDIA driver on your "
                      "system is too old (found version 11040).")


# --- options and supports -------------------------------------------------------------------


def test_options_parse_typed() -> None:
    assert CudaAdapter.parse_options("device=1,graphs=true") == {"device": 1, "graphs": True}


@pytest.mark.parametrize(("options", "message"),
                         [({"device": -1}, "non-negative integer"),
                          ({"graphs": "yes"}, "true or false"), ({"cores": 2}, "no option")])
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        CudaAdapter(**options)


def test_device_label() -> None:
    assert CudaAdapter(device=0).device == "cuda:0"


def test_refuses_host_only_tasks() -> None:
    ok, reason = CudaAdapter().supports(Task(fn=abs, host_only=True))
    assert not ok and reason == "runs Python objects on the host; not a GPU workload"


def test_refuses_unknown_engines() -> None:
    ok, reason = CudaAdapter().supports(Task(fn=abs, engine="tensorrt"))
    assert not ok and "no engine 'tensorrt'" in reason
    assert CudaAdapter().supports(Task(fn=abs, engine="compile")) == (True, "")


# --- datasheet peaks ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "sheet"), [
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
    ("NVIDIA H200", "NVIDIA H200 SXM"),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM"),
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB SXM"),
    ("NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe"),
    ("NVIDIA L4", "NVIDIA L4"),
    ("NVIDIA A10", "NVIDIA A10"),
    ("Tesla T4", "NVIDIA T4"),
])
def test_datasheet_by_device_name(name: str, sheet: str) -> None:
    found = datasheet_for(name)
    assert found is not None and found.sheet == sheet


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA H200 NVL", "NVIDIA GeForce RTX 4090",
                                  "NVIDIA H100 80GB HBM3 MIG 1g.10gb", "NVIDIA L40S"])
def test_unknown_or_different_boards_have_no_datasheet(name: str) -> None:
    assert datasheet_for(name) is None
    assert datasheet_peaks(name, "bfloat16") is None


def test_datasheet_peaks_are_dense_and_cited() -> None:
    peaks = datasheet_peaks("NVIDIA H200", "bfloat16")
    assert peaks is not None
    assert peaks.flops_per_s == 989.5e12  # half the 1,979 TFLOPS "with sparsity"
    assert peaks.bytes_per_s == 4.8e12
    assert peaks.source == "datasheet: NVIDIA H200 SXM, dense bfloat16; memory 4.8 TB/s"
    a100 = datasheet_peaks("NVIDIA A100-SXM4-80GB", "float16")
    assert a100 is not None and (a100.flops_per_s, a100.bytes_per_s) == (312e12, 2.039e12)


def test_float32_is_the_non_tensor_rate_unless_tf32() -> None:
    plain = datasheet_peaks("NVIDIA H100 80GB HBM3", "float32")
    tf32 = datasheet_peaks("NVIDIA H100 80GB HBM3", "float32", tf32=True)
    assert plain is not None and plain.flops_per_s == 67e12
    assert "FP32 (non-tensor)" in plain.source
    assert tf32 is not None and tf32.flops_per_s == 494.5e12 and "dense tf32" in tf32.source


def test_datasheet_lacks_dtypes_a_device_lacks() -> None:
    assert datasheet_peaks("Tesla T4", "bfloat16") is None  # Turing has no bfloat16 units
    assert datasheet_peaks("NVIDIA L4", "float64") is None


def test_every_datasheet_entry_is_consistent() -> None:
    for sheet in cuda.DATASHEETS:
        assert sheet.bytes_per_s > 0
        for dtype, flops in sheet.flops_per_s.items():
            assert flops > 0, (sheet.sheet, dtype)
        # Tensor-core rates exceed the plain FP32 rate on every listed part.
        assert all(v >= sheet.flops_per_s["float32"] for v in sheet.flops_per_s.values())


# --- moving data, on the CPU ----------------------------------------------------------------


class Pair(NamedTuple):
    first: torch.Tensor
    second: int


def test_to_device_moves_tensors_recursively_and_keeps_shapes() -> None:
    t = torch.ones(2)
    nested = {"a": (t, [t, 3, "x"]), "b": Pair(t, 7),
              "c": collections.OrderedDict(d=t), "e": None}
    moved = cuda.to_device(nested, "cpu")
    assert moved is not nested and moved["a"] is not nested["a"]
    assert isinstance(moved["a"], tuple) and isinstance(moved["a"][1], list)
    assert moved["a"][1][1:] == [3, "x"]
    assert isinstance(moved["b"], Pair) and moved["b"].second == 7
    assert isinstance(moved["c"], collections.OrderedDict)
    assert moved["e"] is None
    assert torch.equal(moved["a"][0], t) and moved["a"][0].device.type == "cpu"


def test_to_device_keeps_dtype() -> None:
    t = torch.ones(3, dtype=torch.bfloat16)
    (out,) = cuda.to_device((t,), "cpu")
    assert out.dtype == torch.bfloat16


def test_place_copies_modules_and_leaves_the_task_alone() -> None:
    module = torch.nn.Linear(2, 2).train()
    x = torch.ones(1, 2)
    fn, inputs = cuda.place(module, (x,), "cpu")
    assert fn is not module and isinstance(fn, torch.nn.Linear)
    assert not fn.training and module.training
    assert fn.weight is not module.weight and torch.equal(fn.weight, module.weight)
    with torch.no_grad():
        fn.weight.zero_()
    assert module.weight.abs().sum() > 0  # the task's module is untouched
    assert torch.equal(inputs[0], x)


def test_place_keeps_plain_callables() -> None:
    fn, inputs = cuda.place(torch.add, (torch.ones(1), 2.0), "cpu")
    assert fn is torch.add and inputs[1] == 2.0


# --- on a GPU -------------------------------------------------------------------------------


def _ffn_task(dtype: torch.dtype = torch.float32, engine: str = "eager") -> tuple[Task, Any]:
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(),
                                torch.nn.Linear(256, 64)).to(dtype).eval()
    x = torch.randn(32, 64).to(dtype)
    with torch.inference_mode():
        expected = block(x).float()
    name = str(dtype).removeprefix("torch.")
    return Task(fn=block, inputs=(x,), dtype=name, engine=engine), expected


@pytest.mark.device
@needs_gpu
def test_gpu_is_available_and_described() -> None:
    assert CudaAdapter.available() == (True, "")
    adapter = CudaAdapter()
    info = adapter.info()
    assert info["gpu"] == torch.cuda.get_device_name(0)
    assert info["compute_capability"].count(".") == 1
    assert info["total_memory_bytes"] > 0
    assert info.get("driver"), info
    assert info.get("power_limit_w", 0) > 0, info
    # NVML found the same GPU as CUDA (by UUID).
    assert info.get("nvml_name") == info["gpu"], info
    adapter.close()


@pytest.mark.device
@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("graphs", [False, True])
def test_runs_on_the_gpu_and_agrees(dtype: torch.dtype, graphs: bool) -> None:
    adapter = CudaAdapter(graphs=graphs)
    task, expected = _ffn_task(dtype)
    assert adapter.supports(task) == (True, "")
    adapter.reset_memory_stats()
    step = adapter.prepare(task)
    assert next(task.fn.parameters()).device.type == "cpu"  # type: ignore[attr-defined]
    with adapter.running():
        out = step()
        out = step()
    adapter.synchronize()
    assert out.device.type == "cuda"
    host = adapter.to_host(out)
    assert host.device.type == "cpu"
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(host.float(), expected, rtol=tol, atol=tol)
    stats = adapter.memory_stats()
    assert stats["peak_device_bytes"] > 0
    assert stats["peak_device_reserved_bytes"] >= stats["peak_device_bytes"]
    adapter.close()


@pytest.mark.device
@needs_gpu
def test_graph_step_returns_the_captured_output() -> None:
    adapter = CudaAdapter(graphs=True)
    x = torch.ones(4)
    step = adapter.prepare(Task(fn=lambda t: t * 2, inputs=(x,)))
    with adapter.running():
        first = adapter.to_host(step())
    assert torch.equal(first, torch.full((4,), 2.0))
    adapter.close()


@pytest.mark.device
@needs_gpu
@pytest.mark.slow
def test_compile_engine_on_the_gpu() -> None:
    adapter = CudaAdapter()
    task, expected = _ffn_task(torch.float32, engine="compile")
    step = adapter.prepare(task)
    with adapter.running():
        out = step()
    torch.testing.assert_close(adapter.to_host(out), expected, rtol=1e-4, atol=1e-4)
    adapter.close()


@pytest.mark.device
@needs_gpu
def test_peaks_use_the_datasheet_or_measure() -> None:
    adapter = CudaAdapter()
    peaks = adapter.peaks("bfloat16")
    if datasheet_for(torch.cuda.get_device_name(0)) is not None:
        assert peaks.source.startswith("datasheet: ")
    else:
        assert peaks.source.startswith("measured: ")
    assert peaks.flops_per_s > 0 and peaks.bytes_per_s > 0
    adapter.close()


@pytest.mark.device
@needs_gpu
def test_nvml_energy_over_a_real_window() -> None:
    adapter = CudaAdapter()
    (collector,) = adapter.collectors()
    collector.calibrate()
    a = torch.randn(4096, 4096, device="cuda")
    collector.start()
    calls = 0
    import time

    start = time.perf_counter()
    while time.perf_counter() - start < collector.min_window_s:
        a @ a
        calls += 1
    adapter.synchronize()
    figures = collector.stop(calls, 1)
    collector.close()
    v = figures.values
    assert v["energy_source"].startswith("nvml:"), figures.missing
    assert v["energy_j"] > 0 and v["mean_power_w"] > 0
    assert not math.isnan(v["idle_power_w"]), figures.missing
    assert v["sm_clock_end_mhz"] > 0 and v["temperature_end_c"] > 0
    assert isinstance(v["throttle_reasons"], str) or "throttle_reasons" in figures.missing
    assert v["device_memory_used_bytes"] > 0
    adapter.close()
