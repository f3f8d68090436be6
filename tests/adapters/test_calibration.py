"""Peak calibration: measured through an adapter, and the best of several on one chip."""

from __future__ import annotations

import pytest

from harness.adapters import calibration
from harness.adapters.calibration import best_of
from harness.adapters.cpu import CpuAdapter
from harness.roofline import Peaks


def test_measured_peaks_through_the_cpu_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(calibration.GEMM_N, "float32", 256)
    monkeypatch.setattr(calibration, "COPY_BYTES", 16 * 2**20)
    adapter = CpuAdapter(threads=1)
    try:
        peaks = adapter.peaks("float32")
    finally:
        adapter.close()
    # One core of any machine this runs on does between 0.1 and 1000 GFLOP/s and 0.1 to
    # 1000 GB/s; outside that, the calibration measured something else.
    assert 1e8 < peaks.flops_per_s < 1e12
    assert 1e8 < peaks.bytes_per_s < 1e12
    assert peaks.source.startswith("measured: matmul 256x256 float32, copy 16 MiB")


def test_best_of_takes_each_roof_from_the_calibration_that_reached_it() -> None:
    a = Peaks(flops_per_s=3e11, bytes_per_s=2e10, source="torch")
    b = Peaks(flops_per_s=2e11, bytes_per_s=2.5e10, source="xla")
    best = best_of(a, b)
    assert (best.flops_per_s, best.bytes_per_s) == (3e11, 2.5e10)
    assert best.source == ("best of 2 calibrations on this hardware: FLOP/s from [torch], "
                           "bytes/s from [xla]")
