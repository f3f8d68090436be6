"""Roofline figures: each adapter's peak FLOP/s and bandwidth, and how close each row came.

Peaks are measured once per run, adapter and dtype by a short calibration through the adapter
itself (a square matmul for FLOP/s, a large copy for bytes/s), timed by the same timer as the
cases, or taken from a datasheet where an adapter knows its device. The source is always stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.config import TimingOptions
from harness.timer import Timer
from harness.workload import Task

if TYPE_CHECKING:
    from harness.adapters import Adapter

#: Short calibration: a peak needs a handful of good samples, not a tight median.
CALIBRATION_TIMING = TimingOptions(min_time_s=0.3, min_samples=3, max_time_s=3.0,
                                   max_warmup_s=1.0, warmup_window=3)
#: Matmul sizes: large enough to reach the compute peak, small enough to take well under a second
#: per call on a 2-core CPU (half precisions without matrix units are much slower there).
GEMM_N = {"float32": 2048, "float64": 1024, "bfloat16": 1024, "float16": 1024}
#: 2 × 128 MiB traffic per copy: far beyond any last-level cache, so DRAM bandwidth is measured.
COPY_BYTES = 128 * 2**20


class NoPeaks(Exception):
    """An adapter has no meaningful peak (no hardware behind it); the message says why."""


@dataclass(frozen=True)
class Peaks:
    """An adapter's ceilings for one dtype, and where each figure comes from."""

    flops_per_s: float
    bytes_per_s: float
    source: str


def _best_rate(adapter: Adapter, task: Task, work: float) -> float:
    step = adapter.prepare(task)
    with adapter.running():
        measurement = Timer(CALIBRATION_TIMING).measure(step, adapter.synchronize)
    # The fastest sample: a peak is the best the hardware showed, not its typical rate.
    return work / min(measurement.samples_s)


def _copy(src: Any, dst: Any) -> Any:
    return dst.copy_(src)


def measure_peaks(adapter: Adapter, dtype: str, *, gemm_n: int | None = None,
                  copy_bytes: int | None = None) -> Peaks:
    """Calibrate through ``adapter``: a square matmul in ``dtype`` and a large float32 copy
    (sizes for a CPU unless given: a GPU needs far larger ones to reach its roof)."""
    import torch

    n = gemm_n or GEMM_N.get(dtype, 1024)
    copy_bytes = copy_bytes or COPY_BYTES
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator).to(getattr(torch, dtype)) for _ in range(2))
    flops = 2.0 * n**3
    flops_per_s = _best_rate(adapter, Task(fn=torch.matmul, inputs=(a, b), flops=flops), flops)

    elements = copy_bytes // 4
    src, dst = torch.ones(elements), torch.empty(elements)
    moved = 2.0 * copy_bytes  # read the source, write the destination
    bytes_per_s = _best_rate(adapter, Task(fn=_copy, inputs=(src, dst), bytes=moved), moved)
    return Peaks(
        flops_per_s=flops_per_s,
        bytes_per_s=bytes_per_s,
        source=f"measured: matmul {n}x{n} {dtype}, copy {copy_bytes // 2**20} MiB float32; "
               "best sample",
    )


_HOST_PEAKS: dict[str, Peaks] = {}


def host_peaks(dtype: str) -> Peaks:
    """The host CPU's peaks measured through torch (the ``cpu`` adapter), once per process."""
    if dtype not in _HOST_PEAKS:
        from harness.adapters.cpu import CpuAdapter

        adapter = CpuAdapter()
        try:
            _HOST_PEAKS[dtype] = measure_peaks(adapter, dtype)
        finally:
            adapter.close()
    return _HOST_PEAKS[dtype]


def best_of(*measured: Peaks) -> Peaks:
    """The highest FLOP/s and bytes/s among calibrations of the same hardware.

    The roof belongs to the hardware, not to a runtime: where another runtime on the same chip
    (torch's BLAS against XLA's or ONNX Runtime's) reaches more, that is what this chip can do,
    and a runtime that falls short of it should show as below the roof, not as "100%".
    """
    flops = max(measured, key=lambda p: p.flops_per_s)
    nbytes = max(measured, key=lambda p: p.bytes_per_s)
    return Peaks(flops_per_s=flops.flops_per_s, bytes_per_s=nbytes.bytes_per_s,
                 source=f"best of {len(measured)} calibrations on this hardware: FLOP/s from "
                        f"[{flops.source}], bytes/s from [{nbytes.source}]")


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
