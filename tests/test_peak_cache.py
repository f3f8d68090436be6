"""The per-machine peak cache: reuse, expiry, keys, labelling, and a cache that cannot be used."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import peak_cache
from harness.config import RunConfig
from harness.execution.loop import Runner
from harness.plan import AdapterSpec, Plan
from harness.roofline import Peaks

MEASURED = Peaks(flops_per_s=1e11, bytes_per_s=2e10, source="measured: matmul")


def test_a_stored_calibration_is_reused_and_says_so() -> None:
    peak_cache.store("cpu", {}, "float32", MEASURED, now=1000.0)
    found = peak_cache.lookup("cpu", {}, "float32", now=2000.0)
    assert found is not None
    assert (found.flops_per_s, found.bytes_per_s) == (1e11, 2e10)
    assert found.source.startswith("cached: measured: matmul; measured on this machine at "
                                   "1970-01-01T00:16:40+00:00")
    assert "--recalibrate" in found.source


@pytest.mark.parametrize(("label", "options", "dtype"), [
    ("cpu:threads=1", {"threads": "1"}, "float32"),  # other adapter options
    ("cpu", {}, "bfloat16"),  # other dtype
])
def test_another_adapter_or_dtype_misses(label: str, options: dict[str, Any], dtype: str) -> None:
    peak_cache.store("cpu", {}, "float32", MEASURED)
    assert peak_cache.lookup(label, options, dtype) is None


def test_another_software_stack_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    peak_cache.store("cpu", {}, "float32", MEASURED)
    monkeypatch.setattr("harness.environment.package_versions",
                        lambda *a: {"torch": "9.9.9"})
    assert peak_cache.lookup("cpu", {}, "float32") is None


def test_entries_expire() -> None:
    peak_cache.store("cpu", {}, "float32", MEASURED, now=0.0)
    assert peak_cache.lookup("cpu", {}, "float32", now=peak_cache.MAX_AGE_S - 1) is not None
    assert peak_cache.lookup("cpu", {}, "float32", now=peak_cache.MAX_AGE_S + 1) is None


def test_a_datasheet_figure_from_an_older_cache_is_not_a_calibration() -> None:
    # GPUs once stored their datasheet as their peaks; it is now their ceiling, and the
    # attainable roof beside it must be measured.
    sheet = Peaks(flops_per_s=989.5e12, bytes_per_s=4.8e12, source="datasheet: NVIDIA H200 SXM")
    peak_cache.store("cuda", {}, "bfloat16", sheet)
    assert peak_cache.lookup("cuda", {}, "bfloat16") is None


def test_a_cached_figure_is_not_stored_again() -> None:
    peak_cache.store("cpu", {}, "float32", MEASURED, now=0.0)
    cached = peak_cache.lookup("cpu", {}, "float32", now=10.0)
    assert cached is not None
    peak_cache.store("cpu", {}, "float32", cached, now=20.0)  # would extend its life
    assert peak_cache.lookup("cpu", {}, "float32", now=peak_cache.MAX_AGE_S + 5) is None


def test_a_corrupt_cache_is_ignored_and_replaced(_own_peak_cache: Path) -> None:
    (_own_peak_cache / peak_cache.FILE).write_text("{not json", encoding="utf-8")
    assert peak_cache.lookup("cpu", {}, "float32") is None
    peak_cache.store("cpu", {}, "float32", MEASURED)
    assert peak_cache.lookup("cpu", {}, "float32") is not None


def test_an_unwritable_cache_costs_nothing_but_the_reuse(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(blocker / "cache"))  # cannot be a folder
    peak_cache.store("cpu", {}, "float32", MEASURED)  # no exception
    assert peak_cache.lookup("cpu", {}, "float32") is None


class CountingAdapter:
    """Just enough of an adapter for Runner.peaks: counts its calibrations."""

    def __init__(self) -> None:
        self.calibrations = 0

    def peaks(self, dtype: str) -> Peaks:
        self.calibrations += 1
        return MEASURED


@pytest.mark.parametrize(("recalibrate", "calibrations"), [(False, 1), (True, 2)])
def test_runner_calibrates_once_per_machine_unless_asked(recalibrate: bool,
                                                         calibrations: int) -> None:
    adapter = CountingAdapter()
    spec = AdapterSpec("cpu", {})
    first = Runner(RunConfig(collect=False), Plan([], [spec]), writer=None)
    assert first.peaks(spec, adapter, "float32") == MEASURED  # type: ignore[arg-type]
    second = Runner(RunConfig(collect=False, recalibrate=recalibrate), Plan([], [spec]),
                    writer=None)
    peaks = second.peaks(spec, adapter, "float32")  # type: ignore[arg-type]
    assert adapter.calibrations == calibrations
    assert isinstance(peaks, Peaks)
    assert peaks.source.startswith("cached:") is not recalibrate


def test_an_isolated_run_starts_no_peaks_worker_when_cached(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    from harness.execution import local
    from harness.execution.workers import Limits

    launched: list[tuple[str, dict[str, Any]]] = []

    def fake_worker(target: str, payload: dict[str, Any], limits: object) -> dict[str, Any]:
        launched.append((target, payload))
        return {"row": {"status": "ok"}, "peaks": {}}

    monkeypatch.setattr(local, "run_in_worker", fake_worker)
    job = {"adapter": "cpu", "adapter_options": {}, "params": {"dtype": "float32"}}
    peak_cache.store("cpu", {}, "float32", MEASURED)
    local.run_case(job, Limits(), local.Learnt())
    assert [t for t, _ in launched] == [local.CASE_TARGET]  # the case alone
    assert launched[0][1]["peaks"]["float32"]["source"].startswith("cached:")
    launched.clear()
    local.run_case({**job, "recalibrate": True}, Limits(), local.Learnt())
    assert [t for t, _ in launched] == [local.PEAKS_TARGET, local.CASE_TARGET]  # measures


def test_another_gpu_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import nvml

    monkeypatch.setattr(nvml, "identity", lambda module=None: ["NVIDIA H200 GPU-0000"])
    peak_cache.store("cuda", {}, "float32", MEASURED)
    assert peak_cache.lookup("cuda", {}, "float32") is not None
    # Same host, same CUDA_VISIBLE_DEVICES, another board in the slot.
    monkeypatch.setattr(nvml, "identity", lambda module=None: ["NVIDIA H100 GPU-1111"])
    assert peak_cache.lookup("cuda", {}, "float32") is None


@pytest.mark.parametrize(("variable", "value"), [
    ("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1"), ("NVIDIA_TF32_OVERRIDE", "0"),
    ("CUDA_DEVICE_ORDER", "PCI_BUS_ID")])
def test_tf32_or_device_order_from_the_environment_misses(
        monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    peak_cache.store("cuda", {}, "float32", MEASURED)
    monkeypatch.setenv(variable, value)
    assert peak_cache.lookup("cuda", {}, "float32") is None


def test_the_matmul_precision_set_in_torch_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    peak_cache.store("cuda", {}, "float32", MEASURED)
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: "high")
    assert peak_cache.lookup("cuda", {}, "float32") is None


def test_gpu_identity_names_every_device_without_cuda() -> None:
    from harness import nvml
    from tests.fakes import FakeNvml

    fake = FakeNvml(names=("NVIDIA A10", "NVIDIA L4"), uuids=("GPU-a", "GPU-b"))
    assert nvml.identity(fake.module) == ["NVIDIA A10 GPU-a", "NVIDIA L4 GPU-b"]
    fake.fail["nvmlInit"] = RuntimeError("no driver")
    assert nvml.identity(fake.module) == []
