"""Fakes shared by the tests: a clock and a device whose time only moves when work runs, a fake
``pynvml`` (MIG instances, an energy counter that moves in steps, violation counters) and a fake
``torch.cuda`` over the fake device."""

from __future__ import annotations

import contextlib
import math
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


class FakeClock:
    """Integer nanoseconds that advance only when the fake work says so."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1e9)


class FakeDevice:
    """An asynchronous device: each call queues work, and only synchronise waits for it."""

    def __init__(self, clock: FakeClock, duration: Callable[[int], float]):
        self.clock = clock
        self.duration = duration
        self.calls = 0
        self.queued = 0.0
        self.syncs = 0

    def step(self) -> int:
        self.queued += self.duration(self.calls)
        self.calls += 1
        return self.calls

    def sync(self) -> None:
        self.syncs += 1
        self.clock.advance(self.queued)
        self.queued = 0.0


def host_step(clock: FakeClock, duration: Callable[[int], float]) -> Callable[[], int]:
    """A synchronous call whose n-th invocation takes ``duration(n)`` seconds."""
    calls = [0]

    def step() -> int:
        clock.advance(duration(calls[0]))
        calls[0] += 1
        return calls[0]

    return step


# --- NVML -------------------------------------------------------------------------------------

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

#: nvmlPerfPolicyType_t values, as in nvml.h.
POLICIES = {"POWER": 0, "THERMAL": 1, "SYNC_BOOST": 2, "BOARD_LIMIT": 3, "LOW_UTILIZATION": 4,
            "RELIABILITY": 5, "TOTAL_APP_CLOCKS": 10, "TOTAL_BASE_CLOCKS": 11}


@dataclass(frozen=True)
class MigHandle:
    """A MIG instance's handle: its UUID and the index of the GPU it is carved from."""

    uuid: str
    parent: int


class FakeNvml:
    """A fake pynvml: ``module`` has the functions and errors; the attributes here are its state.

    ``fail[name]`` makes ``name`` raise that error (an instance or class); ``delattr(module,
    name)`` makes a function absent, as in an older nvidia-ml-py.

    MIG: ``migs`` maps a MIG instance's UUID to the index of its GPU; its handle answers memory
    and name queries and refuses energy, power, clocks and temperature, as NVML does.
    ``energy_at``, when set, gives each GPU's counter (mJ) instead of ``energy_mj``: the tests
    make it a counter that moves in steps of the fake clock. ``violation_ns[policy]`` is the
    cumulative time (ns) a perf policy held clocks down.
    """

    def __init__(self, *, names: tuple[str, ...] = ("NVIDIA H200",),
                 uuids: tuple[str, ...] = ("GPU-0000",),
                 migs: dict[str, int] | None = None) -> None:
        self.names = list(names)
        self.uuids = list(uuids)
        self.migs = dict(migs or {})
        self.energy_mj = [1_000_000] * len(names)
        self.energy_at: Callable[[int], int] | None = None
        self.energy_reads = 0
        self.sm_clock_mhz = 1980
        self.temperature_c = 41
        self.violation_ns: dict[int, int] = dict.fromkeys(POLICIES.values(), 0)
        self.memory_used = 3 * 2**30
        self.memory_total = 141 * 2**30
        self.mig_memory_used = 512 * 2**20
        self.mig_memory_total = 18 * 2**30
        self.power_mw = 75_500
        self.limit_mw = 700_000
        #: (timestamp µs, GPU utilization %) samples the driver keeps; ``utilization_pct``
        #: is what nvmlDeviceGetUtilizationRates answers.
        self.utilization_samples: list[tuple[int, int]] = []
        self.utilization_pct = 37
        self.fail: dict[str, BaseException | type[BaseException]] = {}
        self.inits = 0
        self.shutdowns = 0
        module = types.ModuleType("pynvml")
        module.NVMLError = NVMLError  # type: ignore[attr-defined]
        for name, cls in ERRORS.items():
            setattr(module, name, cls)
        module.NVML_CLOCK_SM = 1  # type: ignore[attr-defined]
        module.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
        module.NVML_GPU_UTILIZATION_SAMPLES = 1  # type: ignore[attr-defined]
        for policy, value in POLICIES.items():
            setattr(module, f"NVML_PERF_POLICY_{policy}", value)
        functions = {
            "nvmlInit": self._init,
            "nvmlShutdown": self._shutdown,
            "nvmlDeviceGetCount": lambda: len(self.names),
            "nvmlDeviceGetHandleByIndex": self._by_index,
            "nvmlDeviceGetHandleByUUID": self._by_uuid,
            "nvmlDeviceGetName": self._name,
            "nvmlDeviceGetUUID": lambda h: h.uuid if isinstance(h, MigHandle) else self.uuids[h],
            "nvmlSystemGetDriverVersion": lambda: "570.124.06",
            "nvmlSystemGetCudaDriverVersion": lambda: 12080,
            "nvmlDeviceGetEnforcedPowerLimit": self._gpu_only(lambda h: self.limit_mw),
            "nvmlDeviceGetPowerManagementLimit": self._gpu_only(lambda h: self.limit_mw),
            "nvmlDeviceGetMemoryInfo": self._memory,
            "nvmlDeviceGetTotalEnergyConsumption": self._gpu_only(self._energy),
            "nvmlDeviceGetPowerUsage": self._gpu_only(lambda h: self.power_mw),
            "nvmlDeviceGetClockInfo": self._gpu_only(self._clock),
            "nvmlDeviceGetTemperature": self._gpu_only(self._temperature),
            "nvmlDeviceGetViolationStatus": self._gpu_only(self._violation),
            "nvmlDeviceIsMigDeviceHandle": lambda h: int(isinstance(h, MigHandle)),
            "nvmlDeviceGetDeviceHandleFromMigDeviceHandle": self._parent,
            "nvmlDeviceGetMigMode": self._mig_mode,
            "nvmlDeviceGetSamples": self._gpu_only(self._samples),
            "nvmlDeviceGetUtilizationRates": self._gpu_only(
                lambda h: types.SimpleNamespace(gpu=self.utilization_pct, memory=0)),
        }
        for name, fn in functions.items():
            setattr(module, name, self._wrap(name, fn))
        self.module = module

    def _samples(self, handle: Any, kind: int, since_us: int) -> tuple[int, list[Any]]:
        """As pynvml: (value type, samples newer than ``since_us``); 1 is unsigned int."""
        assert kind == 1, "only GPU utilization samples are faked"
        return 1, [types.SimpleNamespace(timeStamp=t,
                                         sampleValue=types.SimpleNamespace(uiVal=v))
                   for t, v in self.utilization_samples if t > since_us]

    def _wrap(self, name: str, fn: Any) -> Any:
        def call(*args: Any) -> Any:
            if name in self.fail:
                raise self.fail[name]
            return fn(*args)

        return call

    @staticmethod
    def _gpu_only(fn: Callable[..., Any]) -> Callable[..., Any]:
        """NVML answers these for whole GPUs only; a MIG handle gets NOT_SUPPORTED."""
        def call(handle: Any, *args: Any) -> Any:
            if isinstance(handle, MigHandle):
                raise ERRORS["NVMLError_NotSupported"]()
            return fn(handle, *args)

        return call

    def _init(self) -> None:
        self.inits += 1

    def _shutdown(self) -> None:
        self.shutdowns += 1

    def _by_index(self, index: int) -> int:
        if not 0 <= index < len(self.names):
            raise ERRORS["NVMLError_NotFound"]()
        return index

    def _by_uuid(self, uuid: str) -> int | MigHandle:
        if uuid in self.migs:
            return MigHandle(uuid, self.migs[uuid])
        if uuid not in self.uuids:
            raise ERRORS["NVMLError_NotFound"]()
        return self.uuids.index(uuid)

    def _name(self, handle: int | MigHandle) -> bytes:
        if isinstance(handle, MigHandle):
            return f"{self.names[handle.parent]} MIG 1g.18gb".encode()
        return self.names[handle].encode()  # old releases return bytes

    def _memory(self, handle: int | MigHandle) -> types.SimpleNamespace:
        used, total = ((self.mig_memory_used, self.mig_memory_total)
                       if isinstance(handle, MigHandle) else (self.memory_used, self.memory_total))
        return types.SimpleNamespace(used=used, total=total, free=total - used)

    def _energy(self, handle: int) -> int:
        self.energy_reads += 1
        return self.energy_at(handle) if self.energy_at is not None else self.energy_mj[handle]

    def _clock(self, handle: int, clock: int) -> int:
        assert clock == 1, "asked for a clock other than SM"
        return self.sm_clock_mhz

    def _temperature(self, handle: int, sensor: int) -> int:
        assert sensor == 0, "asked for a sensor other than the GPU die"
        return self.temperature_c

    def _violation(self, handle: int, policy: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(referenceTime=0, violationTime=self.violation_ns[policy])

    def _parent(self, handle: Any) -> int:
        if not isinstance(handle, MigHandle):
            raise ERRORS["NVMLError_NotFound"]()
        return handle.parent

    def _mig_mode(self, handle: Any) -> tuple[int, int]:
        if isinstance(handle, MigHandle):
            raise ERRORS["NVMLError_NotSupported"]()
        on = int(handle in self.migs.values())
        return on, on


class SteppingCounter:
    """NVML's total-energy counter as the driver keeps it: the energy (mJ) used up to the last
    update, updated only every ``period_s`` of the fake clock. Set :attr:`power_w` to change the
    draw from now on; :meth:`true_mj` is the exact energy at a time, for checking the marks."""

    def __init__(self, clock: Callable[[], float], period_s: float, power_w: float,
                 start_mj: float = 1_000_000.0) -> None:
        self.clock = clock
        self.period_s = period_s
        self._segments: list[tuple[float, float]] = [(clock(), power_w)]
        self._start_mj = start_mj

    @property
    def power_w(self) -> float:
        return self._segments[-1][1]

    @power_w.setter
    def power_w(self, watts: float) -> None:
        self._segments.append((self.clock(), watts))

    def true_mj(self, t: float) -> float:
        """The energy used up to ``t`` (which must not precede the last power change)."""
        total = self._start_mj
        for (t0, watts), (t1, _) in zip(self._segments, [*self._segments[1:], (t, 0.0)],
                                        strict=True):
            total += watts * max(0.0, min(t1, t) - t0) * 1000.0
        return total

    def __call__(self, handle: int) -> int:
        last_update = math.floor(self.clock() / self.period_s) * self.period_s
        return int(self.true_mj(last_update))


# --- torch.cuda -------------------------------------------------------------------------------


class FakeEvent:
    """``torch.cuda.Event``: records the fake device's time when the stream reaches it."""

    def __init__(self, cuda: FakeCuda, enable_timing: bool = False) -> None:
        self.cuda = cuda
        self.enable_timing = enable_timing
        self.at_ns: int | None = None

    def record(self, stream: Any = None) -> None:
        # The stream reaches the event once the work queued before it has run.
        self.at_ns = self.cuda.clock.now + round(self.cuda.device.queued * 1e9)

    def synchronize(self) -> None:
        self.cuda.device.sync()

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.enable_timing and end.enable_timing, "events made without enable_timing"
        assert self.at_ns is not None and end.at_ns is not None, "an event was never recorded"
        return (end.at_ns - self.at_ns) / 1e6  # milliseconds, as torch returns


class FakeCuda:
    """A fake ``torch.cuda`` over a :class:`FakeDevice`, installed on the real module's names.

    ``install(monkeypatch)`` replaces the functions the cuda adapter calls. ``initialised``
    turns True on any call that would initialise CUDA in this process (properties, streams,
    synchronise, allocation figures); with ``forbid_init`` such a call fails instead, for tests
    of code that must stay out of CUDA (the parent of a run). ``device_count`` and NVML are
    what torch answers without initialising.
    """

    def __init__(self, *, name: str = "NVIDIA H200", count: int = 1, uuid: str = "0000",
                 major: int = 9, minor: int = 0, forbid_init: bool = False,
                 clock: FakeClock | None = None,
                 duration: Callable[[int], float] = lambda n: 1e-3) -> None:
        self.name, self.count, self.uuid = name, count, uuid
        self.major, self.minor = major, minor
        self.forbid_init = forbid_init
        self.initialised = False
        self.clock = clock or FakeClock()
        self.device = FakeDevice(self.clock, duration)
        self.reserved_bytes = 0
        self.allocated_bytes = 0
        self.graph_pool_bytes = 64 * 2**20
        self.syncs = 0

    def _init(self, what: str) -> None:
        if self.forbid_init:
            raise AssertionError(f"{what} initialises CUDA in this process")
        self.initialised = True

    def install(self, monkeypatch: Any) -> FakeCuda:
        import torch

        fake = self

        def sync(device: Any = None) -> None:
            fake._init("torch.cuda.synchronize")
            fake.syncs += 1
            fake.device.sync()

        def is_available() -> bool:
            fake._init("torch.cuda.is_available")
            return fake.count > 0

        def properties(index: int) -> types.SimpleNamespace:
            fake._init("torch.cuda.get_device_properties")
            return types.SimpleNamespace(
                name=fake.name, major=fake.major, minor=fake.minor, total_memory=141 * 2**30,
                multi_processor_count=132, uuid=fake.uuid)

        def initialising(what: str, value: Callable[..., Any]) -> Callable[..., Any]:
            def call(*args: Any, **kwargs: Any) -> Any:
                fake._init(f"torch.cuda.{what}")
                return value(*args, **kwargs)

            return call

        @contextlib.contextmanager
        def graph(cuda_graph: Any, **kwargs: Any) -> Iterator[None]:
            fake._init("torch.cuda.graph")
            yield
            fake.reserved_bytes += fake.graph_pool_bytes  # the capture's private pool

        class Graph:
            def replay(self) -> None:
                fake.device.step()

        names: dict[str, Any] = {
            "device_count": lambda: fake.count,
            "is_available": is_available,
            "is_initialized": lambda: fake.initialised,
            "get_device_properties": properties,
            "get_device_name": lambda index=0: properties(index).name,
            "get_device_capability": lambda index=0: (fake.major, fake.minor),
            "synchronize": sync,
            "empty_cache": initialising("empty_cache", lambda: None),
            "reset_peak_memory_stats": initialising("reset_peak_memory_stats",
                                                    lambda index=None: None),
            "max_memory_allocated": initialising("max_memory_allocated",
                                                 lambda index=None: fake.allocated_bytes),
            "max_memory_reserved": initialising("max_memory_reserved",
                                                lambda index=None: fake.reserved_bytes),
            "memory_reserved": initialising("memory_reserved",
                                            lambda index=None: fake.reserved_bytes),
            "Event": lambda enable_timing=False, **kw: FakeEvent(fake, enable_timing),
            "device": initialising("device", lambda index: contextlib.nullcontext()),
            "Stream": initialising("Stream", lambda *a, **kw: types.SimpleNamespace(
                wait_stream=lambda other: None)),
            "current_stream": initialising("current_stream", lambda *a: types.SimpleNamespace(
                wait_stream=lambda other: None)),
            "stream": lambda s: contextlib.nullcontext(),
            "graph": graph,
            "CUDAGraph": Graph,
        }
        for attribute, value in names.items():
            monkeypatch.setattr(torch.cuda, attribute, value)
        return self
