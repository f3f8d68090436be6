"""The NVML wrapper against a fake ``pynvml`` (tests/fakes.py): units, reasons, unsupported calls,
errors, violation counters and MIG instances."""

from __future__ import annotations

from typing import Any

import pytest

from harness import nvml
from tests.fakes import ERRORS, FakeNvml


@pytest.fixture
def fake() -> FakeNvml:
    return FakeNvml()


def test_queries_convert_units_and_decode_names(fake: FakeNvml) -> None:
    with nvml.Nvml.open(fake.module) as session:
        handle = session.handle(0)
        assert session.device_count() == 1
        assert session.name(handle) == "NVIDIA H200"
        assert session.driver_version() == "570.124.06"
        assert session.cuda_driver_version() == "12.8"
        assert session.power_limit_w(handle) == 700.0
        assert session.power_w(handle) == 75.5
        assert session.memory(handle) == nvml.MemoryInfo(3 * 2**30, 141 * 2**30)
        assert session.total_energy_mj(handle) == 1_000_000
        assert session.sm_clock_mhz(handle) == 1980
        assert session.temperature_c(handle) == 41
    assert (fake.inits, fake.shutdowns) == (1, 1)


def test_close_is_idempotent_and_closed_sessions_refuse(fake: FakeNvml) -> None:
    session = nvml.Nvml.open(fake.module)
    session.close()
    session.close()
    assert fake.shutdowns == 1
    with pytest.raises(nvml.NvmlError, match="session is closed"):
        session.device_count()


def test_handle_by_uuid(fake: FakeNvml) -> None:
    with nvml.Nvml.open(fake.module) as session:
        assert session.handle("GPU-0000") == 0
        with pytest.raises(nvml.NvmlError, match="nvmlDeviceGetHandleByUUID failed: Not Found"):
            session.handle("GPU-ffff")


@pytest.mark.parametrize(
    ("error", "reason"),
    [("NVMLError_LibraryNotFound", "NVML library not found (libnvidia-ml.so.1)"),
     ("NVMLError_DriverNotLoaded", "NVIDIA driver not loaded"),
     ("NVMLError_NoPermission", "no permission"),
     ("NVMLError_Unknown", "nvmlInit failed: Unknown Error")],
)
def test_init_failure_is_a_reason(fake: FakeNvml, error: str, reason: str) -> None:
    fake.fail["nvmlInit"] = ERRORS[error]()
    with pytest.raises(nvml.NvmlError) as caught:
        nvml.Nvml.open(fake.module)
    assert caught.value.reason.startswith(reason)
    assert nvml.probe(fake.module) == (False, caught.value.reason)


def test_init_failure_from_ctypes_is_a_reason(fake: FakeNvml) -> None:
    fake.fail["nvmlInit"] = OSError("libnvidia-ml.so.1: cannot open shared object file")
    ok, reason = nvml.probe(fake.module)
    assert not ok and reason.startswith("nvmlInit failed: OSError: libnvidia-ml.so.1")


def test_real_pynvml_without_a_driver_gives_a_reason() -> None:
    # This machine has nvidia-ml-py but no driver; on a GPU machine NVML simply works.
    ok, reason = nvml.probe()
    assert ok or reason


def test_probe_counts_devices(fake: FakeNvml) -> None:
    assert nvml.probe(fake.module) == (True, "")
    fake.names.clear()
    assert nvml.probe(fake.module) == (False, "NVML sees no NVIDIA device")


def test_energy_not_supported_names_the_requirement(fake: FakeNvml) -> None:
    fake.fail["nvmlDeviceGetTotalEnergyConsumption"] = ERRORS["NVMLError_NotSupported"]()
    with nvml.Nvml.open(fake.module) as session, pytest.raises(nvml.NvmlError) as caught:
        session.total_energy_mj(session.handle(0))
    assert caught.value.not_supported
    assert "Volta or newer" in caught.value.reason
    assert "not supported on this device or driver" in caught.value.reason


def test_other_errors_are_not_marked_unsupported(fake: FakeNvml) -> None:
    fake.fail["nvmlDeviceGetTemperature"] = ERRORS["NVMLError_GpuIsLost"]()
    with nvml.Nvml.open(fake.module) as session, pytest.raises(nvml.NvmlError) as caught:
        session.temperature_c(session.handle(0))
    assert not caught.value.not_supported
    assert caught.value.reason == "nvmlDeviceGetTemperature failed: GPU is lost"


def test_binding_bugs_become_reasons(fake: FakeNvml) -> None:
    fake.fail["nvmlDeviceGetClockInfo"] = TypeError("bad argument")
    with nvml.Nvml.open(fake.module) as session, pytest.raises(nvml.NvmlError) as caught:
        session.sm_clock_mhz(session.handle(0))
    assert caught.value.reason == "nvmlDeviceGetClockInfo failed: TypeError: bad argument"


def test_missing_function_is_unsupported(fake: FakeNvml) -> None:
    delattr(fake.module, "nvmlDeviceGetTotalEnergyConsumption")
    with nvml.Nvml.open(fake.module) as session, pytest.raises(nvml.NvmlError) as caught:
        session.total_energy_mj(session.handle(0))
    assert caught.value.not_supported
    assert "not in this nvidia-ml-py release" in caught.value.reason


def test_power_limit_falls_back_to_the_management_limit(fake: FakeNvml) -> None:
    fake.fail["nvmlDeviceGetEnforcedPowerLimit"] = ERRORS["NVMLError_NotSupported"]()
    fake.limit_mw = 250_000
    with nvml.Nvml.open(fake.module) as session:
        assert session.power_limit_w(session.handle(0)) == 250.0


def test_violation_counters_by_policy(fake: FakeNvml) -> None:
    fake.violation_ns[0] = 1_500_000_000  # power
    fake.violation_ns[1] = 20_000  # thermal
    with nvml.Nvml.open(fake.module) as session:
        times = session.violation_ns(session.handle(0))
    assert times["power"] == 1_500_000_000 and times["thermal"] == 20_000
    assert set(times) == {name.lower() for name, _ in nvml.POLICIES}


def test_violation_counters_unsupported(fake: FakeNvml) -> None:
    fake.fail["nvmlDeviceGetViolationStatus"] = ERRORS["NVMLError_NotSupported"]()
    with nvml.Nvml.open(fake.module) as session, pytest.raises(nvml.NvmlError) as caught:
        session.violation_ns(session.handle(0))
    assert caught.value.not_supported


# --- finding CUDA's device in NVML ---------------------------------------------------------


def test_find_device_by_bare_uuid() -> None:
    fake = FakeNvml(names=("NVIDIA A10", "NVIDIA L4"), uuids=("GPU-aaaa", "GPU-bbbb"))
    with nvml.Nvml.open(fake.module) as session:
        device = nvml.find_device(session, "bbbb", 0)  # torch spells UUIDs without a prefix
        assert (device.handle, device.mig, device.name) == (1, False, "NVIDIA L4")


def test_the_cuda_index_never_names_one_of_several_devices() -> None:
    fake = FakeNvml(names=("NVIDIA A10", "NVIDIA L4"), uuids=("GPU-aaaa", "GPU-bbbb"))
    with nvml.Nvml.open(fake.module) as session:
        for uuid in (None, "cccc"):
            with pytest.raises(nvml.NvmlError, match="with 2 devices the CUDA index may name"):
                nvml.find_device(session, uuid, 1)


def test_one_device_is_found_without_a_uuid(fake: FakeNvml) -> None:
    with nvml.Nvml.open(fake.module) as session:
        assert nvml.find_device(session, None, 0).handle == 0


def test_a_mig_instance_is_found_by_its_mig_uuid() -> None:
    fake = FakeNvml(uuids=("GPU-0000",), migs={"MIG-1111": 0})
    with nvml.Nvml.open(fake.module) as session:
        device = nvml.find_device(session, "1111", 0, mig=True)
    assert device.mig and device.gpu == 0
    assert device.name == "NVIDIA H200 MIG 1g.18gb"


def test_a_mig_instance_is_recognised_even_without_the_hint() -> None:
    fake = FakeNvml(uuids=("GPU-0000",), migs={"MIG-1111": 0})
    with nvml.Nvml.open(fake.module) as session:
        device = nvml.find_device(session, "1111", 0)
    assert device.mig and device.gpu == 0


def test_a_mig_instance_never_falls_back_to_the_whole_gpu() -> None:
    fake = FakeNvml(uuids=("GPU-0000",), migs={"MIG-1111": 0})
    with nvml.Nvml.open(fake.module) as session:
        with pytest.raises(nvml.NvmlError, match="MIG instance 2222 not found in NVML"):
            nvml.find_device(session, "2222", 0, mig=True)
        # Without the hint, the single GPU is still refused: it is split into instances.
        with pytest.raises(nvml.NvmlError, match="split into MIG instances"):
            nvml.find_device(session, None, 0)


def test_load_reports_a_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(nvml.importlib, "import_module", missing)
    with pytest.raises(nvml.NvmlError, match="pip install nvidia-ml-py"):
        nvml.load()
    assert nvml.probe()[1].startswith("nvidia-ml-py is not installed")


def test_utilization_is_the_mean_of_the_windows_samples_as_a_fraction() -> None:
    fake = FakeNvml()
    fake.utilization_samples = [(900, 0), (1_100, 100), (1_300, 50)]  # one before the window
    with nvml.Nvml.open(fake.module) as session:
        value, source = session.utilization(session.handle(0), 1_000)
    assert value == pytest.approx(0.75)
    assert source == "mean of 2 NVML utilization samples from the window"


@pytest.mark.parametrize("samples, fail, why", [
    ([(900, 10)], None, "NVML kept no utilization sample from the window"),
    ([(1_100, 10)], ERRORS["NVMLError_NotSupported"],
     "nvmlDeviceGetSamples: not supported on this device or driver"),
])
def test_utilization_falls_back_to_the_current_rate_and_says_so(
        samples: list[tuple[int, int]], fail: Any, why: str) -> None:
    fake = FakeNvml()
    fake.utilization_samples = samples
    if fail is not None:
        fake.fail["nvmlDeviceGetSamples"] = fail
    with nvml.Nvml.open(fake.module) as session:
        value, source = session.utilization(session.handle(0), 1_000)
    assert value == pytest.approx(0.37)
    assert source.startswith("nvmlDeviceGetUtilizationRates at the window's end")
    assert source.endswith(f"({why})")


def test_utilization_of_a_mig_instance_is_refused_with_the_reason() -> None:
    fake = FakeNvml(migs={"MIG-0001": 0})
    with nvml.Nvml.open(fake.module) as session, pytest.raises(nvml.NvmlError):
        session.utilization(session.handle("MIG-0001"), 0)


def test_device_utilization_opens_its_own_session_and_gives_a_reason_when_empty() -> None:
    fake = FakeNvml()
    fake.utilization_samples = [(2_000, 40)]
    assert nvml.device_utilization("GPU-0000", 0, False, 1_000, fake.module) == (
        pytest.approx(0.4), "mean of 1 NVML utilization samples from the window", "")
    fake.fail["nvmlInit"] = ERRORS["NVMLError_DriverNotLoaded"]
    value, source, why = nvml.device_utilization("GPU-0000", 0, False, 1_000, fake.module)
    assert value != value and source == "" and why.startswith("NVIDIA driver not loaded")
