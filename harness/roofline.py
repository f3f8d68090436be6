"""Roofline arithmetic: an adapter's peaks and how close each row came to its roof.

Pure arithmetic on figures: the peaks themselves are calibrated through an adapter
(:mod:`harness.adapters.calibration`) or taken from a datasheet where an adapter knows its
device, and their source is always stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class NoPeaks(Exception):
    """An adapter has no meaningful peak (no hardware behind it); the message says why."""


@dataclass(frozen=True)
class Peaks:
    """An adapter's ceilings for one dtype, and where each figure comes from."""

    flops_per_s: float
    bytes_per_s: float
    source: str


def row_figures(flops: float | None, nbytes: float | None, median_s: float,
                peaks: Peaks | None, reason: str = "") -> tuple[dict[str, Any], dict[str, str]]:
    """Achieved rates, arithmetic intensity and the fraction of the roofline bound for one row.

    The bound at intensity I is min(peak FLOP/s, I × peak bytes/s); the fraction of it equals
    max(achieved FLOP/s / peak FLOP/s, achieved bytes/s / peak bytes/s), which also covers
    work with no FLOPs (lookups), whose bound is bandwidth alone.
    """
    nan = float("nan")
    values: dict[str, Any] = {}
    missing: dict[str, str] = {}
    ok_time = median_s > 0 and math.isfinite(median_s)
    values["achieved_flops_per_s"] = flops / median_s if flops is not None and ok_time else nan
    values["achieved_bytes_per_s"] = nbytes / median_s if nbytes is not None and ok_time else nan
    if flops is not None and nbytes:
        values["arithmetic_intensity"] = flops / nbytes
    else:
        values["arithmetic_intensity"] = nan
        missing["arithmetic_intensity"] = "the workload defines no FLOP or byte count"
    if peaks is None:
        values.update(peak_flops_per_s=nan, peak_bytes_per_s=nan, peak_fraction=nan,
                      peak_source=f"unavailable: {reason}")
        missing["peak_fraction"] = reason
        return values, missing
    values.update(peak_flops_per_s=peaks.flops_per_s, peak_bytes_per_s=peaks.bytes_per_s,
                  peak_source=peaks.source)
    fractions = []
    if not math.isnan(values["achieved_flops_per_s"]):
        fractions.append(values["achieved_flops_per_s"] / peaks.flops_per_s)
    if not math.isnan(values["achieved_bytes_per_s"]):
        fractions.append(values["achieved_bytes_per_s"] / peaks.bytes_per_s)
    if fractions:
        values["peak_fraction"] = max(fractions)
        values["roofline_bound"] = _bound(flops, nbytes, peaks)
    else:
        values["peak_fraction"] = nan
        missing["peak_fraction"] = "the workload defines no FLOP or byte count"
    return values, missing


def _bound(flops: float | None, nbytes: float | None, peaks: Peaks) -> str:
    """Which roof applies: below the ridge point (peak FLOP/s ÷ peak bytes/s) it is memory."""
    if flops is None or not nbytes:
        return "memory" if flops is None else "compute"
    return "compute" if flops / nbytes >= peaks.flops_per_s / peaks.bytes_per_s else "memory"
