"""The timer: first call, loop calibration, warm-up until steady, then sampling.

The method is described in docs/architecture.md, "Timing".

The clock is injected (integer nanoseconds, like ``time.perf_counter_ns``) so that tests can
drive the whole algorithm with a fake clock and check it exactly.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.config import TimingOptions

Clock = Callable[[], int]
#: Times one call on the device's own clock (e.g. CUDA events) and returns seconds; see
#: :meth:`harness.adapters.Adapter.call_timer`.
CallTimer = Callable[[Callable[[], Any]], float]
NS = 1e-9
#: Most single calls timed on a device clock after sampling (fewer once ``min_time_s`` passes).
SINGLE_CALLS = 100
#: 1-based sample numbers whose last output is kept for checking, besides the final sample's:
#: a few, spread out, so that holding them costs little memory.
CHECKED_SAMPLES = frozenset({1, 10})
#: with adaptive stopping, the CI is recomputed every this many samples.
PRECISION_EVERY = 5
#: fewest samples in a warm-up window, even when its samples are slow.
MIN_WINDOW = 3


@dataclass(frozen=True)
class Measurement:
    """The timing samples of one case on one adapter.

    ``samples_s`` holds seconds per call, one value per sample; each sample timed ``loops``
    consecutive calls followed by one synchronise, so with ``loops == 1`` they are true
    per-call latencies.
    """

    samples_s: list[float]
    loops: int
    first_call_s: float
    target_sample_s: float
    overhead_s: float
    warmup_s: float
    warmup_samples: int
    steady: bool
    sampling_s: float
    #: True when sampling stopped at ``max_time_s`` before reaching ``min_samples``.
    hit_time_cap: bool
    #: Seconds of single calls, each alone on an idle device, timed on the device's own clock
    #: (launch to completion); empty where the adapter has no such clock.
    call_samples_s: list[float] = field(default_factory=list)
    output: Any = field(default=None, repr=False, compare=False)
    #: (sample index, output of that sample's last call) for a few timed samples, so that the
    #: answers given while timed are checked too, not only the first call's.
    sampled_outputs: list[tuple[int, Any]] = field(default_factory=list, repr=False,
                                                   compare=False)


def _median_overhead_ns(clock: Clock, sync: Callable[[], None], repeats: int = 31) -> int:
    """Cost of one clock read plus one synchronise: what every sample pays on top of the work."""
    costs = []
    for _ in range(repeats):
        t0 = clock()
        sync()
        costs.append(clock() - t0)
    return int(statistics.median(costs))


class Timer:
    """Measures a prepared step: ``Timer(options, clock).measure(step, sync)``."""

    def __init__(self, options: TimingOptions | None = None, clock: Clock = time.perf_counter_ns):
        self.options = options or TimingOptions()
        self.clock = clock
        self.last_output: Any = None
        self.sampled_outputs: list[tuple[int, Any]] = []
        #: Copies an output that is kept for checking (see :meth:`measure`); outside the clock.
        self.keep: Callable[[Any], Any] = _same

    def _sample_ns(self, step: Callable[[], Any], sync: Callable[[], None], loops: int) -> int:
        clock = self.clock
        out = None
        t0 = clock()
        for _ in range(loops):
            out = step()  # a local store per call: well under a nanosecond
        sync()  # device work is part of the figure: synchronise inside the clock
        elapsed = clock() - t0
        self.last_output = out
        return elapsed

    def calibrate(self, step: Callable[[], Any], sync: Callable[[], None],
                  target_ns: float) -> int:
        """Smallest loop count (growing geometrically) whose sample lasts at least ``target_ns``."""
        loops = 1
        while loops < self.options.max_loops:
            elapsed = self._sample_ns(step, sync, loops)
            if elapsed >= target_ns:
                break
            # Aim 20% past the target, but grow at least 2x and at most 10x per try, so one
            # noisy short sample cannot make the loop count explode.
            factor = 10.0 if elapsed <= 0 else min(10.0, max(2.0, 1.2 * target_ns / elapsed))
            loops = min(self.options.max_loops, math.ceil(loops * factor))
        return loops

    def warm_up(self, step: Callable[[], Any], sync: Callable[[], None],
                loops: int) -> tuple[bool, int, int]:
        """Run windows until two successive medians agree; returns (steady, samples, elapsed ns).

        Two windows agree when their medians differ by at most ``warmup_tolerance``, or by no
        more than their noise can tell apart (twice the standard error of the difference of two
        window medians, from the windows' own spread). On a machine whose samples scatter by 5%,
        five-sample medians differ by a few percent with no trend at all: waiting for 2% there
        only burns the cap, and a trend too small to see in the windows is not one warm-up can
        settle either.
        """
        opts = self.options
        start = self.clock()
        previous: list[int] | None = None
        windows = samples = 0
        while True:
            window: list[int] = []
            window_start = self.clock()
            while len(window) < opts.warmup_window and not (
                    len(window) >= MIN_WINDOW
                    and self.clock() - window_start >= opts.warmup_window_s / NS):
                window.append(self._sample_ns(step, sync, loops))
            samples += len(window)
            windows += 1
            if previous is not None and _agree(previous, window, opts.warmup_tolerance):
                return True, samples, self.clock() - start
            # The cap applies only once two windows exist: a slow case still gets its comparison.
            if windows >= 2 and self.clock() - start >= opts.max_warmup_s / NS:
                return False, samples, self.clock() - start
            previous = window

    def sample(self, step: Callable[[], Any], sync: Callable[[], None],
               loops: int) -> tuple[list[int], int, bool]:
        """Sample until min time and min count are both reached, or the max time passes."""
        opts = self.options
        min_ns, max_ns = opts.min_time_s / NS, opts.max_time_s / NS
        samples: list[int] = []
        self.sampled_outputs = []
        start = self.clock()
        while True:
            samples.append(self._sample_ns(step, sync, loops))
            if len(samples) in CHECKED_SAMPLES:
                self.sampled_outputs.append((len(samples) - 1, self.keep(self.last_output)))
            elapsed = self.clock() - start
            # With a precision target, the median's CI decides (or the cap); otherwise the
            # minimum time does.
            enough = len(samples) >= opts.min_samples and (
                self._precise(samples) if opts.precision is not None else elapsed >= min_ns)
            if enough or elapsed >= max_ns:
                if len(samples) not in CHECKED_SAMPLES:
                    self.sampled_outputs.append((len(samples) - 1, self.keep(self.last_output)))
                return samples, elapsed, not enough

    def _precise(self, samples: list[int]) -> bool:
        """With ``precision`` set, whether the median's 95% CI is within ±precision of it.

        Checked every PRECISION_EVERY samples, between samples (outside any timed region)."""
        precision = self.options.precision
        if precision is None or len(samples) % PRECISION_EVERY:
            return False
        from harness.stats import median_ci

        low, high = median_ci(samples)
        median = statistics.median(samples)
        return bool(median > 0 and max(median - low, high - median) <= precision * median)

    def first_call(self, step: Callable[[], Any], sync: Callable[[], None]) -> tuple[Any, int]:
        """Run ``step`` once, synchronised: its output and nanoseconds."""
        t0 = self.clock()
        output = step()
        sync()
        return output, self.clock() - t0

    def target_ns(self, sync: Callable[[], None]) -> tuple[float, int]:
        """The shortest sample worth timing, and the clock-plus-synchronise overhead behind it."""
        overhead_ns = _median_overhead_ns(self.clock, sync)
        opts = self.options
        return max(opts.min_sample_s / NS, overhead_ns / opts.max_overhead_fraction), overhead_ns

    def single_calls(self, step: Callable[[], Any], sync: Callable[[], None],
                     time_call: CallTimer) -> list[float]:
        """Seconds of up to SINGLE_CALLS single calls, each on an idle device, on its clock.

        A sample of many calls and one synchronise gives the time per call of a full pipeline,
        where launches overlap work; one call alone shows launch-to-completion latency. Stops
        early once ``min_time_s`` has passed, after at least MIN_WINDOW calls.
        """
        times: list[float] = []
        start = self.clock()
        while len(times) < SINGLE_CALLS and (
                len(times) < MIN_WINDOW or self.clock() - start < self.options.min_time_s / NS):
            sync()  # an idle device: no earlier work queued ahead of the call
            times.append(time_call(step))
        return times

    def measure(self, step: Callable[[], Any], sync: Callable[[], None], *,
                keep: Callable[[Any], Any] | None = None,
                time_call: CallTimer | None = None) -> Measurement:
        """Run the full timing procedure on ``step``; nothing else may run meanwhile.

        ``keep`` copies each output kept for checking, outside the clock: a step that returns
        the same buffer on every call (a CUDA graph's replay) would otherwise show only its last
        answer. ``time_call``, where the adapter has a device clock, also times single calls
        after sampling (:attr:`Measurement.call_samples_s`).
        """
        self.keep = keep or _same
        # 1. One untimed-for-latency call: lazy init, autotuning, compilation. Its time is
        #    kept as its own figure, never mixed into latency.
        output, first_call_ns = self.first_call(step, sync)
        output = self.keep(output)

        # 2. Calibrate: a sample must dwarf the clock and synchronise overhead.
        target_ns, overhead_ns = self.target_ns(sync)
        loops = self.calibrate(step, sync, target_ns)

        # 3. Warm up until steady; 4. sample. A full collection first keeps an old generation's
        #    garbage from being collected inside a timed sample.
        gc.collect()
        steady, warmup_samples, warmup_ns = self.warm_up(step, sync, loops)
        raw, sampling_ns, capped = self.sample(step, sync, loops)
        calls = self.single_calls(step, sync, time_call) if time_call is not None else []
        return Measurement(
            samples_s=[ns * NS / loops for ns in raw],
            loops=loops,
            first_call_s=first_call_ns * NS,
            target_sample_s=target_ns * NS,
            overhead_s=overhead_ns * NS,
            warmup_s=warmup_ns * NS,
            warmup_samples=warmup_samples,
            steady=steady,
            sampling_s=sampling_ns * NS,
            hit_time_cap=capped,
            call_samples_s=calls,
            output=output,
            sampled_outputs=self.sampled_outputs,
        )


def _same(output: Any) -> Any:
    return output


def _agree(first: list[int], second: list[int], tolerance: float) -> bool:
    """Whether two warm-up windows' medians agree: within ``tolerance`` of the first, or within
    twice the standard error of their difference (robust σ from both windows' deviations from
    their own medians; a median of n samples has standard error ≈ 1.2533·σ/√n)."""
    m1, m2 = statistics.median(first), statistics.median(second)
    deviations = [abs(x - m1) for x in first] + [abs(x - m2) for x in second]
    sigma = 1.4826 * statistics.median(deviations)
    se = 1.2533 * sigma * math.sqrt(1 / len(first) + 1 / len(second))
    return abs(m2 - m1) <= max(tolerance * m1, 2 * se)


def measure_pair(timer: Timer, steps: tuple[Callable[[], Any], Callable[[], Any]],
                 sync: Callable[[], None], *, keep: Callable[[Any], Any] | None = None,
                 first: int = 0) -> tuple[Measurement, Measurement]:
    """Time two steps with their samples interleaved (A B B A A B ...), for an A/B comparison.

    Each step gets its own first call, loop calibration and warm-up; then samples alternate,
    the order flipping every round so that neither side always runs first (warm caches,
    frequency steps). Slow drifts of a shared machine then hit both sides alike, and sample i of
    one side and sample i of the other were taken moments apart: a pair. ``keep`` is as in
    :meth:`Timer.measure`. ``first`` (0 or 1): the side whose first call, calibration and
    warm-up come first, and which samples first in round 0; callers draw it per repetition, so
    that what going first or last does is spread over repetitions, not given to one side.
    """
    opts, clock = timer.options, timer.clock
    keep = keep or _same
    order = (first, 1 - first)
    called = {i: timer.first_call(steps[i], sync) for i in order}
    outputs, firsts = zip(*((keep(called[i][0]), called[i][1]) for i in (0, 1)), strict=True)
    target_ns, overhead_ns = timer.target_ns(sync)
    calibrated = {i: timer.calibrate(steps[i], sync, target_ns) for i in order}
    loops = [calibrated[0], calibrated[1]]
    gc.collect()
    warmed = {i: timer.warm_up(steps[i], sync, loops[i]) for i in order}
    warm = [warmed[0], warmed[1]]
    raw: tuple[list[int], list[int]] = ([], [])
    kept: tuple[list[tuple[int, Any]], list[tuple[int, Any]]] = ([], [])
    start = clock()
    rounds = 0
    while True:
        for side in (order if rounds % 2 == 0 else order[::-1]):
            raw[side].append(timer._sample_ns(steps[side], sync, loops[side]))
            if len(raw[side]) in CHECKED_SAMPLES:
                kept[side].append((len(raw[side]) - 1, keep(timer.last_output)))
        rounds += 1
        elapsed = clock() - start
        # Each side gets the minimum time and count it would get alone.
        enough = elapsed >= 2 * opts.min_time_s / NS and rounds >= opts.min_samples
        if enough or elapsed >= 2 * opts.max_time_s / NS:
            break
    return tuple(  # type: ignore[return-value]
        Measurement(samples_s=[ns * NS / loops[i] for ns in raw[i]], loops=loops[i],
                    first_call_s=firsts[i] * NS, target_sample_s=target_ns * NS,
                    overhead_s=overhead_ns * NS, warmup_s=warm[i][2] * NS,
                    warmup_samples=warm[i][1], steady=warm[i][0],
                    sampling_s=sum(raw[i]) * NS, hit_time_cap=not enough,
                    output=outputs[i], sampled_outputs=kept[i])
        for i in (0, 1))
