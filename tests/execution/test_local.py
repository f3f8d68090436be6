"""An isolated run's parent: what it hands its workers and what it learns from them.

Workers run in this process here (``run_in_worker`` replaced), so that a fake ``torch.cuda``
can tell the parent's calls from the workers': the parent must start no device.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from harness import nvml, plugins
from harness.adapters import cuda as cuda_module
from harness.adapters.cuda import HOST_ONLY_REASON, CudaAdapter
from harness.collectors import Collector, EnergyCollector, Figures
from harness.config import RunConfig
from harness.execution import Mode, execute, local, open_run
from harness.execution.rows import error_text
from harness.execution.workers import resolve
from harness.plan import AdapterSpec, Plan
from harness.results import read_context, read_rows
from harness.workload import Case
from tests.execution import worker_suite
from tests.execution.test_loop import FAST, FakeAdapter
from tests.fakes import FakeCuda, FakeNvml

SOURCE = "tests.execution.worker_suite"


def in_process(cuda: FakeCuda | None = None) -> Callable[..., dict[str, Any]]:
    """``run_in_worker`` run here, payload and result through JSON as between processes; a
    fake CUDA may be started only inside."""

    def run(target: str, payload: dict[str, Any], limits: Any = None) -> dict[str, Any]:
        if cuda is not None:
            cuda.forbid_init = False
        try:
            result = resolve(target)(json.loads(json.dumps(payload)))
        except BaseException as exc:
            return {"error": f"worker failed: {error_text(exc)}"}
        finally:
            if cuda is not None:
                cuda.forbid_init = True
        out: dict[str, Any] = json.loads(json.dumps(result, default=str))
        return out

    return run


def plan_of(adapter: str, *workloads: str) -> Plan:
    cases = [Case("worker_suite", getattr(worker_suite, name), params)
             for name in workloads for params in getattr(worker_suite, name).grid("full")]
    return Plan(cases, [AdapterSpec(adapter)], {"worker_suite": SOURCE})


def test_the_parent_starts_no_cuda_and_records_the_first_workers_info(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvml = FakeNvml(uuids=("GPU-0000",))
    monkeypatch.setattr(nvml, "load", lambda module=None: fake_nvml.module)
    cuda = FakeCuda(forbid_init=True).install(monkeypatch)
    # Prepared work goes to the CPU: the fake torch.cuda has no device memory.
    monkeypatch.setattr(CudaAdapter, "_torch_device", lambda self: torch.device("cpu"))
    # An H200's calibration sizes (an 8192² matmul, a 1 GiB copy) on this CPU take a minute.
    monkeypatch.setattr(cuda_module, "PEAK_GEMM_N", 256)
    monkeypatch.setattr(cuda_module, "PEAK_COPY_BYTES", 2**22)
    monkeypatch.setattr(local, "run_in_worker", in_process(cuda))
    config = RunConfig(timing=FAST, collect=False, out=tmp_path)
    plan = plan_of("cuda", "host", "neg")
    mode = Mode()
    writer = open_run(config, plan, mode)  # built no adapter: any CUDA call would fail here
    assert read_context(writer.path)["adapters"] == {}
    rows = execute(config, plan, writer, mode)
    host, *negs = rows
    assert (host["status"], host["message"]) == ("skipped", HOST_ONLY_REASON)
    assert [r["status"] for r in negs] == ["ok", "ok"], [r["message"] for r in negs]
    info = read_context(writer.path)["adapters"]["cuda"]
    assert info["gpu"] == "NVIDIA H200" and info["nvml_name"] == "NVIDIA H200"
    assert cuda.initialised  # in the workers


def test_a_refused_case_pays_for_no_device_set_up(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # A host-only case on the GPU: the worker builds the case and asks supports() first; it
    # neither starts CUDA (the NVML collector needs the device's UUID) nor idles 5 s.
    fake_nvml = FakeNvml(uuids=("GPU-0000",))
    monkeypatch.setattr(nvml, "load", lambda module=None: fake_nvml.module)
    cuda = FakeCuda(forbid_init=True).install(monkeypatch)
    monkeypatch.setattr(local, "run_in_worker", in_process())  # CUDA refused in workers too
    config = RunConfig(timing=FAST, collect=True, out=tmp_path)
    plan = plan_of("cuda", "host")
    writer = open_run(config, plan, Mode())
    (row,) = execute(config, plan, writer, Mode())
    assert (row["status"], row["message"]) == ("skipped", HOST_ONLY_REASON)
    assert not cuda.initialised and fake_nvml.energy_reads == 0
    assert read_context(writer.path)["adapters"] == {}  # nothing started to describe


class IdleEnergy(EnergyCollector):
    """An energy counter whose idle calibration is counted (a real one idles 5 s)."""

    name: ClassVar[str] = "idle-energy"
    calibrations: ClassVar[list[int]] = []

    def __init__(self) -> None:
        super().__init__(idle_window_s=5.0)

    def calibrate(self) -> None:
        self.calibrations.append(1)
        self._idle_power_w = 40.0

    def start(self) -> None:
        return None

    def stop(self, calls: int, items_per_call: int) -> Figures:
        figures = Figures(values={"energy_source": "idle-energy"})
        self.put_energy(figures, 300.0, 3.0, calls * items_per_call)
        return figures


class IdleMeteredAdapter(FakeAdapter):
    name: ClassVar[str] = "idle-metered"

    def collectors(self) -> list[Collector]:
        return [IdleEnergy()]


def test_idle_power_is_measured_once_per_run_and_adapter(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(plugins.checkout_entry_points()["harness.adapters"], "idle-metered",
                        f"{__name__}:IdleMeteredAdapter")
    monkeypatch.setattr(local, "run_in_worker", in_process())
    IdleEnergy.calibrations.clear()
    config = RunConfig(timing=FAST, collect=True, out=tmp_path)
    plan = plan_of("idle-metered", "neg")
    writer = open_run(config, plan, Mode())
    first, second = execute(config, plan, writer, Mode())
    assert IdleEnergy.calibrations == [1]  # in the first case's worker only
    assert first["idle_power_w"] == second["idle_power_w"] == 40.0
    assert first["energy_net_j"] == second["energy_net_j"] == pytest.approx(300.0 - 40.0 * 3)
    assert first["idle_power_source"].startswith("measured over 5 s in this process")
    assert "handed over, not measured again" in second["idle_power_source"]
    assert "setup" in first["meta"]["phases_s"]  # the counters' set-up has its own phase


def test_a_worker_that_dies_brings_no_info_and_the_next_one_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    inner = in_process()

    def flaky(target: str, payload: dict[str, Any], limits: Any = None) -> dict[str, Any]:
        calls.append(target)
        if target.endswith("case_target") and calls.count(target) == 1:
            return {"error": "the worker crashed with a segmentation fault (SIGSEGV)"}
        return inner(target, payload, limits)

    monkeypatch.setattr(local, "run_in_worker", flaky)
    config = RunConfig(timing=FAST, collect=False, out=tmp_path)
    plan = plan_of("cpu", "neg")
    writer = open_run(config, plan, Mode())
    first, second = execute(config, plan, writer, Mode())
    assert first["status"] == "error" and second["status"] == "ok"
    assert read_context(writer.path)["adapters"]["cpu"]["name"] == "cpu"


def test_an_adapter_whose_info_fails_gets_a_placeholder_saying_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(plugins.checkout_entry_points()["harness.adapters"], "fake",
                        f"{__name__}:Mute")
    monkeypatch.setattr(local, "run_in_worker", in_process())
    config = RunConfig(timing=FAST, collect=False, out=tmp_path)
    plan = plan_of("fake", "neg")
    writer = open_run(config, plan, Mode())
    rows = execute(config, plan, writer, Mode())
    assert [r["status"] for r in rows] == ["ok", "ok"]
    info = read_context(writer.path)["adapters"]["fake"]
    assert info["info_missing"].startswith("info() failed: RuntimeError: no driver to ask")
    assert len(read_rows(writer.path)) == 2


class Mute(FakeAdapter):
    def info(self) -> dict[str, Any]:
        raise RuntimeError("no driver to ask")

