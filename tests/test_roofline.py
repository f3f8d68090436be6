"""Roofline figures: achieved rates, intensity, the bound that applies, and honest gaps."""

from __future__ import annotations

import math

import pytest

from harness.roofline import Peaks, row_figures

PEAKS = Peaks(flops_per_s=100e9, bytes_per_s=10e9, source="test")  # ridge at 10 FLOP/B


def test_compute_bound_row() -> None:
    # 1 GFLOP over 10 MB in 20 ms: 50 GFLOP/s at intensity 100 → compute bound, 50% of peak.
    values, missing = row_figures(1e9, 1e7, 0.02, PEAKS)
    assert values["achieved_flops_per_s"] == pytest.approx(50e9)
    assert values["achieved_bytes_per_s"] == pytest.approx(0.5e9)
    assert values["arithmetic_intensity"] == pytest.approx(100)
    assert values["roofline_bound"] == "compute"
    assert values["peak_fraction"] == pytest.approx(0.5)
    assert values["peak_source"] == "test"
    assert missing == {}


def test_memory_bound_row() -> None:
    # 10 MFLOP over 10 MB in 2 ms: intensity 1 → bound 10 GFLOP/s; achieved 5 GB/s = 50%.
    values, _ = row_figures(1e7, 1e7, 0.002, PEAKS)
    assert values["roofline_bound"] == "memory"
    assert values["peak_fraction"] == pytest.approx(0.5)


def test_no_flops_is_bandwidth_bound() -> None:
    values, missing = row_figures(0.0, 4e6, 0.001, PEAKS)  # a lookup: 4 GB/s of 10
    assert values["arithmetic_intensity"] == 0
    assert values["roofline_bound"] == "memory"
    assert values["peak_fraction"] == pytest.approx(0.4)
    assert "peak_fraction" not in missing


def test_without_peaks_the_fraction_is_empty_with_the_reason() -> None:
    values, missing = row_figures(1e9, 1e7, 0.02, None, "no hardware here")
    assert math.isnan(values["peak_fraction"])
    assert missing["peak_fraction"] == "no hardware here"
    assert values["peak_source"] == "unavailable: no hardware here"
    assert values["achieved_flops_per_s"] == pytest.approx(50e9)


def test_without_work_counts_nothing_is_made_up() -> None:
    values, missing = row_figures(None, None, 0.02, PEAKS)
    assert math.isnan(values["peak_fraction"])
    assert math.isnan(values["arithmetic_intensity"])
    assert "arithmetic_intensity" in missing and "peak_fraction" in missing
