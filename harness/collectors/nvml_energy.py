"""NVIDIA GPU energy from NVML's total-energy counter, net of idle power, with clocks, heat and
the time the GPU was throttled (and why) over the window."""

from __future__ import annotations

import math
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
    "throttle_power_s",
    "throttle_thermal_s",
    "device_memory_used_bytes",
    "energy_uncertainty_j",
    "energy_net_uncertainty_j",
)
NAN = float("nan")
#: Idle calibration: long next to the counter's 20–100 ms updates, and to idle power's jitter.
IDLE_WINDOW_S = 5.0
#: How often a mark reads the counter while it waits for the counter's next step.
POLL_S = 0.5e-3
#: The counter updates every 20–100 ms: a mark that sees no step this long gives up aligning.
STEP_TIMEOUT_S = 0.5
#: The counter is an integer count of mJ: each reading is low by less than one.
QUANTUM_J = 1e-3


def _read(fn: Callable[[], T]) -> tuple[T | None, str]:
    try:
        return fn(), ""
    except nvml.NvmlError as exc:
        return None, exc.reason


@dataclass(frozen=True)
class _Reading:
    """One NVML figure, or why there is none."""

    value: float | None
    reason: str = ""


@dataclass(frozen=True)
class _Mark:
    """One end of a window: the energy counter (mJ) at one of its steps, the clock time of that
    step (``t_s``, within ``± width_s / 2``; ``width_s`` is NaN when no step was seen), and the
    GPU's clock, heat and violation counters."""

    energy_mj: int | None
    energy_reason: str
    t_s: float
    width_s: float
    sm_clock: _Reading
    temperature: _Reading
    violations: dict[str, int] | None
    violation_reason: str


class NvmlEnergyCollector(EnergyCollector):
    """Energy of one NVIDIA GPU over a window, from NVML's total-energy counter (mJ).

    The counter (``nvmlDeviceGetTotalEnergyConsumption``, Volta and newer) covers the whole
    board, whatever process uses it, and moves only in steps, every ~20–100 ms. Read at an
    arbitrary moment, it is up to a step behind; so each mark waits for the counter's next step
    and takes the clock there, bracketed by the reads just before and after it. The window's
    energy is then exact to the counter's 1 mJ, and its time to the brackets, which the
    ``energy_uncertainty_j`` and ``energy_net_uncertainty_j`` columns turn into joules. Those
    bound the error from the counter's steps and resolution; idle power that drifts between
    :meth:`calibrate` and a case is not in them. Idle power is measured once over
    ``idle_window_s`` (5 s) from the same counter, and handed to later workers of the run
    (:meth:`baseline`, :meth:`adopt`); the net figures subtract it.

    Throttling comes from NVML's violation counters, read at both marks: the time each perf
    policy (power, thermal, ...) held clocks down during the window, not the reasons of the
    moment after it, when the GPU already idles. The SM clock and temperature are read at both
    ends, device memory in use at the end.

    On a MIG instance, energy and power exist only for the whole GPU, which other instances
    share: those figures are left empty with the reason; memory is the instance's, and clocks,
    heat and throttling are the GPU's (the instance runs at them). Nothing here raises: an
    unusable NVML or an unsupported query leaves its figures NaN with the reason in
    :attr:`Figures.missing`, never 0.

    Args:
        device: the CUDA index of the GPU; used to find it in NVML only where that cannot pick
            the wrong device (see :func:`harness.nvml.find_device`).
        uuid: the GPU's UUID as CUDA gives it (bare, or ``GPU-``/``MIG-``); names the same
            device in CUDA and NVML whatever CUDA_VISIBLE_DEVICES or CUDA_DEVICE_ORDER say.
        mig: CUDA's device is a MIG instance (its name says so).
        module: a ``pynvml``-like module (tests pass a fake); the real one by default.
        idle_window_s: how long :meth:`calibrate` measures idle power.
        sleep: waits that many seconds (injected for tests).
        clock: monotonic seconds (injected for tests); also times each window.
    """

    name: ClassVar[str] = "nvml_energy"
    # A mark is exact to well under a millisecond; 3 s keeps idle power's jitter and the work's
    # own start and end small next to the window.
    min_window_s: ClassVar[float] = 3.0

    def __init__(
        self,
        device: int = 0,
        *,
        uuid: str | None = None,
        mig: bool = False,
        module: Any = None,
        idle_window_s: float = IDLE_WINDOW_S,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(idle_window_s, sleep, clock)
        self.device = device
        self.uuid = uuid
        self.mig = mig
        self._module = module
        self._session: nvml.Nvml | None = None
        self._device: nvml.Device | None = None
        self._mark: _Mark | None = None
        self._mark_reason = "stop() called without start()"
        self._idle_uncertainty_w = NAN

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
        return self._device.name if self._device is not None else ""

    def _open(self) -> tuple[nvml.Nvml, nvml.Device]:
        """The session and device, opened on first use and kept until :meth:`close`."""
        if self._session is not None and self._device is not None:
            return self._session, self._device
        session = nvml.Nvml.open(self._module)
        try:
            device = nvml.find_device(session, self.uuid, self.device, mig=self.mig)
        except nvml.NvmlError:
            session.close()
            raise
        if not device.name:
            device = nvml.Device(device.handle, device.gpu, device.mig,
                                 f"device {self.uuid or self.device}")
        self._session, self._device = session, device
        return session, device

    def _energy_step(self, session: nvml.Nvml, handle: nvml.Handle
                     ) -> tuple[int | None, str, float, float]:
        """The counter at its next step: (mJ, why not, clock time of the step, bracket width).

        The step happened after the last read that showed the old value began and before the
        first read that shows the new one ended; the time is that bracket's middle. A counter
        that does not move within ``STEP_TIMEOUT_S`` gives its first reading, with a NaN width.
        """
        begun = self._clock()
        first, reason = _read(lambda: session.total_energy_mj(handle))
        ended = self._clock()
        if first is None:
            return None, reason, ended, NAN
        read_at, deadline = ended, ended + STEP_TIMEOUT_S
        while True:
            self._sleep(POLL_S)
            previous = begun
            begun = self._clock()
            value, reason = _read(lambda: session.total_energy_mj(handle))
            ended = self._clock()
            if value is None:
                return None, reason, ended, NAN
            if value != first:
                return value, "", (previous + ended) / 2, ended - previous
            if ended >= deadline:  # no step seen: the first reading, unaligned
                return first, "", read_at, NAN

    def _take_mark(self, session: nvml.Nvml, device: nvml.Device) -> _Mark:
        if device.mig:
            energy, reason, t_s, width = None, nvml.MIG_ENERGY, self._clock(), NAN
        else:
            energy, reason, t_s, width = self._energy_step(session, device.handle)
        sm, sm_reason = _read(lambda: session.sm_clock_mhz(device.gpu))
        temp, temp_reason = _read(lambda: session.temperature_c(device.gpu))
        violations, violation_reason = _read(lambda: session.violation_ns(device.gpu))
        return _Mark(energy, reason, t_s, width,
                     _Reading(None if sm is None else float(sm), sm_reason),
                     _Reading(None if temp is None else float(temp), temp_reason),
                     violations, violation_reason)

    def calibrate(self) -> None:
        """Measure idle power over ``idle_window_s``; a failure leaves the net figures NaN.

        Run while the GPU is idle (the runner calls it before an adapter's cases). A GPU that
        just worked idles at a higher power state for a while, so this measures the idle power
        of the run's conditions, not of a GPU that slept for minutes.
        """
        self._idle_power_w, self._idle_uncertainty_w = None, NAN
        try:
            session, device = self._open()
        except nvml.NvmlError as exc:
            self._idle_reason = f"idle power not measured: {exc.reason}"
            return
        if device.mig:
            self._idle_reason = f"idle power not measured: {nvml.MIG_ENERGY}"
            return
        before = self._take_mark(session, device)
        self._sleep(self.idle_window_s)
        after = self._take_mark(session, device)
        energy_j, reason = _delta_j(before, after)
        elapsed_s = after.t_s - before.t_s
        if energy_j is None:
            self._idle_reason = f"idle power not measured: {reason}"
        elif elapsed_s <= 0:
            self._idle_reason = "idle power not measured: the clock did not advance"
        else:
            self._idle_power_w = energy_j / elapsed_s
            time_error = (before.width_s + after.width_s) / 2
            self._idle_uncertainty_w = (2 * QUANTUM_J + self._idle_power_w * time_error) / elapsed_s

    def baseline(self) -> dict[str, Any] | None:
        found = super().baseline()
        return None if found is None else {**found,
                                           "idle_uncertainty_w": self._idle_uncertainty_w}

    def adopt(self, baseline: dict[str, Any]) -> None:
        super().adopt(baseline)
        self._idle_uncertainty_w = float(baseline.get("idle_uncertainty_w", NAN))

    def start(self) -> None:
        """Mark the window's start on a counter step; failures are reported by stop()."""
        self._mark = None
        try:
            session, device = self._open()
        except nvml.NvmlError as exc:
            self._mark_reason = exc.reason
            return
        self._mark = self._take_mark(session, device)

    def stop(self, calls: int, items_per_call: int) -> Figures:
        """Figures of the window since :meth:`start`; see ``ENERGY_COLUMNS``, ``DEVICE_COLUMNS``."""
        start, self._mark = self._mark, None
        if start is None:
            return _unavailable(self._mark_reason)
        try:
            session, device = self._open()
        except nvml.NvmlError as exc:
            return _unavailable(exc.reason)
        end = self._take_mark(session, device)
        figures = Figures()
        self._energy(figures, start, end, calls * items_per_call, device.name)
        figures.put("sm_clock_start_mhz", start.sm_clock.value, start.sm_clock.reason)
        figures.put("sm_clock_end_mhz", end.sm_clock.value, end.sm_clock.reason)
        figures.put("temperature_start_c", start.temperature.value, start.temperature.reason)
        figures.put("temperature_end_c", end.temperature.value, end.temperature.reason)
        _throttling(figures, start, end)
        memory, why = _read(lambda: session.memory(device.handle))
        figures.put("device_memory_used_bytes", None if memory is None else memory.used_bytes, why)
        return figures

    def _energy(self, figures: Figures, start: _Mark, end: _Mark, items: int,
                device_name: str) -> None:
        """The energy columns and their uncertainties."""
        energy_j, reason = _delta_j(start, end)
        if energy_j is None:
            for column in (*ENERGY_COLUMNS, "energy_uncertainty_j", "energy_net_uncertainty_j"):
                figures.put(column, None, reason)
            figures.values["energy_source"] = f"unavailable: {reason}"
            return
        window_s = end.t_s - start.t_s
        self.put_energy(figures, energy_j, window_s, items)
        figures.values["energy_source"] = f"nvml:{device_name}"
        time_error = (start.width_s + end.width_s) / 2
        if math.isnan(time_error):
            why = (f"the energy counter did not move within {STEP_TIMEOUT_S} s of a mark, so "
                   "the mark is not on a step and its error is unknown")
            figures.put("energy_uncertainty_j", None, why)
            figures.put("energy_net_uncertainty_j", None, why)
            return
        # Each reading is low by under 1 mJ; each mark's time is off by at most half its
        # bracket, during which the GPU drew at most about the window's or idle's power.
        mean_w = energy_j / window_s if window_s > 0 else 0.0
        idle = self._idle_power_w
        gross = 2 * QUANTUM_J + max(mean_w, idle or 0.0) * time_error
        figures.put("energy_uncertainty_j", gross, "")
        if idle is None or math.isnan(self._idle_uncertainty_w):
            figures.put("energy_net_uncertainty_j", None, self._idle_reason)
        else:
            figures.put("energy_net_uncertainty_j",
                        gross + idle * time_error + window_s * self._idle_uncertainty_w, "")

    def close(self) -> None:
        """End the NVML session."""
        if self._session is not None:
            self._session.close()
        self._session, self._device = None, None


def _throttling(figures: Figures, start: _Mark, end: _Mark) -> None:
    """Seconds each perf policy held clocks down between the marks, and which ones did."""
    if start.violations is None or end.violations is None:
        why = start.violation_reason or end.violation_reason
        for column in ("throttle_reasons", "throttle_power_s", "throttle_thermal_s"):
            figures.put(column, None, why)
        return
    held = {name: (end.violations[name] - start.violations[name]) * 1e-9
            for name in start.violations if name in end.violations}
    figures.put("throttle_reasons", "+".join(name for name, s in held.items() if s > 0), "")
    for name in ("power", "thermal"):
        figures.put(f"throttle_{name}_s", held.get(name),
                    f"NVML reports no {name} violation counter for this device")


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
