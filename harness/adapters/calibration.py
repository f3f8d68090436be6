"""Peak calibration: an adapter's peak FLOP/s and bytes/s, measured through the adapter itself.

Peaks are measured once per run, adapter and dtype by a short calibration (a square matmul for
FLOP/s, a large copy for bytes/s), timed by the same timer as the cases; the roofline arithmetic
on them is :mod:`harness.roofline`. This module takes any object with the adapter's
``prepare``/``running``/``synchronize`` rather than importing :class:`harness.adapters.Adapter`,
whose default :meth:`~harness.adapters.Adapter.peaks` calls it (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from harness.config import TimingOptions
from harness.roofline import Peaks
from harness.timer import Timer
from harness.workload import Task

#: Short calibration: a peak needs a handful of good samples, not a tight median.
CALIBRATION_TIMING = TimingOptions(min_time_s=0.3, min_samples=3, max_time_s=3.0,
                                   max_warmup_s=1.0, warmup_window=3)
#: Matmul sizes: large enough to reach the compute peak, small enough to take well under a second
#: per call on a 2-core CPU (half precisions without matrix units are much slower there).
GEMM_N = {"float32": 2048, "float64": 1024, "bfloat16": 1024, "float16": 1024}
#: 2 × 128 MiB traffic per copy: far beyond any last-level cache, so DRAM bandwidth is measured.
COPY_BYTES = 128 * 2**20


class Runs(Protocol):
    """The part of an adapter a calibration uses."""

    def prepare(self, task: Task) -> Callable[[], Any]: ...

    def running(self) -> AbstractContextManager[None]: ...

    def synchronize(self) -> None: ...


def best_rate(adapter: Runs, task: Task, work: float) -> float:
    """``work`` per second of the fastest timed call of ``task`` through ``adapter``."""
    step = adapter.prepare(task)
    with adapter.running():
        measurement = Timer(CALIBRATION_TIMING).measure(step, adapter.synchronize)
    # The fastest sample: a peak is the best the hardware showed, not its typical rate.
    return work / min(measurement.samples_s)


def copy_into(src: Any, dst: Any) -> Any:
    """The bandwidth calibration's step: ``dst.copy_(src)``."""
    return dst.copy_(src)


def measure_peaks(adapter: Runs, dtype: str, *, gemm_n: int | None = None,
                  copy_bytes: int | None = None) -> Peaks:
    """Calibrate through ``adapter``: a square matmul in ``dtype`` and a large float32 copy
    (sizes for a CPU unless given: a GPU needs far larger ones to reach its roof)."""
    import torch

    n = gemm_n or GEMM_N.get(dtype, 1024)
    copy_bytes = copy_bytes or COPY_BYTES
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator).to(getattr(torch, dtype)) for _ in range(2))
    flops = 2.0 * n**3
    flops_per_s = best_rate(adapter, Task(fn=torch.matmul, inputs=(a, b), flops=flops), flops)

    elements = copy_bytes // 4
    src, dst = torch.ones(elements), torch.empty(elements)
    moved = 2.0 * copy_bytes  # read the source, write the destination
    bytes_per_s = best_rate(adapter, Task(fn=copy_into, inputs=(src, dst), bytes=moved), moved)
    return Peaks(
        flops_per_s=flops_per_s,
        bytes_per_s=bytes_per_s,
        source=f"measured: matmul {n}x{n} {dtype}, copy {copy_bytes // 2**20} MiB float32; "
               "best sample",
    )


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
