"""A thin, typed wrapper over NVML (``pynvml`` from nvidia-ml-py): every failure is one-line reason.

NVML is the driver's management library: device names, power limits, memory, clocks,
temperatures, throttling (violation) counters, MIG instances and the total-energy counter. The
``pynvml`` module is imported lazily (never at ``import harness``) and every entry point takes an
injected module object instead, so the tests drive this code with a fake ``pynvml`` on machines
without a GPU.

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

#: Perf policies whose violation counters say why clocks were held down, by the suffix of
#: their ``NVML_PERF_POLICY_*`` constant, with the nvml.h value used where a release lacks it.
#: Each counter is the time the policy held clocks below what was asked since the driver loaded,
#: so its change over a window says how long the window was throttled and why.
POLICIES: tuple[tuple[str, int], ...] = (
    ("POWER", 0),
    ("THERMAL", 1),
    ("SYNC_BOOST", 2),
    ("BOARD_LIMIT", 3),
    ("LOW_UTILIZATION", 4),
    ("RELIABILITY", 5),
    ("TOTAL_APP_CLOCKS", 10),
    ("TOTAL_BASE_CLOCKS", 11),
)

_INSTALL_HINT = "nvidia-ml-py is not installed (pip install nvidia-ml-py; it provides pynvml)"
# Defaults of the real bindings, for a module that lacks the constant.
_NVML_CLOCK_SM = 1
_NVML_TEMPERATURE_GPU = 0
_NVML_GPU_UTILIZATION = 1


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

    def uuid(self, handle: Handle) -> str:
        """The device's UUID, ``GPU-…`` (or ``MIG-…`` for a MIG instance)."""
        return _str(self._call("nvmlDeviceGetUUID", handle))

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

    def utilization(self, handle: Handle, since_us: int) -> tuple[float, str]:
        """The GPU's utilization over the time since ``since_us`` (µs since the epoch, NVML's
        sample clock) as a fraction, and where it comes from: the mean of the driver's own
        samples (``nvmlDeviceGetSamples``, GPU utilization) taken since then, read afterwards,
        so no thread polls during the window; else ``nvmlDeviceGetUtilizationRates`` now, over
        the driver's last sample period, which may reach back before the window.

        NVML's utilization is a duty cycle: the fraction of sample time during which any kernel
        ran, so one kernel on one SM counts as 100%.
        """
        kind = getattr(self.module, "NVML_GPU_UTILIZATION_SAMPLES", _NVML_GPU_UTILIZATION)
        try:
            _, samples = self._call("nvmlDeviceGetSamples", handle, kind, since_us)
            values = [float(s.sampleValue.uiVal) for s in samples if s.timeStamp > since_us]
            why = "NVML kept no utilization sample from the window"
        except NvmlError as exc:
            values, why = [], exc.reason
        if values:
            return (sum(values) / len(values) / 100,
                    f"mean of {len(values)} NVML utilization samples from the window")
        rates = self._call("nvmlDeviceGetUtilizationRates", handle)
        return (float(rates.gpu) / 100,
                f"nvmlDeviceGetUtilizationRates at the window's end, over the driver's last "
                f"sample period ({why})")

    def violation_ns(self, handle: Handle) -> dict[str, int]:
        """Each perf policy's cumulative violation time in ns (``nvmlDeviceGetViolationStatus``).

        Policies the device does not report are left out; raises :class:`NvmlError` when it
        reports none of them.
        """
        times: dict[str, int] = {}
        first: NvmlError | None = None
        for name, default in POLICIES:
            policy = getattr(self.module, f"NVML_PERF_POLICY_{name}", default)
            try:
                status = self._call("nvmlDeviceGetViolationStatus", handle, policy)
            except NvmlError as exc:
                first = first or exc
                continue
            times[name.lower()] = int(status.violationTime)
        if not times:
            assert first is not None
            raise first
        return times

    # --- MIG -----------------------------------------------------------------------------

    def is_mig(self, handle: Handle) -> bool:
        """Whether ``handle`` is a MIG instance (False where NVML predates MIG)."""
        try:
            return bool(self._call("nvmlDeviceIsMigDeviceHandle", handle))
        except NvmlError as exc:
            if exc.not_supported:
                return False
            raise

    def mig_enabled(self, handle: Handle) -> bool:
        """Whether a whole GPU is in MIG mode (split into instances)."""
        try:
            current, _ = self._call("nvmlDeviceGetMigMode", handle)
        except NvmlError as exc:
            if exc.not_supported:
                return False
            raise
        return bool(current)

    def parent(self, handle: Handle) -> Handle:
        """The whole GPU a MIG instance is carved from."""
        return self._call("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", handle)


@dataclass(frozen=True)
class Device:
    """The NVML device behind one CUDA device.

    ``handle`` is the device itself; for a MIG instance, ``gpu`` is the whole GPU it shares
    with other instances (clocks, temperature and throttling are the GPU's; energy and power
    exist only for the whole GPU), else the same handle.
    """

    handle: Handle
    gpu: Handle
    mig: bool
    name: str


#: Why a MIG instance has no energy or power figures.
MIG_ENERGY = ("a MIG instance: NVML counts energy and power only for the whole GPU, which other "
              "instances share, so no figure is this instance's")


def find_device(session: Nvml, uuid: str | None, index: int, *, mig: bool = False) -> Device:
    """The NVML device that CUDA calls ``uuid`` (bare, or ``GPU-``/``MIG-`` prefixed).

    CUDA and NVML number devices differently (NVML ignores CUDA_VISIBLE_DEVICES and follows PCI
    order), so the CUDA ``index`` is used only where it cannot name the wrong device: NVML sees
    one device and that device is not split into MIG instances. ``mig`` says CUDA's device is a
    MIG instance (its name says so); its UUID is then tried as ``MIG-`` first and nothing falls
    back to a whole GPU, whose figures would be every tenant's.
    """
    label = uuid or f"cuda:{index}"
    if uuid:
        bare = uuid.removeprefix("GPU-").removeprefix("MIG-")
        if uuid != bare:
            names = [uuid]
        else:
            names = [f"MIG-{bare}", f"GPU-{bare}"] if mig else [f"GPU-{bare}", f"MIG-{bare}"]
        for name in names:
            try:
                return _device(session, session.handle(name))
            except NvmlError:
                continue
    if mig:
        raise NvmlError(f"MIG instance {label} not found in NVML; its GPU's figures would be "
                        "every instance's, so none are reported")
    count = session.device_count()
    if count != 1:
        raise NvmlError(f"cannot find GPU {label} in NVML by UUID, and with {count} devices "
                        "the CUDA index may name another one")
    handle = session.handle(0)
    if session.mig_enabled(handle):
        raise NvmlError(f"cannot find {label} in NVML by UUID, and its GPU is split into MIG "
                        "instances: the whole GPU's figures are not this device's")
    return _device(session, handle)


def _device(session: Nvml, handle: Handle) -> Device:
    mig = session.is_mig(handle)
    try:
        name = session.name(handle)
    except NvmlError:
        name = ""
    return Device(handle=handle, gpu=session.parent(handle) if mig else handle, mig=mig,
                  name=name)


def _str(value: Any) -> str:
    # Releases before 11.515 return bytes; later ones str.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def identity(module: Any | None = None) -> list[str]:
    """Every GPU NVML sees, as ``name UUID`` in NVML's order; empty where NVML is unusable.

    Names the hardware without initialising CUDA, so a run's parent can key what belongs to
    these GPUs (the peak cache)."""
    try:
        with Nvml.open(module) as session:
            handles = [session.handle(i) for i in range(session.device_count())]
            return [f"{session.name(h)} {session.uuid(h)}" for h in handles]
    except NvmlError:
        return []


def probe(module: Any | None = None) -> tuple[bool, str]:
    """Whether NVML initialises and sees at least one device; the reason when not."""
    try:
        with Nvml.open(module) as nvml:
            if nvml.device_count() < 1:
                return False, "NVML sees no NVIDIA device"
    except NvmlError as exc:
        return False, exc.reason
    return True, ""


def device_utilization(uuid: str | None, index: int, mig: bool, since_us: int,
                       module: Any | None = None) -> tuple[float, str, str]:
    """:meth:`Nvml.utilization` of the device CUDA names ``uuid`` (see :func:`find_device`) in
    a session of its own: the fraction, its source, and "" or why it is NaN."""
    try:
        with Nvml.open(module) as session:
            device = find_device(session, uuid, index, mig=mig)
            return (*session.utilization(device.handle, since_us), "")
    except NvmlError as exc:
        return float("nan"), "", exc.reason
