"""The collector base class: measures a side metric (memory, energy) over a window of calls."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class Figures:
    """What a collector measured: row columns with values, and a reason for each empty one."""

    values: dict[str, Any] = field(default_factory=dict)
    #: column name → why that figure is empty (NaN) in this row.
    missing: dict[str, str] = field(default_factory=dict)


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

    @abstractmethod
    def start(self) -> None:
        """Begin a measurement window."""

    @abstractmethod
    def stop(self, calls: int, items_per_call: int) -> Figures:
        """End the window; ``calls`` calls of ``items_per_call`` items each ran inside it."""

    def close(self) -> None:
        """Release threads or files."""
