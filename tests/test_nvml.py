"""The NVML wrapper against a fake ``pynvml``: units, reasons, unsupported calls and errors.

:class:`FakeNvml` is also the fake the NVML energy collector's tests use.
"""

from __future__ import annotations

import types
from typing import Any

import pytest

from harness import nvml

# Error codes as in nvml.h.
ERROR_TEXT = {
    1: "Uninitialized",
    3: "Not Supported",
    4: "Insufficient Permissions",
    6: "Not Found",
    9: "Driver Not Loaded",
    12: "NVML Shared Library Not Found",
    13: "Function Not Found",
    15: "GPU is lost",
    999: "Unknown Error",
}


class NVMLError(Exception):
    """Like pynvml's: one class per code, ``value`` holds the code."""

    code = 999

    def __init__(self, value: int | None = None) -> None:
        super().__init__()
        self.value = self.code if value is None else value

    def __str__(self) -> str:
        return ERROR_TEXT.get(self.value, f"NVML Error with code {self.value}")


def _error(name: str, code: int) -> type[NVMLError]:
    return type(name, (NVMLError,), {"code": code})


ERRORS = {
    "NVMLError_Uninitialized": _error("NVMLError_Uninitialized", 1),
    "NVMLError_NotSupported": _error("NVMLError_NotSupported", 3),
    "NVMLError_NoPermission": _error("NVMLError_NoPermission", 4),
    "NVMLError_NotFound": _error("NVMLError_NotFound", 6),
    "NVMLError_DriverNotLoaded": _error("NVMLError_DriverNotLoaded", 9),
    "NVMLError_LibraryNotFound": _error("NVMLError_LibraryNotFound", 12),
    "NVMLError_FunctionNotFound": _error("NVMLError_FunctionNotFound", 13),
    "NVMLError_GpuIsLost": _error("NVMLError_GpuIsLost", 15),
    "NVMLError_Unknown": _error("NVMLError_Unknown", 999),
}

REASONS = {"GpuIdle": 0x1, "ApplicationsClocksSetting": 0x2, "SwPowerCap": 0x4,
           "HwSlowdown": 0x8, "SyncBoost": 0x10, "SwThermalSlowdown": 0x20,
           "HwThermalSlowdown": 0x40, "HwPowerBrakeSlowdown": 0x80, "DisplayClockSetting": 0x100}


class FakeNvml:
    """A fake pynvml: ``module`` has the functions and errors; the attributes here are its state.

    ``fail[name]`` makes ``name`` raise that error (an instance or class); ``delattr(module,
    name)`` makes a function absent, as in an older nvidia-ml-py. ``naming="throttle"`` gives
    the pre-12.535 constant and function names.
    """

    def __init__(self, *, naming: str = "event", names: tuple[str, ...] = ("NVIDIA H200",),
                 uuids: tuple[str, ...] = ("GPU-0000",)) -> None:
        self.names = list(names)
        self.uuids = list(uuids)
        self.energy_mj = [1_000_000] * len(names)
        self.sm_clock_mhz = 1980
        self.temperature_c = 41
        self.reasons = 0
        self.memory_used = 3 * 2**30
        self.memory_total = 141 * 2**30
        self.power_mw = 75_500
        self.limit_mw = 700_000
        self.fail: dict[str, BaseException | type[BaseException]] = {}
        self.inits = 0
        self.shutdowns = 0
        module = types.ModuleType("pynvml")
        module.NVMLError = NVMLError  # type: ignore[attr-defined]
        for name, cls in ERRORS.items():
            setattr(module, name, cls)
        module.NVML_CLOCK_SM = 1  # type: ignore[attr-defined]
        module.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
        prefix = "nvmlClocksEventReason" if naming == "event" else "nvmlClocksThrottleReason"
        for reason, bit in REASONS.items():
            setattr(module, prefix + reason, bit)
        reader = ("nvmlDeviceGetCurrentClocksEventReasons" if naming == "event"
                  else "nvmlDeviceGetCurrentClocksThrottleReasons")
        functions = {
            "nvmlInit": self._init,
            "nvmlShutdown": self._shutdown,
            "nvmlDeviceGetCount": lambda: len(self.names),
            "nvmlDeviceGetHandleByIndex": self._by_index,
            "nvmlDeviceGetHandleByUUID": self._by_uuid,
            "nvmlDeviceGetName": lambda h: self.names[h].encode(),  # old releases return bytes
            "nvmlSystemGetDriverVersion": lambda: "570.124.06",
            "nvmlSystemGetCudaDriverVersion": lambda: 12080,
            "nvmlDeviceGetEnforcedPowerLimit": lambda h: self.limit_mw,
            "nvmlDeviceGetPowerManagementLimit": lambda h: self.limit_mw,
            "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(
                used=self.memory_used, total=self.memory_total,
                free=self.memory_total - self.memory_used),
            "nvmlDeviceGetTotalEnergyConsumption": lambda h: self.energy_mj[h],
            "nvmlDeviceGetPowerUsage": lambda h: self.power_mw,
            "nvmlDeviceGetClockInfo": self._clock,
            "nvmlDeviceGetTemperature": self._temperature,
            reader: lambda h: self.reasons,
        }
        for name, fn in functions.items():
            setattr(module, name, self._wrap(name, fn))
        self.module = module

    def _wrap(self, name: str, fn: Any) -> Any:
        def call(*args: Any) -> Any:
            if name in self.fail:
                raise self.fail[name]
            return fn(*args)

        return call

    def _init(self) -> None:
        self.inits += 1

    def _shutdown(self) -> None:
        self.shutdowns += 1

    def _by_index(self, index: int) -> int:
        if not 0 <= index < len(self.names):
            raise ERRORS["NVMLError_NotFound"]()
        return index

    def _by_uuid(self, uuid: str) -> int:
        if uuid not in self.uuids:
            raise ERRORS["NVMLError_NotFound"]()
        return self.uuids.index(uuid)

    def _clock(self, handle: int, clock: int) -> int:
        assert clock == 1, "asked for a clock other than SM"
        return self.sm_clock_mhz

    def _temperature(self, handle: int, sensor: int) -> int:
        assert sensor == 0, "asked for a sensor other than the GPU die"
        return self.temperature_c


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


@pytest.mark.parametrize("naming", ["event", "throttle"])
def test_throttle_reasons_under_either_naming(naming: str) -> None:
    fake = FakeNvml(naming=naming)
    with nvml.Nvml.open(fake.module) as session:
        handle = session.handle(0)
        assert session.throttle_reasons(handle) == ()
        fake.reasons = 0x4 | 0x40 | 0x8
        assert session.throttle_reasons(handle) == ("SwPowerCap", "HwSlowdown",
                                                    "HwThermalSlowdown")


def test_event_reader_missing_in_the_driver_falls_back(fake: FakeNvml) -> None:
    # New bindings on an old driver: the new function exists in Python but not in the library.
    fake.fail["nvmlDeviceGetCurrentClocksEventReasons"] = ERRORS["NVMLError_FunctionNotFound"]()
    fake.module.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: 0x1  # type: ignore[attr-defined]
    with nvml.Nvml.open(fake.module) as session:
        assert session.throttle_reasons(session.handle(0)) == ("GpuIdle",)


def test_throttle_reasons_unsupported(fake: FakeNvml) -> None:
    fake.fail["nvmlDeviceGetCurrentClocksEventReasons"] = ERRORS["NVMLError_NotSupported"]()
    with nvml.Nvml.open(fake.module) as session, pytest.raises(nvml.NvmlError) as caught:
        session.throttle_reasons(session.handle(0))
    assert caught.value.not_supported


def test_decode_reasons_keeps_unknown_bits() -> None:
    assert nvml.decode_reasons(0) == ()
    assert nvml.decode_reasons(0x1 | 0x100) == ("GpuIdle", "DisplayClockSetting")
    assert nvml.decode_reasons(0x4 | 0x800) == ("SwPowerCap", "Unknown0x800")


def test_decode_reasons_uses_the_module_constants() -> None:
    module = types.SimpleNamespace(nvmlClocksThrottleReasonSwPowerCap=0x1000)
    assert nvml.decode_reasons(0x1000, module) == ("SwPowerCap",)
    assert nvml.decode_reasons(0x4, module) == ("Unknown0x4",)


def test_decode_reasons_with_the_installed_bindings() -> None:
    pynvml = pytest.importorskip("pynvml")
    assert nvml.decode_reasons(0x4 | 0x20, pynvml) == ("SwPowerCap", "SwThermalSlowdown")


def test_load_reports_a_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        raise ImportError(name)

    monkeypatch.setattr(nvml.importlib, "import_module", missing)
    with pytest.raises(nvml.NvmlError, match="pip install nvidia-ml-py"):
        nvml.load()
    assert nvml.probe()[1].startswith("nvidia-ml-py is not installed")
