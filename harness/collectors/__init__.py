"""The collector base class: measures a side metric (memory, energy) over a window of calls."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Figures:
    """What a collector measured: row columns with values, and a reason for each empty one."""

    values: dict[str, Any] = field(default_factory=dict)
    #: column name → why that figure is empty (NaN) in this row.
    missing: dict[str, str] = field(default_factory=dict)

    def put(self, column: str, value: Any, reason: str) -> None:
        """Store ``value``, or NaN with ``reason`` when it is None (never 0: a 0 would read as
        a measured zero)."""
        self.values[column] = float("nan") if value is None else value
        if value is None:
            self.missing[column] = reason

    def put_energy(self, energy_j: float, window_s: float, items: int,
                   idle_power_w: float | None, idle_reason: str, idle_source: str = "") -> None:
        """The energy columns of one window: gross, net of idle power, mean power, per item.

        Shared by every energy collector so that all sources compute the figures alike.
        ``idle_reason`` says why ``idle_power_w`` is None, when it is; ``idle_source`` where
        and when it was measured, when it is not.
        """
        no_window = f"the window lasted {window_s} s"
        no_items = f"{items} items ran in the window"
        # The net figure can come out slightly negative for light work: idle power fluctuates.
        idle = idle_power_w
        net_j = None if idle is None or window_s <= 0 else energy_j - idle * window_s
        net_reason = idle_reason if idle_power_w is None else no_window
        self.put("energy_j", energy_j, "")
        self.put("idle_power_w", idle_power_w, idle_reason)
        self.put("idle_power_source", idle_source if idle is not None else None, idle_reason)
        self.put("energy_net_j", net_j, net_reason)
        self.put("mean_power_w", energy_j / window_s if window_s > 0 else None, no_window)
        self.put("energy_per_item_j", energy_j / items if items > 0 else None, no_items)
        self.put("energy_net_per_item_j",
                 net_j / items if net_j is not None and items > 0 else None,
                 net_reason if net_j is None else no_items)


class Collector(ABC):
    """Measures one side metric while a case runs in the collector pass (never during timing).

    The runner calls :meth:`calibrate` once per run (e.g. to measure idle power), then for each
    case :meth:`start`, runs the case for at least :attr:`min_window_s`, and calls :meth:`stop`
    with the number of calls made in the window.
    """

    name: ClassVar[str]
    #: shortest window that gives a meaningful figure (counter update rates, sampling periods).
    min_window_s: ClassVar[float] = 0.0

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this collector can measure here; the reason when not."""
        return True, ""

    def calibrate(self) -> None:
        """Run once per run before any case (idle baselines); a no-op by default."""

    def baseline(self) -> dict[str, Any] | None:
        """What :meth:`calibrate` measured, as JSON data that a collector of the same kind in
        a later worker of the run can :meth:`adopt` instead of calibrating again; None when
        there is nothing to hand over (nothing calibrated, or the calibration failed)."""
        return None

    def adopt(self, baseline: dict[str, Any]) -> None:
        """Take an earlier instance's :meth:`baseline` in place of :meth:`calibrate`."""

    @abstractmethod
    def start(self) -> None:
        """Begin a measurement window."""

    @abstractmethod
    def stop(self, calls: int, items_per_call: int) -> Figures:
        """End the window; ``calls`` calls of ``items_per_call`` items each ran inside it."""

    def close(self) -> None:
        """Release threads or files."""


class EnergyCollector(Collector):
    """An energy collector that measures idle power once (:meth:`calibrate`) and reports energy
    gross and net of it (:meth:`Figures.put_energy`). Holds what every such collector shares:
    the idle window, the injected sleep and clock, and the idle power or why it is missing.
    """

    def __init__(self, idle_window_s: float, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if idle_window_s <= 0:
            raise ValueError(f"idle_window_s must be positive, got {idle_window_s}")
        self.idle_window_s = idle_window_s
        self._sleep = sleep
        self._clock = clock
        self._idle_power_w: float | None = None
        self._idle_reason = "idle power not measured: calibrate() was not called"
        self._idle_source = (f"measured over {idle_window_s:g} s in this process, before its "
                             "first case on this device")

    def baseline(self) -> dict[str, Any] | None:
        if self._idle_power_w is None:
            return None
        return {"idle_power_w": self._idle_power_w, "idle_window_s": self.idle_window_s}

    def adopt(self, baseline: dict[str, Any]) -> None:
        # Idle power drifts with temperature and the GPU's power state: the source says the
        # figure is the run's, not this case's own.
        self._idle_power_w = float(baseline["idle_power_w"])
        self._idle_source = (f"measured over {float(baseline['idle_window_s']):g} s in the "
                             "worker of this adapter's first case in this run, before that "
                             "case; handed over, not measured again for this case")

    def put_energy(self, figures: Figures, energy_j: float, window_s: float,
                   items: int) -> None:
        """:meth:`Figures.put_energy` with this collector's idle power, its source or why
        there is none."""
        figures.put_energy(energy_j, window_s, items, self._idle_power_w, self._idle_reason,
                           self._idle_source)

    @property
    def idle_power_w(self) -> float | None:
        """Idle power from :meth:`calibrate` in watts; None before it or after it failed."""
        return self._idle_power_w
