"""Roofline figures: achieved rates, intensity, both roofs, and honest gaps.

``peak_fraction`` is taken against the hardware's theoretical ceiling and can never pass 1: a
rate above a ceiling is an error of the ceiling. ``attainable_fraction`` is taken against the
measured calibration and may pass 1 (a case beat the calibration kernel).
"""

from __future__ import annotations

import math

import pytest

from harness.roofline import Ceiling, Peaks, over_ceiling, row_figures

PEAKS = Peaks(flops_per_s=100e9, bytes_per_s=10e9, source="test")  # ridge at 10 FLOP/B
CEILING = Ceiling(200e9, "cores × clock × FLOP/cycle", 20e9, "DIMMs")


def test_compute_bound_row() -> None:
    # 1 GFLOP over 10 MB in 20 ms: 50 GFLOP/s at intensity 100 → compute bound.
    values, missing = row_figures(1e9, 1e7, 0.02, PEAKS, ceiling=CEILING)
    assert values["achieved_flops_per_s"] == pytest.approx(50e9)
    assert values["achieved_bytes_per_s"] == pytest.approx(0.5e9)
    assert values["arithmetic_intensity"] == pytest.approx(100)
    assert values["roofline_bound"] == "compute"
    assert values["attainable_fraction"] == pytest.approx(0.5)  # of the measured 100 GFLOP/s
    assert values["peak_fraction"] == pytest.approx(0.25)  # of the 200 GFLOP/s ceiling
    assert values["peak_source"] == "test"
    assert (values["peak_flops_ceiling"], values["peak_bytes_ceiling"]) == (200e9, 20e9)
    assert values["ceiling_source"] == "FLOP/s: cores × clock × FLOP/cycle; bytes/s: DIMMs"
    assert missing == {}


def test_memory_bound_row() -> None:
    # 10 MFLOP over 10 MB in 2 ms: intensity 1 → bound 10 GFLOP/s; achieved 5 GB/s = 50%.
    values, _ = row_figures(1e7, 1e7, 0.002, PEAKS, ceiling=CEILING)
    assert values["roofline_bound"] == "memory"
    assert values["attainable_fraction"] == pytest.approx(0.5)
    assert values["peak_fraction"] == pytest.approx(0.25)


def test_no_flops_is_bandwidth_bound() -> None:
    values, missing = row_figures(0.0, 4e6, 0.001, PEAKS, ceiling=CEILING)  # a lookup: 4 GB/s
    assert values["arithmetic_intensity"] == 0
    assert values["roofline_bound"] == "memory"
    assert values["attainable_fraction"] == pytest.approx(0.4)
    assert values["peak_fraction"] == pytest.approx(0.2)
    assert "peak_fraction" not in missing


def test_without_peaks_or_ceiling_the_fractions_are_empty_with_the_reason() -> None:
    values, missing = row_figures(1e9, 1e7, 0.02, None, "no hardware here")
    assert math.isnan(values["peak_fraction"]) and math.isnan(values["attainable_fraction"])
    assert missing["peak_fraction"] == missing["attainable_fraction"] == "no hardware here"
    assert values["peak_source"] == "unavailable: no hardware here"
    assert values["ceiling_source"] == "unknown: no hardware here"
    assert values["achieved_flops_per_s"] == pytest.approx(50e9)


def test_without_work_counts_nothing_is_made_up() -> None:
    values, missing = row_figures(None, None, 0.02, PEAKS, ceiling=CEILING)
    assert math.isnan(values["peak_fraction"]) and math.isnan(values["attainable_fraction"])
    assert math.isnan(values["arithmetic_intensity"])
    assert {"arithmetic_intensity", "peak_fraction", "attainable_fraction"} <= set(missing)


def test_the_109_percent_row_is_above_the_calibration_but_not_above_the_ceiling() -> None:
    # onnxruntime ffn on a fresh clone: the case ran at 1.09 × the calibration matmul's rate.
    # Against the measured roof that is a true finding (attainable_fraction 1.09); against the
    # hardware's ceiling it is a fraction below 1, never "109% of peak".
    calibration = Peaks(flops_per_s=150e9, bytes_per_s=20e9, source="measured")
    ceiling = Ceiling(448e9, "2 cores × 3.5 GHz × 64", None, "no DMI tables")
    achieved = 1.09 * 150e9
    values, missing = row_figures(achieved * 0.01, 1e6, 0.01, calibration, ceiling=ceiling)
    assert values["attainable_fraction"] == pytest.approx(1.09)
    assert values["peak_fraction"] == pytest.approx(achieved / 448e9)
    assert values["peak_fraction"] <= 1
    assert "peak_fraction" not in missing
    assert missing["peak_bytes_ceiling"] == "no DMI tables"
    assert "bytes/s: unknown (no DMI tables)" in values["ceiling_source"]


def test_a_rate_above_the_ceiling_is_an_error_of_the_ceiling() -> None:
    # A ceiling that misses the turbo clock: the case runs above it. No fraction over 1 is
    # shown; the fraction is empty and the reason says the ceiling is wrong.
    low = Ceiling(100e9, "2 cores × 2.0 GHz (the base clock) × 25", 20e9, "DIMMs")
    values, missing = row_figures(1.2e9, 1e6, 0.01, PEAKS, ceiling=low)  # 120 GFLOP/s
    assert math.isnan(values["peak_fraction"])
    error = over_ceiling(values)
    assert error.startswith("the ceiling is wrong for this hardware: this case reached 1.2e+11 "
                            "FLOP/s, above the theoretical ceiling of 1e+11 FLOP/s")
    assert "base clock" in error  # the ceiling's source is named, to see what went wrong
    assert missing["peak_fraction"] == error


def test_a_calibration_above_the_ceiling_is_an_error_of_the_ceiling() -> None:
    low = Ceiling(50e9, "datasheet: wrong board", 20e9, "datasheet")
    values, missing = row_figures(1e6, 1e6, 0.01, PEAKS, ceiling=low)  # a slow case, 100 MFLOP/s
    assert math.isnan(values["peak_fraction"])
    assert "the calibration reached 1e+11 FLOP/s" in missing["peak_fraction"]


def test_only_the_known_ceiling_counts_and_the_other_says_why() -> None:
    flops_only = Ceiling(200e9, "cores × clock", None, "the DMI tables are readable only by root")
    values, missing = row_figures(1e9, 1e7, 0.02, PEAKS, ceiling=flops_only)
    assert values["peak_fraction"] == pytest.approx(0.25)
    assert math.isnan(values["peak_bytes_ceiling"])
    assert missing["peak_bytes_ceiling"] == "the DMI tables are readable only by root"
    # A lookup has no FLOPs: a FLOP/s ceiling says nothing about it (not "0%").
    lookup, why = row_figures(0.0, 4e6, 0.001, PEAKS, ceiling=flops_only)
    assert math.isnan(lookup["peak_fraction"])
    assert why["peak_fraction"] == ("no theoretical ceiling: the DMI tables are readable only "
                                    "by root")


@pytest.mark.parametrize("speed", [0.01, 0.5, 0.999, 1.0, 1.001, 1.09, 3.0])
@pytest.mark.parametrize("intensity", [0.0, 0.1, 10.0, 1e4])
def test_no_peak_fraction_is_ever_above_one(speed: float, intensity: float) -> None:
    # Rows at every speed relative to the ceiling's roofline, at every intensity: peak_fraction
    # is either at most 1 or empty with the ceiling's error.
    nbytes = 1e6
    flops = intensity * nbytes
    assert CEILING.flops_per_s is not None and CEILING.bytes_per_s is not None
    if intensity:
        roof = min(CEILING.flops_per_s, intensity * CEILING.bytes_per_s)  # FLOP/s
        median = flops / (speed * roof)
    else:
        median = nbytes / (speed * CEILING.bytes_per_s)
    values, missing = row_figures(flops, nbytes, median, PEAKS, ceiling=CEILING)
    fraction = values["peak_fraction"]
    if speed <= 1:
        assert fraction == pytest.approx(speed) and fraction <= 1 + 1e-12
    else:
        assert math.isnan(fraction)
        assert missing["peak_fraction"].startswith("the ceiling is wrong")


def test_ceiling_sources() -> None:
    assert Ceiling.unknown("VM").source == "unknown: VM"
    assert Ceiling(1.0, "a", None, "b").source == "FLOP/s: a; bytes/s: unknown (b)"
