"""The cuda adapter: why it is unavailable, what it refuses, datasheet ceilings, moving data.

Most tests run everywhere, through a fake ``torch.cuda`` and a fake NVML (tests/fakes.py).
Tests marked ``device`` need an NVIDIA GPU and a CUDA build of torch; elsewhere they are
skipped with the reason. ``benchmarks/cuda_quick.sh`` runs them on a GPU machine.
"""

from __future__ import annotations

import collections
import math
from typing import Any, NamedTuple

import pytest
import torch

from harness import Task, nvml
from harness.adapters import AdapterError, cuda, gpu_datasheets, tensors
from harness.adapters.cuda import CudaAdapter
from harness.adapters.gpu_datasheets import datasheet_ceiling, datasheet_for
from harness.adapters.torch_build import TorchBuild
from tests.fakes import FakeCuda, FakeNvml

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
    ok, reason = CudaAdapter().supports(Task(fn=abs, engine="tensorrt", host_only=False))
    assert not ok and "no engine 'tensorrt'" in reason
    assert CudaAdapter().supports(Task(fn=abs, engine="compile", host_only=False)) == (True, "")


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
    unknown = datasheet_ceiling(name, "bfloat16")
    assert unknown.flops_per_s is None and unknown.bytes_per_s is None
    assert unknown.source == f"unknown: no datasheet entry for {name!r}"


@pytest.mark.parametrize(("name", "dtype", "flops", "bandwidth"), [
    # The GPUs the ceiling table must hold, with their memory bandwidth.
    ("NVIDIA H200", "bfloat16", 989.5e12, 4.8e12),  # half the 1,979 TFLOPS "with sparsity"
    ("NVIDIA H100 80GB HBM3", "bfloat16", 989.5e12, 3.35e12),
    ("NVIDIA A100-SXM4-80GB", "float16", 312e12, 2.039e12),
    ("NVIDIA L4", "bfloat16", 121e12, 300e9),
])
def test_datasheet_ceilings_are_dense_with_bandwidth(name: str, dtype: str, flops: float,
                                                     bandwidth: float) -> None:
    ceiling = datasheet_ceiling(name, dtype)
    assert (ceiling.flops_per_s, ceiling.bytes_per_s) == (flops, bandwidth)


def test_datasheet_ceiling_is_cited() -> None:
    assert datasheet_ceiling("NVIDIA H200", "bfloat16").source == (
        "FLOP/s: datasheet: NVIDIA H200 SXM, dense bfloat16; bytes/s: datasheet: NVIDIA H200 "
        "SXM, memory 4.8 TB/s")


def test_float32_is_the_non_tensor_rate_unless_tf32() -> None:
    plain = datasheet_ceiling("NVIDIA H100 80GB HBM3", "float32")
    tf32 = datasheet_ceiling("NVIDIA H100 80GB HBM3", "float32", tf32=True)
    assert plain.flops_per_s == 67e12 and "FP32 (non-tensor)" in plain.flops_note
    assert tf32.flops_per_s == 494.5e12 and "dense tf32" in tf32.flops_note


def test_datasheet_lacks_dtypes_a_device_lacks() -> None:
    t4 = datasheet_ceiling("Tesla T4", "bfloat16")  # Turing has no bfloat16 units
    assert t4.flops_per_s is None
    assert t4.flops_note == "the NVIDIA T4 datasheet gives no bfloat16 rate"
    assert t4.bytes_per_s == 320e9  # the memory ceiling still holds
    assert datasheet_ceiling("NVIDIA L4", "float64").flops_per_s is None


def test_every_datasheet_entry_is_consistent() -> None:
    for sheet in gpu_datasheets.DATASHEETS:
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
    moved = tensors.to_device(nested, "cpu")
    assert moved is not nested and moved["a"] is not nested["a"]
    assert isinstance(moved["a"], tuple) and isinstance(moved["a"][1], list)
    assert moved["a"][1][1:] == [3, "x"]
    assert isinstance(moved["b"], Pair) and moved["b"].second == 7
    assert isinstance(moved["c"], collections.OrderedDict)
    assert moved["e"] is None
    assert torch.equal(moved["a"][0], t) and moved["a"][0].device.type == "cpu"


def test_to_device_keeps_dtype() -> None:
    t = torch.ones(3, dtype=torch.bfloat16)
    (out,) = tensors.to_device((t,), "cpu")
    assert out.dtype == torch.bfloat16


def test_place_copies_modules_and_leaves_the_task_alone() -> None:
    module = torch.nn.Linear(2, 2).train()
    x = torch.ones(1, 2)
    fn, inputs = tensors.place(module, (x,), "cpu")
    assert fn is not module and isinstance(fn, torch.nn.Linear)
    assert not fn.training and module.training
    assert fn.weight is not module.weight and torch.equal(fn.weight, module.weight)
    with torch.no_grad():
        fn.weight.zero_()
    assert module.weight.abs().sum() > 0  # the task's module is untouched
    assert torch.equal(inputs[0], x)


def test_place_keeps_plain_callables() -> None:
    fn, inputs = tensors.place(torch.add, (torch.ones(1), 2.0), "cpu")
    assert fn is torch.add and inputs[1] == 2.0


# --- through a fake torch.cuda and a fake NVML --------------------------------------------


CUDA_BUILD = TorchBuild("2.13.0+cu128", "12.8", None)


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    """The fake NVML in place of the real one, for everything that opens a session."""
    fake = FakeNvml(uuids=("GPU-0000",))
    monkeypatch.setattr(nvml, "load", lambda module=None: fake.module if module is None
                        else module)
    return fake


def _on_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Prepared work goes to the CPU: the fake torch.cuda has no device memory."""
    monkeypatch.setattr(CudaAdapter, "_torch_device", lambda self: torch.device("cpu"))


def test_the_parent_initialises_no_cuda(monkeypatch: pytest.MonkeyPatch,
                                        fake_nvml: FakeNvml) -> None:
    # Listing, building and closing the adapter is all a run's parent does with it; any CUDA
    # call that initialises (is_available, properties, synchronise) would fail here.
    FakeCuda(forbid_init=True).install(monkeypatch)
    monkeypatch.setattr(cuda, "torch_build", lambda: CUDA_BUILD)
    assert CudaAdapter.available() == (True, "")
    adapter = CudaAdapter(device=0)
    adapter.close()
    with pytest.raises(AdapterError, match="cuda:device=3 does not exist: 1 GPU"):
        CudaAdapter(device=3)


def test_an_old_driver_is_seen_through_nvml(monkeypatch: pytest.MonkeyPatch,
                                            fake_nvml: FakeNvml) -> None:
    FakeCuda(forbid_init=True).install(monkeypatch)
    monkeypatch.setattr(cuda, "torch_build", lambda: CUDA_BUILD)
    fake_nvml.module.nvmlSystemGetCudaDriverVersion = lambda: 11080
    ok, reason = CudaAdapter.available()
    assert not ok
    assert reason == ("the NVIDIA driver supports CUDA up to 11.8, and torch 2.13.0+cu128 needs "
                      "CUDA 12.x: update the driver")


def test_close_synchronises_only_after_work(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCuda().install(monkeypatch)
    _on_the_host(monkeypatch)
    adapter = CudaAdapter()
    adapter.close()
    assert fake.syncs == 0 and not fake.initialised
    adapter.prepare(Task(fn=torch.neg, inputs=(torch.ones(2),)))
    adapter.close()
    assert fake.syncs == 1


def test_a_mig_instance_is_itself_in_nvml(monkeypatch: pytest.MonkeyPatch,
                                          fake_nvml: FakeNvml) -> None:
    # torch names the instance "<GPU> MIG <profile>" and gives its UUID bare; NVML knows it as
    # MIG-<uuid>. The old lookup tried GPU-<uuid>, failed, and fell back to the whole board.
    FakeCuda(name="NVIDIA H200 MIG 1g.18gb", uuid="1111").install(monkeypatch)
    fake_nvml.migs["MIG-1111"] = 0
    adapter = CudaAdapter()
    info = adapter.info()
    assert info["mig"] is True
    assert info["nvml_name"] == "NVIDIA H200 MIG 1g.18gb"
    assert info["power_limit_w"] is None and "MIG instance" in info["power_limit_w_missing"]
    (collector,) = adapter.collectors()
    assert collector.check() == (True, "")
    collector.start()
    figures = collector.stop(1, 1)
    assert "MIG instance" in figures.missing["energy_j"]
    assert figures.values["device_memory_used_bytes"] == fake_nvml.mig_memory_used
    collector.close()


def test_a_mig_instance_missing_from_nvml_has_no_figures(monkeypatch: pytest.MonkeyPatch,
                                                         fake_nvml: FakeNvml) -> None:
    FakeCuda(name="NVIDIA H200 MIG 1g.18gb", uuid="2222").install(monkeypatch)
    info = CudaAdapter().info()
    assert "nvml_name" not in info and "power_limit_w" not in info
    assert "MIG instance 2222 not found" in info["nvml_device_missing"]


def test_the_gpu_is_found_by_uuid_not_by_cuda_index(monkeypatch: pytest.MonkeyPatch,
                                                    fake_nvml: FakeNvml) -> None:
    # CUDA_VISIBLE_DEVICES=1: CUDA's device 0 is NVML's device 1.
    fake_nvml.names[:] = ["NVIDIA A10", "NVIDIA L4"]
    fake_nvml.uuids[:] = ["GPU-aaaa", "GPU-bbbb"]
    fake_nvml.energy_mj[:] = [0, 0]
    FakeCuda(name="NVIDIA L4", uuid="bbbb").install(monkeypatch)
    info = CudaAdapter(device=0).info()
    assert info["nvml_name"] == "NVIDIA L4"


def test_graph_outputs_are_kept_as_copies_and_its_pool_as_reserved(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCuda().install(monkeypatch)
    _on_the_host(monkeypatch)
    adapter = CudaAdapter(graphs=True)
    step = adapter.prepare(Task(fn=lambda t: t * 2, inputs=(torch.ones(3),)))
    out = step()
    assert step() is out  # a replay returns the one static tensor
    kept = adapter.keep_output((out, {"x": out}))
    assert kept[0] is not out and torch.equal(kept[0], out)
    assert kept[1]["x"] is not out
    with torch.inference_mode():
        out.fill_(-1)  # the next replay overwrites the buffer; the copy keeps its answer
    assert torch.equal(kept[0], torch.full((3,), 2.0))
    meta = adapter.case_meta()
    assert meta["graph_pool_reserved_bytes"] == fake.graph_pool_bytes
    assert "peak_device_reserved_bytes" in meta["graph_memory"]
    eager = CudaAdapter()
    assert eager.keep_output(out) is out  # fresh outputs need no copy
    assert eager.case_meta() == {}


def test_single_calls_are_timed_with_events(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCuda(duration=lambda n: 35e-6).install(monkeypatch)
    time_call = CudaAdapter().call_timer()
    assert time_call(fake.device.step) == pytest.approx(35e-6)
    assert fake.device.queued == 0  # the end event was waited for


def test_peaks_are_measured_with_sizes_that_reach_the_roof(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.adapters import calibration
    from harness.roofline import Peaks

    FakeCuda(name="NVIDIA H100 80GB HBM3").install(monkeypatch)
    asked: dict[str, Any] = {}

    def measure(adapter: object, dtype: str, **sizes: Any) -> Peaks:
        asked.update(sizes)
        return Peaks(1.0, 1.0, "measured")

    monkeypatch.setattr(calibration, "measure_peaks", measure)
    # Measured even where a datasheet is known: the datasheet is the ceiling beside it.
    assert CudaAdapter().peaks("bfloat16").source == "measured"
    assert asked["gemm_n"] >= 8192
    assert asked["copy_bytes"] >= 2**30


@pytest.mark.parametrize(("env", "precision", "tf32"), [
    ({}, "highest", False),
    ({}, "high", True),
    ({"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1"}, "highest", True),
    ({"NVIDIA_TF32_OVERRIDE": "0"}, "high", False),
])
def test_tf32_from_torch_and_the_environment(monkeypatch: pytest.MonkeyPatch,
                                             env: dict[str, str], precision: str,
                                             tf32: bool) -> None:
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: precision)
    assert cuda.tf32_matmul(torch, env) is tf32


def test_tf32_set_by_environment_gets_the_tf32_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeCuda(name="NVIDIA H100 80GB HBM3").install(monkeypatch)
    monkeypatch.setenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1")
    assert CudaAdapter().ceiling("float32").flops_per_s == 494.5e12


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
def test_peaks_are_measured_below_the_datasheet_ceiling() -> None:
    adapter = CudaAdapter()
    peaks = adapter.peaks("bfloat16")
    assert peaks.source.startswith("measured: ")
    assert peaks.flops_per_s > 0 and peaks.bytes_per_s > 0
    ceiling = adapter.ceiling("bfloat16")
    if datasheet_for(torch.cuda.get_device_name(0)) is not None:
        # The calibration is a measured rate: a datasheet ceiling below it would be wrong.
        assert ceiling.flops_per_s is not None and ceiling.bytes_per_s is not None
        assert peaks.flops_per_s <= ceiling.flops_per_s
        assert peaks.bytes_per_s <= ceiling.bytes_per_s
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
