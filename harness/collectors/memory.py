"""Peak resident memory (RSS) of this process, sampled by a psutil thread over a window."""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from harness.collectors import Collector, Figures

COLUMNS = ("peak_rss_bytes", "peak_rss_source")


def _load_psutil() -> tuple[Any | None, str]:
    """Import psutil on demand, so that ``import harness`` never needs it; the reason if absent."""
    try:
        import psutil
    except ImportError as exc:
        return None, f"psutil is not installed ({exc})"
    return psutil, ""


class PeakRssCollector(Collector):
    """Samples this process's RSS every ``interval_s`` seconds and reports the maximum.

    The figure is a sampled peak: a spike shorter than the interval can be missed, so the source
    label names the interval (``psutil-sampled-10ms``). For an exact per-process peak, run the case
    in an isolated worker and read ``ru_maxrss`` there. The sampler thread needs the GIL, so it only
    runs while the work releases it or between bytecodes; the samples taken at start and stop make
    sure even a short window has a value.
    """

    name: ClassVar[str] = "memory"
    # Several samples per window at the default 10 ms interval.
    min_window_s: ClassVar[float] = 0.1

    def __init__(self, interval_s: float = 0.010) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.interval_s = interval_s
        #: RSS in bytes at the last start(); None before it or without psutil.
        self.baseline_rss_bytes: int | None = None
        self._psutil, self._reason = _load_psutil()
        self._process: Any = self._psutil.Process() if self._psutil is not None else None
        self._peak = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether psutil can be imported; the reason when not."""
        psutil, reason = _load_psutil()
        return psutil is not None, reason

    @property
    def source(self) -> str:
        """The label stored beside the figure, e.g. ``psutil-sampled-10ms``."""
        # :g drops float noise (0.007 * 1000 = 7.000000000000001 → "7").
        return f"psutil-sampled-{self.interval_s * 1000:g}ms"

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _sample(self) -> None:
        # Only the sampler thread writes while it runs; stop() joins it before sampling itself.
        self._peak = max(self._peak, self._rss())

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            self._sample()

    def start(self) -> None:
        """Record the baseline RSS and start the sampler thread."""
        self._halt()
        if self._process is None:
            return
        self.baseline_rss_bytes = self._rss()
        self._peak = self.baseline_rss_bytes
        self._done.clear()
        self._thread = threading.Thread(target=self._run, name="harness-rss-sampler", daemon=True)
        self._thread.start()

    def stop(self, calls: int, items_per_call: int) -> Figures:
        """Stop sampling and return ``peak_rss_bytes`` (int) and ``peak_rss_source``."""
        if self._process is None:
            return _missing(self._reason, f"unavailable: {self._reason}")
        if self._thread is None:
            return _missing("stop() called without start()", self.source)
        self._halt()
        self._sample()
        return Figures(values={"peak_rss_bytes": self._peak, "peak_rss_source": self.source})

    def _halt(self) -> None:
        if self._thread is not None:
            self._done.set()
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Stop the sampler thread if a window is still open."""
        self._halt()


def _missing(reason: str, source: str) -> Figures:
    # NaN, never 0: a 0 would read as "used no memory".
    return Figures(
        values={"peak_rss_bytes": float("nan"), "peak_rss_source": source},
        missing={"peak_rss_bytes": reason},
    )
