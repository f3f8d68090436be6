"""A thin, typed wrapper over NVML (``pynvml`` from nvidia-ml-py): every failure is one-line reason.

NVML is the driver's management library: device names, power limits, memory, clocks,
temperatures and the total-energy counter. The ``pynvml`` module is imported lazily (never at
``import harness``) and every entry point takes an injected module object instead, so the tests
drive this code with a fake ``pynvml`` on machines without a GPU.

Units follow NVML but are converted to SI where NVML is not: milliwatts → watts. The energy
counter stays in millijoules (an exact integer) and collectors convert deltas to joules.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

#: An NVML device handle (a ctypes pointer in the real bindings; anything in a fake).
Handle = Any

#: Clock event ("throttle") reasons in bit order, by their NVML suffix. nvidia-ml-py ≥ 12.535
#: names the constants ``nvmlClocksEventReason*``; older releases ``nvmlClocksThrottleReason*``.
#: The bit values are part of NVML's ABI; the defaults apply where a release has neither name.
REASON_BITS: tuple[tuple[str, int], ...] = (
    ("GpuIdle", 0x1),
    ("ApplicationsClocksSetting", 0x2),
    ("SwPowerCap", 0x4),
    ("HwSlowdown", 0x8),
    ("SyncBoost", 0x10),
    ("SwThermalSlowdown", 0x20),
    ("HwThermalSlowdown", 0x40),
    ("HwPowerBrakeSlowdown", 0x80),
    ("DisplayClockSetting", 0x100),
)
_REASON_PREFIXES = ("nvmlClocksEventReason", "nvmlClocksThrottleReason")
#: Readers of the current reasons, newest name first (the old one is deprecated in NVML 12.x).
_REASON_FUNCTIONS = ("nvmlDeviceGetCurrentClocksEventReasons",
                     "nvmlDeviceGetCurrentClocksThrottleReasons")

_INSTALL_HINT = "nvidia-ml-py is not installed (pip install nvidia-ml-py; it provides pynvml)"
# Defaults of the real bindings, for a module that lacks the constant.
_NVML_CLOCK_SM = 1
_NVML_TEMPERATURE_GPU = 0


class NvmlError(Exception):
    """An NVML call failed or NVML is unusable; ``reason`` says why in one line.

    ``not_supported`` marks calls the device or driver does not offer (NVML_ERROR_NOT_SUPPORTED,
    a function the driver or the bindings lack), as opposed to calls that failed.
    """

    def __init__(self, reason: str, *, not_supported: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.not_supported = not_supported


@dataclass(frozen=True)
class MemoryInfo:
    """Device memory in bytes, as the driver sees it (every process on the device counts)."""

    used_bytes: int
    total_bytes: int


def load(module: Any | None = None) -> Any:
    """``module`` when given (tests pass a fake), else the real ``pynvml``, imported now."""
    if module is not None:
        return module
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        raise NvmlError(_INSTALL_HINT) from None


def _error_class(module: Any, name: str) -> type[BaseException] | None:
    cls = getattr(module, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, BaseException) else None


def _is(module: Any, exc: BaseException, name: str) -> bool:
    cls = _error_class(module, name)
    return cls is not None and isinstance(exc, cls)


def _text(exc: BaseException) -> str:
    try:
        text = str(exc).strip()
    except Exception:  # str() of an NVMLError asks the library, which may be the problem
        text = ""
    return text.splitlines()[0] if text else type(exc).__name__


def _init_reason(module: Any, exc: BaseException) -> str:
    """Why ``nvmlInit`` failed, with what to do about it."""
    if _is(module, exc, "NVMLError_LibraryNotFound"):
        return ("NVML library not found (libnvidia-ml.so.1): no NVIDIA driver is installed "
                "or visible here")
    if _is(module, exc, "NVMLError_DriverNotLoaded"):
        return "NVIDIA driver not loaded: no GPU here, or the kernel module is missing"
    if _is(module, exc, "NVMLError_NoPermission"):
        return "no permission to open the NVIDIA device files (/dev/nvidia*)"
    if _is(module, exc, "NVMLError_LibRmVersionMismatch"):
        return "NVML and the kernel driver differ in version: reboot or reload the driver"
    return f"nvmlInit failed: {_text(exc)}"


class Nvml:
    """An initialised NVML session; open with :meth:`open`, end with :meth:`close`.

    NVML counts ``nvmlInit`` calls, so several sessions (an adapter's and a collector's) may be
    open at once. Every query raises :class:`NvmlError` with a reason, never a binding's own
    exception, so callers turn failures into NaN figures with one ``except``.
    """

    def __init__(self, module: Any) -> None:
        # Use open(): this binds an already initialised module.
        self.module = module
        self._open = True

    @classmethod
    def open(cls, module: Any | None = None) -> Nvml:
        """Initialise NVML (the real ``pynvml`` unless ``module`` is given)."""
        mod = load(module)
        error = _error_class(mod, "NVMLError") or Exception
        init = getattr(mod, "nvmlInit", None)
        if init is None:
            raise NvmlError(f"{getattr(mod, '__name__', 'pynvml')} has no nvmlInit: "
                            f"not the NVML bindings? {_INSTALL_HINT}")
        try:
            init()
        except error as exc:
            raise NvmlError(_init_reason(mod, exc)) from None
        except Exception as exc:  # e.g. an OSError from ctypes on a broken install
            raise NvmlError(f"nvmlInit failed: {type(exc).__name__}: {_text(exc)}") from None
        return cls(mod)

    def close(self) -> None:
        """Shut this session down; idempotent, and never raises (it runs in cleanup paths)."""
        if not self._open:
            return
        self._open = False
        # Nothing useful can be done about a failed shutdown.
        with contextlib.suppress(Exception):
            self.module.nvmlShutdown()

    def __enter__(self) -> Nvml:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _call(self, name: str, *args: Any) -> Any:
        """Call ``pynvml.<name>(*args)``, turning every failure into :class:`NvmlError`."""
        if not self._open:
            raise NvmlError(f"{name}: the NVML session is closed")
        fn: Callable[..., Any] | None = getattr(self.module, name, None)
        if fn is None:
            raise NvmlError(f"{name}: not in this nvidia-ml-py release (upgrade nvidia-ml-py)",
                            not_supported=True)
        error = _error_class(self.module, "NVMLError") or Exception
        try:
            return fn(*args)
        except error as exc:
            if _is(self.module, exc, "NVMLError_NotSupported"):
                raise NvmlError(f"{name}: not supported on this device or driver",
                                not_supported=True) from None
            if _is(self.module, exc, "NVMLError_FunctionNotFound"):
                raise NvmlError(f"{name}: the installed driver lacks this function (too old)",
                                not_supported=True) from None
            raise NvmlError(f"{name} failed: {_text(exc)}") from None
        except Exception as exc:  # a binding bug must not escape as something else
            raise NvmlError(f"{name} failed: {type(exc).__name__}: {_text(exc)}") from None

    # --- system --------------------------------------------------------------------------

    def device_count(self) -> int:
        """Devices NVML sees (all of them: NVML ignores CUDA_VISIBLE_DEVICES)."""
        return int(self._call("nvmlDeviceGetCount"))

    def driver_version(self) -> str:
        """The kernel driver's version, e.g. ``570.124.06``."""
        return _str(self._call("nvmlSystemGetDriverVersion"))

    def cuda_driver_version(self) -> str:
        """The newest CUDA version the driver supports, e.g. ``12.8`` (NVML gives 12080)."""
        value = int(self._call("nvmlSystemGetCudaDriverVersion"))
        return f"{value // 1000}.{value % 1000 // 10}"

    # --- one device ----------------------------------------------------------------------

    def handle(self, device: int | str) -> Handle:
        """The handle of device ``device``: an NVML index, or a ``GPU-…``/``MIG-…`` UUID.

        NVML indices follow PCI bus order and ignore CUDA_VISIBLE_DEVICES, so they can differ
        from CUDA's; a UUID names the same device in both.
        """
        if isinstance(device, str):
            return self._call("nvmlDeviceGetHandleByUUID", device)
        return self._call("nvmlDeviceGetHandleByIndex", device)

    def name(self, handle: Handle) -> str:
        """Marketing name, e.g. ``NVIDIA H100 80GB HBM3``."""
        return _str(self._call("nvmlDeviceGetName", handle))

    def power_limit_w(self, handle: Handle) -> float:
        """The power limit the driver enforces, in W (NVML reports mW)."""
        try:
            milliwatts = self._call("nvmlDeviceGetEnforcedPowerLimit", handle)
        except NvmlError:
            # The enforced limit needs Kepler+ and a newer driver; the management limit is older.
            milliwatts = self._call("nvmlDeviceGetPowerManagementLimit", handle)
        return float(milliwatts) / 1000.0

    def memory(self, handle: Handle) -> MemoryInfo:
        """Used and total device memory in bytes."""
        info = self._call("nvmlDeviceGetMemoryInfo", handle)
        return MemoryInfo(used_bytes=int(info.used), total_bytes=int(info.total))

    def total_energy_mj(self, handle: Handle) -> int:
        """Energy used since the driver loaded, in mJ (Volta and newer; updates every ~20–100 ms).

        Raises :class:`NvmlError` with ``not_supported`` on older GPUs and some virtual GPUs.
        """
        try:
            return int(self._call("nvmlDeviceGetTotalEnergyConsumption", handle))
        except NvmlError as exc:
            if exc.not_supported:
                raise NvmlError(
                    "NVML has no total-energy counter on this device (it needs a Volta or newer "
                    f"GPU and a bare-metal or passthrough driver): {exc.reason}",
                    not_supported=True) from None
            raise

    def power_w(self, handle: Handle) -> float:
        """Board power draw in W (on Ampere and newer, averaged over about a second)."""
        return float(self._call("nvmlDeviceGetPowerUsage", handle)) / 1000.0

    def sm_clock_mhz(self, handle: Handle) -> int:
        """Current SM clock in MHz."""
        clock = getattr(self.module, "NVML_CLOCK_SM", _NVML_CLOCK_SM)
        return int(self._call("nvmlDeviceGetClockInfo", handle, clock))

    def temperature_c(self, handle: Handle) -> int:
        """GPU die temperature in °C."""
        sensor = getattr(self.module, "NVML_TEMPERATURE_GPU", _NVML_TEMPERATURE_GPU)
        return int(self._call("nvmlDeviceGetTemperature", handle, sensor))

    def throttle_reasons(self, handle: Handle) -> tuple[str, ...]:
        """Why clocks are below their maximum right now, as NVML reason names (empty: none).

        Tries the current reader (``…ClocksEventReasons``) first and falls back to the older
        ``…ClocksThrottleReasons`` where the bindings or the driver lack the new one.
        """
        errors: list[NvmlError] = []
        for name in _REASON_FUNCTIONS:
            if getattr(self.module, name, None) is None and name != _REASON_FUNCTIONS[-1]:
                continue
            try:
                mask = int(self._call(name, handle))
            except NvmlError as exc:
                if not exc.not_supported:
                    raise
                errors.append(exc)
                continue
            return decode_reasons(mask, self.module)
        # The first reader that exists says best why there is no answer.
        raise errors[0]


def _str(value: Any) -> str:
    # Releases before 11.515 return bytes; later ones str.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def reason_bits(module: Any) -> tuple[tuple[str, int], ...]:
    """(name, bit) for each known reason, with bits from ``module`` under either naming."""
    bits = []
    for name, default in REASON_BITS:
        value = default
        for prefix in _REASON_PREFIXES:
            constant = getattr(module, prefix + name, None)
            if isinstance(constant, int):
                value = constant
                break
        bits.append((name, value))
    return tuple(bits)


def decode_reasons(mask: int, module: Any = None) -> tuple[str, ...]:
    """Names of the set bits of a clock event reasons mask, in bit order.

    Bits without a known name come out as ``Unknown0x…`` rather than vanishing.
    """
    names: list[str] = []
    left = mask
    for name, bit in reason_bits(module):
        if mask & bit:
            names.append(name)
            left &= ~bit
    if left:
        names.append(f"Unknown{left:#x}")
    return tuple(names)


def probe(module: Any | None = None) -> tuple[bool, str]:
    """Whether NVML initialises and sees at least one device; the reason when not."""
    try:
        with Nvml.open(module) as nvml:
            if nvml.device_count() < 1:
                return False, "NVML sees no NVIDIA device"
    except NvmlError as exc:
        return False, exc.reason
    return True, ""
