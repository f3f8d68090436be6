"""NVIDIA GPU energy from NVML's total-energy counter, net of idle power, with clocks and heat."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from harness import nvml
from harness.collectors import EnergyCollector, Figures
from harness.collectors.energy import NUMERIC_COLUMNS as ENERGY_COLUMNS

T = TypeVar("T")

#: Columns besides the energy ones (which are exactly the RAPL collector's).
DEVICE_COLUMNS = (
    "sm_clock_start_mhz",
    "sm_clock_end_mhz",
    "temperature_start_c",
    "temperature_end_c",
    "throttle_reasons",
    "device_memory_used_bytes",
)
NAN = float("nan")


@dataclass(frozen=True)
class _Reading:
    """One NVML figure, or why there is none."""

    value: float | None
    reason: str = ""


def _read(fn: Callable[[], T]) -> tuple[T | None, str]:
    try:
        return fn(), ""
    except nvml.NvmlError as exc:
        return None, exc.reason


@dataclass(frozen=True)
class _Mark:
    """The state at one end of a window: the energy counter (mJ), the clock, clocks and heat."""

    energy_mj: int | None
    energy_reason: str
    t_s: float
    sm_clock: _Reading
    temperature: _Reading


class NvmlEnergyCollector(EnergyCollector):
    """Energy of one NVIDIA GPU over a window, from NVML's total-energy counter (mJ).

    The counter (``nvmlDeviceGetTotalEnergyConsumption``, Volta and newer) covers the whole
    board, whatever process uses it, and updates only every ~20–100 ms: a window must last at
    least a second to keep that step small next to the total. :meth:`calibrate` measures the
    idle power once from the same counter; the net figures subtract it. Both are reported.

    Besides the RAPL collector's energy columns it records the SM clock and temperature at both
    ends of the window, the clock event ("throttle") reasons and device memory in use at the
    end. Nothing here raises: an unusable NVML or an unsupported query leaves its figures NaN
    with the reason in :attr:`Figures.missing`, never 0.

    Args:
        device: the NVML index of the GPU.
        uuid: the GPU's NVML UUID (``GPU-…``); names the same device as CUDA does even when
            CUDA_VISIBLE_DEVICES or CUDA_DEVICE_ORDER renumber devices. Wins over ``device``.
        module: a ``pynvml``-like module (tests pass a fake); the real one by default.
        idle_window_s: how long :meth:`calibrate` measures idle power.
        sleep: waits that many seconds (injected for tests).
        clock: monotonic seconds (injected for tests); also times each window.
    """

    name: ClassVar[str] = "nvml_energy"
    # The counter updates every ~20–100 ms; over >= 1 s that step stays within a few percent.
    min_window_s: ClassVar[float] = 1.0

    def __init__(
        self,
        device: int = 0,
        *,
        uuid: str | None = None,
        module: Any = None,
        idle_window_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(idle_window_s, sleep, clock)
        self.device = device
        self.uuid = uuid
        self._module = module
        self._session: nvml.Nvml | None = None
        self._handle: nvml.Handle = None
        self._device_name = ""
        self._mark: _Mark | None = None
        self._mark_reason = "stop() called without start()"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether the real NVML initialises and sees a device; the reason when not."""
        return nvml.probe()

    def check(self) -> tuple[bool, str]:
        """Whether this instance's device can be read (with its injected module)."""
        try:
            self._open()
        except nvml.NvmlError as exc:
            return False, exc.reason
        return True, ""

    @property
    def device_name(self) -> str:
        """NVML's name of the device, once it has been opened; else empty."""
        return self._device_name

    def _open(self) -> tuple[nvml.Nvml, nvml.Handle]:
        """The session and handle, opened on first use and kept until :meth:`close`."""
        if self._session is not None:
            return self._session, self._handle
        session = nvml.Nvml.open(self._module)
        try:
            handle = self._resolve(session)
            name, _ = _read(lambda: session.name(handle))
        except nvml.NvmlError:
            session.close()
            raise
        self._session, self._handle = session, handle
        self._device_name = name or f"device {self.uuid or self.device}"
        return session, handle

    def _resolve(self, session: nvml.Nvml) -> nvml.Handle:
        if self.uuid is None:
            return session.handle(self.device)
        try:
            return session.handle(self.uuid)
        except nvml.NvmlError as exc:
            # With a single device the index cannot name the wrong one; with several it can
            # (NVML and CUDA number devices differently), so the figure is left empty instead.
            count, _ = _read(session.device_count)
            if count == 1:
                return session.handle(0)
            raise nvml.NvmlError(f"cannot find GPU {self.uuid} in NVML: {exc.reason}") from None

    def _take_mark(self, session: nvml.Nvml, handle: nvml.Handle) -> _Mark:
        # The energy counter, then the clock, at both ends: their offsets cancel in the window.
        energy, energy_reason = _read(lambda: session.total_energy_mj(handle))
        t_s = self._clock()
        sm, sm_reason = _read(lambda: session.sm_clock_mhz(handle))
        temp, temp_reason = _read(lambda: session.temperature_c(handle))
        return _Mark(energy, energy_reason, t_s,
                     _Reading(None if sm is None else float(sm), sm_reason),
                     _Reading(None if temp is None else float(temp), temp_reason))

    def calibrate(self) -> None:
        """Measure idle power over ``idle_window_s``; a failure leaves the net figures NaN.

        Run while the GPU is idle (the runner calls it before an adapter's cases). A GPU that
        just worked idles at a higher power state for a while, so this measures the idle power
        of the run's conditions, not of a GPU that slept for minutes.
        """
        self._idle_power_w = None
        try:
            session, handle = self._open()
        except nvml.NvmlError as exc:
            self._idle_reason = f"idle power not measured: {exc.reason}"
            return
        before = self._take_mark(session, handle)
        self._sleep(self.idle_window_s)
        after = self._take_mark(session, handle)
        energy_j, reason = _delta_j(before, after)
        elapsed_s = after.t_s - before.t_s
        if energy_j is None:
            self._idle_reason = f"idle power not measured: {reason}"
        elif elapsed_s <= 0:
            self._idle_reason = "idle power not measured: the clock did not advance"
        else:
            self._idle_power_w = energy_j / elapsed_s

    def start(self) -> None:
        """Read the counter, clock, SM clock and temperature; failures are reported by stop()."""
        self._mark = None
        try:
            session, handle = self._open()
        except nvml.NvmlError as exc:
            self._mark_reason = exc.reason
            return
        self._mark = self._take_mark(session, handle)

    def stop(self, calls: int, items_per_call: int) -> Figures:
        """Figures of the window since :meth:`start`; see ``ENERGY_COLUMNS``, ``DEVICE_COLUMNS``."""
        start, self._mark = self._mark, None
        if start is None:
            return _unavailable(self._mark_reason)
        try:
            session, handle = self._open()
        except nvml.NvmlError as exc:
            return _unavailable(exc.reason)
        end = self._take_mark(session, handle)
        figures = Figures()

        energy_j, reason = _delta_j(start, end)
        if energy_j is None:
            for column in ENERGY_COLUMNS:
                figures.put(column, None, reason)
            figures.values["energy_source"] = f"unavailable: {reason}"
        else:
            figures.put_energy(energy_j, end.t_s - start.t_s, calls * items_per_call,
                               self._idle_power_w, self._idle_reason)
            figures.values["energy_source"] = f"nvml:{self._device_name}"

        figures.put("sm_clock_start_mhz", start.sm_clock.value, start.sm_clock.reason)
        figures.put("sm_clock_end_mhz", end.sm_clock.value, end.sm_clock.reason)
        figures.put("temperature_start_c", start.temperature.value, start.temperature.reason)
        figures.put("temperature_end_c", end.temperature.value, end.temperature.reason)
        # Read right after the final synchronise: the driver's view still covers the busy
        # window, though a short case may already show GpuIdle.
        reasons, why = _read(lambda: session.throttle_reasons(handle))
        figures.put("throttle_reasons", None if reasons is None else "+".join(reasons), why)
        memory, why = _read(lambda: session.memory(handle))
        figures.put("device_memory_used_bytes", None if memory is None else memory.used_bytes, why)
        return figures

    def close(self) -> None:
        """End the NVML session."""
        if self._session is not None:
            self._session.close()
        self._session, self._handle = None, None


def _delta_j(start: _Mark, end: _Mark) -> tuple[float | None, str]:
    """Joules between two marks, or why not."""
    if start.energy_mj is None or end.energy_mj is None:
        return None, start.energy_reason or end.energy_reason
    if end.energy_mj < start.energy_mj:
        # A 64-bit mJ counter does not wrap; going back means the driver reloaded.
        return None, "the NVML energy counter went backwards (driver reloaded?)"
    return (end.energy_mj - start.energy_mj) / 1000.0, ""


def _unavailable(reason: str) -> Figures:
    """Every figure NaN with ``reason``; the source says why."""
    columns = (*ENERGY_COLUMNS, *DEVICE_COLUMNS)
    values: dict[str, Any] = dict.fromkeys(columns, NAN)
    values["energy_source"] = f"unavailable: {reason}"
    return Figures(values=values, missing=dict.fromkeys(columns, reason))
