"""Roofline arithmetic: an adapter's roofs and how close each row came to them.

Two roofs per adapter and dtype, both with their source stored in every row:

- the **theoretical ceiling** (:class:`Ceiling`): what the hardware cannot exceed, from its
  description (a CPU's cores × clock × FLOPs per cycle, a GPU's or TPU's datasheet). A figure that
  cannot be known here is empty with the reason, never a guess. ``peak_fraction`` is measured
  against it, so it is at most 1 by construction: a measured rate above a ceiling proves the
  ceiling wrong, and is reported as such (row message, empty fraction with the reason);
- the **attainable roof** (:class:`Peaks`): what a calibration (a large matmul, a large copy)
  reached through the adapter (:mod:`harness.adapters.calibration`). ``attainable_fraction`` is
  measured against it and may exceed 1: a case can beat a calibration kernel, which is a finding
  about the calibration, not a rate above the hardware's.

Pure arithmetic on figures; the figures themselves come from the adapters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


class NoPeaks(Exception):
    """An adapter has no meaningful peak (no hardware behind it); the message says why."""


@dataclass(frozen=True)
class Peaks:
    """An adapter's measured, attainable roofs for one dtype, and where they come from."""

    flops_per_s: float
    bytes_per_s: float
    source: str


@dataclass(frozen=True)
class Ceiling:
    """The hardware's theoretical ceilings for one dtype: rates no run can pass.

    Each figure is None where it cannot be known here; its note then says why, and otherwise how
    the figure was derived (the formula and the inputs, or the datasheet).
    """

    flops_per_s: float | None
    flops_note: str
    bytes_per_s: float | None
    bytes_note: str

    @classmethod
    def unknown(cls, reason: str) -> Ceiling:
        """No ceiling at all, for one reason."""
        return cls(None, reason, None, reason)

    @property
    def source(self) -> str:
        """Both notes, as stored in the row's ``ceiling_source``."""
        if self.flops_per_s is None and self.bytes_per_s is None \
                and self.flops_note == self.bytes_note:
            return f"unknown: {self.flops_note}"
        flops = self.flops_note if self.flops_per_s is not None else f"unknown ({self.flops_note})"
        nbytes = self.bytes_note if self.bytes_per_s is not None else f"unknown ({self.bytes_note})"
        return f"FLOP/s: {flops}; bytes/s: {nbytes}"


def row_figures(flops: float | None, nbytes: float | None, median_s: float,
                peaks: Peaks | None, reason: str = "",
                ceiling: Ceiling | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Achieved rates, arithmetic intensity, and the fractions of both roofs for one row.

    The roofline bound at intensity I is min(peak FLOP/s, I × peak bytes/s); the fraction of it
    equals max(achieved FLOP/s ÷ peak FLOP/s, achieved bytes/s ÷ peak bytes/s), which also covers
    work with no FLOPs (lookups), whose bound is bandwidth alone. ``attainable_fraction`` takes
    the measured ``peaks``; ``peak_fraction`` the ``ceiling``, over the ceilings known (the row's
    ``ceiling_source`` names one that is not). ``reason``: why there are no ``peaks``; without a
    ``ceiling`` the same reason empties the ceiling figures.
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
    no_work = "the workload defines no FLOP or byte count"
    if peaks is None:
        values.update(peak_flops_per_s=nan, peak_bytes_per_s=nan, attainable_fraction=nan,
                      peak_source=f"unavailable: {reason}")
        missing["attainable_fraction"] = reason
    else:
        values.update(peak_flops_per_s=peaks.flops_per_s, peak_bytes_per_s=peaks.bytes_per_s,
                      peak_source=peaks.source)
        fraction = _fraction(values, peaks.flops_per_s, peaks.bytes_per_s)
        values["attainable_fraction"] = nan if fraction is None else fraction
        if fraction is None:
            missing["attainable_fraction"] = no_work
        else:
            values["roofline_bound"] = _bound(flops, nbytes, peaks)
    ceiling = ceiling or Ceiling.unknown(reason or "no theoretical ceiling was given")
    values.update(peak_flops_ceiling=_or_nan(ceiling.flops_per_s),
                  peak_bytes_ceiling=_or_nan(ceiling.bytes_per_s),
                  ceiling_source=ceiling.source)
    if ceiling.flops_per_s is None:
        missing["peak_flops_ceiling"] = ceiling.flops_note
    if ceiling.bytes_per_s is None:
        missing["peak_bytes_ceiling"] = ceiling.bytes_note
    error = over_ceiling(values)
    fraction = _fraction(values, ceiling.flops_per_s, ceiling.bytes_per_s)
    values["peak_fraction"] = nan if error or fraction is None else fraction
    if error:
        missing["peak_fraction"] = error
    elif fraction is None:
        missing["peak_fraction"] = _why_no_fraction(values, ceiling, no_work)
    return values, missing


def over_ceiling(values: dict[str, Any]) -> str:
    """What in a row's roofline ``values`` passes a theoretical ceiling, as an error of that
    ceiling (one line); empty when nothing does. A measured rate, the row's own or the
    calibration's, is a fact; a ceiling below it is wrong (a missed turbo clock, a datasheet
    row that does not match the part, TF32 where float32 was assumed)."""
    found = []
    for unit, ceiling, rates in (
            ("FLOP/s", "peak_flops_ceiling", ("achieved_flops_per_s", "peak_flops_per_s")),
            ("B/s", "peak_bytes_ceiling", ("achieved_bytes_per_s", "peak_bytes_per_s"))):
        limit = values.get(ceiling)
        if not _finite(limit):
            continue
        for rate in rates:
            if _finite(values.get(rate)) and values[rate] > limit:
                what = "this case" if rate.startswith("achieved") else "the calibration"
                found.append(f"{what} reached {values[rate]:.4g} {unit}, above the theoretical "
                             f"ceiling of {limit:.4g} {unit}")
    if not found:
        return ""
    return (f"the ceiling is wrong for this hardware: {'; '.join(found)} "
            f"({values.get('ceiling_source', '')})")


def _fraction(values: dict[str, Any], flops_roof: float | None,
              bytes_roof: float | None) -> float | None:
    """max(achieved ÷ roof) over the kinds of work the row has (a count above 0) and the roofs
    known; None when there is none. A rate of 0 (a lookup's FLOPs) is no work, not 0%."""
    fractions = [values[rate] / roof
                 for rate, roof in (("achieved_flops_per_s", flops_roof),
                                    ("achieved_bytes_per_s", bytes_roof))
                 if roof and _finite(values[rate]) and values[rate] > 0]
    return max(fractions) if fractions else None


def _why_no_fraction(values: dict[str, Any], ceiling: Ceiling, no_work: str) -> str:
    flops, nbytes = (_finite(values[rate]) and values[rate] > 0
                     for rate in ("achieved_flops_per_s", "achieved_bytes_per_s"))
    if not flops and not nbytes:
        return no_work
    notes = list(dict.fromkeys(([ceiling.flops_note] if flops else [])
                               + ([ceiling.bytes_note] if nbytes else [])))
    # One reason for everything (no hardware, no calibration in this mode) stands as it is.
    if ceiling.flops_note == ceiling.bytes_note:
        return ceiling.flops_note
    return "no theoretical ceiling: " + "; ".join(notes)


def _bound(flops: float | None, nbytes: float | None, peaks: Peaks) -> str:
    """Which roof applies: below the ridge point (peak FLOP/s ÷ peak bytes/s) it is memory."""
    if flops is None or not nbytes:
        return "memory" if flops is None else "compute"
    return "compute" if flops / nbytes >= peaks.flops_per_s / peaks.bytes_per_s else "memory"


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
