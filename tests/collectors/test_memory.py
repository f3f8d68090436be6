"""Tests for the sampled peak-RSS collector."""

from __future__ import annotations

import math
import sys
import time

import pytest

from harness.collectors.memory import PeakRssCollector

MB = 1_000_000


def _touched(n_bytes: int) -> bytes:
    # Multiplying a non-zero byte writes every page; a zeroed bytearray(n) may stay unmapped
    # (calloc → lazily zeroed mmap pages) and never show up in RSS.
    return b"\x01" * n_bytes


def test_peak_covers_allocation_alive_at_stop() -> None:
    collector = PeakRssCollector()
    collector.start()
    buf = _touched(200 * MB)
    figures = collector.stop(calls=1, items_per_call=1)
    del buf
    assert collector.baseline_rss_bytes is not None
    peak = figures.values["peak_rss_bytes"]
    assert isinstance(peak, int)
    assert peak - collector.baseline_rss_bytes >= 150 * MB
    assert figures.values["peak_rss_source"] == "psutil-sampled-10ms"
    assert figures.missing == {}


def test_sampler_thread_sees_allocation_freed_before_stop() -> None:
    # A large buffer is mmap-backed and returned to the OS on free, so the final sample at stop
    # cannot see it: only the sampler thread can.
    collector = PeakRssCollector()
    collector.start()
    buf = _touched(200 * MB)
    time.sleep(0.1)
    del buf
    figures = collector.stop(calls=1, items_per_call=1)
    assert collector.baseline_rss_bytes is not None
    assert figures.values["peak_rss_bytes"] - collector.baseline_rss_bytes >= 150 * MB


def test_short_window_still_has_a_value() -> None:
    collector = PeakRssCollector(interval_s=10.0)
    collector.start()
    figures = collector.stop(calls=1, items_per_call=1)
    assert figures.values["peak_rss_bytes"] > 0
    assert figures.values["peak_rss_source"] == "psutil-sampled-10000ms"


@pytest.mark.parametrize(
    ("interval_s", "label"), [(0.001, "1ms"), (0.0025, "2.5ms"), (0.007, "7ms")]
)
def test_source_label_follows_interval(interval_s: float, label: str) -> None:
    assert PeakRssCollector(interval_s).source == f"psutil-sampled-{label}"


def test_close_stops_the_thread() -> None:
    collector = PeakRssCollector()
    collector.start()
    thread = collector._thread
    assert thread is not None and thread.is_alive()
    collector.close()
    assert not thread.is_alive()


def test_stop_without_start_is_nan_with_reason() -> None:
    figures = PeakRssCollector().stop(calls=1, items_per_call=1)
    assert math.isnan(figures.values["peak_rss_bytes"])
    assert "start" in figures.missing["peak_rss_bytes"]


def test_without_psutil(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes `import psutil` raise ImportError.
    monkeypatch.setitem(sys.modules, "psutil", None)
    ok, reason = PeakRssCollector.available()
    assert not ok and "psutil" in reason
    collector = PeakRssCollector()
    collector.start()
    figures = collector.stop(calls=1, items_per_call=1)
    assert math.isnan(figures.values["peak_rss_bytes"])
    assert figures.missing["peak_rss_bytes"] == reason
    assert figures.values["peak_rss_source"] == f"unavailable: {reason}"


def test_rejects_non_positive_interval() -> None:
    with pytest.raises(ValueError):
        PeakRssCollector(interval_s=0)
