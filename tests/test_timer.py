"""The timer against a fake clock: calibration, warm-up and stopping rules, exactly."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.config import TimingOptions
from harness.timer import Timer
from tests.fakes import FakeClock, FakeDevice, host_step


def nothing() -> None:
    return None


def make(clock: FakeClock, **options: float) -> Timer:
    return Timer(TimingOptions(**options), clock=clock)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("per_call_s", "loops"),
    [
        (100e-6, 10),  # 1 call = 100 µs → x10 (capped growth) → 1.0 ms: done
        (300e-6, 4),  # 300 µs → x4 (1.2 × 1 ms / 300 µs) → 1.2 ms
        (2e-3, 1),  # already longer than a sample: timed one call at a time
        (1e-9, 1_000_000),  # 1 ns: x10 at each try until 1e6 calls last exactly 1 ms
    ],
)
def test_calibration_reaches_the_minimum_sample_time(per_call_s: float, loops: int) -> None:
    clock = FakeClock()
    timer = make(clock)
    assert timer.calibrate(host_step(clock, lambda n: per_call_s), nothing, 1e6) == loops


def test_calibration_also_outweighs_clock_and_sync_overhead() -> None:
    # Each synchronise costs 2 µs, so a sample must last 2 µs / 0.1% = 2 ms, not 1 ms.
    clock = FakeClock()

    def sync() -> None:
        clock.advance(2e-6)

    timer = make(clock)
    step = host_step(clock, lambda n: 100e-6)
    measurement = timer.measure(step, sync)
    assert measurement.overhead_s == pytest.approx(2e-6)
    assert measurement.target_sample_s == pytest.approx(2e-3)
    # 1 call: 102 µs → x10 → 1002 µs → x ceil(1.2·2000/1002 = 2.395) → 24 calls: 2402 µs
    assert measurement.loops == 24


def test_calibration_stops_at_max_loops() -> None:
    clock = FakeClock()
    timer = make(clock, max_loops=1000)
    assert timer.calibrate(nothing, nothing, 1e6) == 1000


def test_warm_up_waits_for_two_agreeing_windows() -> None:
    clock = FakeClock()
    durations = [200e-6] * 5 + [150e-6] * 5 + [100e-6] * 100
    timer = make(clock, warmup_window=5)
    steady, samples, elapsed_ns = timer.warm_up(host_step(clock, durations.__getitem__), nothing, 1)
    # windows: 200 µs, 150 µs (-25%), 100 µs (-33%), 100 µs (0%): steady after 4 windows
    assert (steady, samples) == (True, 20)
    assert elapsed_ns == 5 * 200_000 + 5 * 150_000 + 10 * 100_000


def test_warm_up_that_never_settles_is_flagged() -> None:
    clock = FakeClock()
    # Every window is 5% slower than the last: never within 2%.
    timer = make(clock, warmup_window=5, max_warmup_s=0.010)
    step = host_step(clock, lambda n: 1e-3 * 1.05 ** (n // 5))
    steady, samples, elapsed_ns = timer.warm_up(step, nothing, 1)
    # window 1: 5 ms; window 2: 5.25 ms → 10.25 ms ≥ 10 ms cap with two windows seen
    assert (steady, samples) == (False, 10)
    assert elapsed_ns == 10_250_000


def test_slow_case_gets_two_windows_even_past_the_cap() -> None:
    clock = FakeClock()
    timer = make(clock, warmup_window=3, max_warmup_s=0.5)
    steady, samples, _ = timer.warm_up(host_step(clock, lambda n: 1.0), nothing, 1)
    assert (steady, samples) == (True, 6)


def test_noisy_but_flat_windows_are_steady() -> None:
    # Samples scatter ±10% around 1 ms with no trend: the medians of two windows differ by 4%,
    # more than the 2% tolerance but well within what five noisy samples can tell apart.
    clock = FakeClock()
    noise = [1.0, 1.1, 0.9, 1.05, 0.95, 1.04, 1.14, 0.94, 1.09, 0.99]
    timer = make(clock, warmup_window=5, max_warmup_s=10.0)
    steady, samples, _ = timer.warm_up(
        host_step(clock, lambda n: 1e-3 * noise[n % 10]), nothing, 1)
    assert (steady, samples) == (True, 10)


def test_a_trend_beyond_the_noise_is_not_steady() -> None:
    # The same ±1% scatter, but each window 10% faster than the last until the fourth.
    clock = FakeClock()
    noise = [1.0, 1.01, 0.99, 1.005, 0.995]
    timer = make(clock, warmup_window=5, max_warmup_s=10.0)
    step = host_step(clock, lambda n: 1e-3 * noise[n % 5] * 0.9 ** min(n // 5, 3))
    steady, samples, _ = timer.warm_up(step, nothing, 1)
    assert (steady, samples) == (True, 25)  # windows 4 and 5 are the first to agree


def test_slow_samples_make_short_windows() -> None:
    # 150 ms samples: a window ends at 3 samples (0.45 s ≥ 0.2 s), not 5.
    clock = FakeClock()
    timer = make(clock, warmup_window=5, warmup_window_s=0.2)
    steady, samples, _ = timer.warm_up(host_step(clock, lambda n: 0.15), nothing, 1)
    assert (steady, samples) == (True, 6)


@pytest.mark.parametrize(
    ("per_call_s", "expected_samples", "capped"),
    [
        (1e-3, 1000, False),  # the 1 s minimum time decides
        (0.1, 20, False),  # the 20-sample minimum decides (2 s)
        (1.0, 10, True),  # the 10 s cap stops it short of 20 samples
    ],
)
def test_sampling_stops_on_min_time_and_count_or_the_cap(
    per_call_s: float, expected_samples: int, capped: bool
) -> None:
    clock = FakeClock()
    timer = make(clock, min_time_s=1.0, min_samples=20, max_time_s=10.0)
    samples, elapsed_ns, hit_cap = timer.sample(host_step(clock, lambda n: per_call_s), nothing, 1)
    assert len(samples) == expected_samples
    assert hit_cap is capped
    assert elapsed_ns == round(expected_samples * per_call_s * 1e9)


def test_measure_keeps_the_first_call_apart() -> None:
    clock = FakeClock()
    # The first call compiles for 50 ms; every later call takes 1 ms.
    step = host_step(clock, lambda n: 0.05 if n == 0 else 1e-3)
    m = make(clock, min_time_s=0.1, min_samples=10).measure(step, nothing)
    assert m.first_call_s == pytest.approx(0.05)
    assert m.loops == 1
    assert m.steady
    assert len(m.samples_s) == 100
    assert m.samples_s == [pytest.approx(1e-3)] * 100
    assert m.output == 1  # the first call's output is kept for the correctness check


def test_device_work_is_timed_through_the_synchronise() -> None:
    # An asynchronous device: the call returns at once, the work finishes at synchronise.
    clock = FakeClock()
    device = FakeDevice(clock, lambda n: 250e-6)
    m = make(clock, min_time_s=0.01, min_samples=5).measure(device.step, device.sync)
    assert m.loops == 5  # 250 µs → x ceil(1.2 ms / 250 µs = 4.8) → 5 calls, 1.25 ms
    # Without the synchronise inside the clock every sample would read 0 s.
    assert m.samples_s == [pytest.approx(250e-6)] * len(m.samples_s)
    assert len(m.samples_s) == 8  # 10 ms minimum at 1.25 ms per sample


def test_adaptive_stopping_ends_once_the_median_is_precise_enough() -> None:
    clock = FakeClock()
    # Samples alternate 1.00 and 1.01 ms: the median's CI is within ±1% at once.
    steady = host_step(clock, lambda n: 1e-3 if n % 2 else 1.01e-3)
    timer = make(clock, min_time_s=1.0, min_samples=20, max_time_s=10.0, precision=0.02)
    samples, _, hit_cap = timer.sample(steady, nothing, 1)
    assert len(samples) == 20 and not hit_cap  # 20 ms of sampling instead of 1 s


def test_adaptive_stopping_keeps_sampling_while_imprecise() -> None:
    clock = FakeClock()
    # A spread far wider than ±0.1%: never precise enough, so sampling goes on past min_time
    # to the cap.
    noisy = host_step(clock, lambda n: (1 + (n * 7919 % 100) / 100) * 1e-3)
    timer = make(clock, min_time_s=0.2, min_samples=20, max_time_s=2.0, precision=0.001)
    _, elapsed_ns, hit_cap = timer.sample(noisy, nothing, 1)
    assert elapsed_ns >= 2e9 and hit_cap


@pytest.mark.parametrize("bad", [0, 1, -0.1, 2.0])
def test_precision_must_be_a_fraction(bad: float) -> None:
    from harness.config import ConfigError

    with pytest.raises(ConfigError, match=r"timing\.precision must be a fraction"):
        TimingOptions(precision=bad)


# --- outputs kept for checking, and single calls on a device clock ----------------------------


def _graph_replay(clock: FakeClock) -> Callable[[], list[int]]:
    """A CUDA graph's replay: 1 ms, and the one static buffer, overwritten by every call."""
    buffer = [0]

    def replay() -> list[int]:
        clock.advance(1e-3)
        buffer[0] += 1
        return buffer

    return replay


def test_kept_outputs_are_copied_outside_the_clock() -> None:
    # Without a copy, the outputs kept for samples 1, 10 and the last show the last answer.
    clock = FakeClock()

    def keep(output: list[int]) -> list[int]:
        clock.advance(1.0)  # a slow copy: it must land in no timed sample
        return list(output)

    measurement = make(clock, min_samples=12).measure(_graph_replay(clock), nothing, keep=keep)
    kept = [out[0] for _, out in measurement.sampled_outputs]
    assert len(kept) == 3 and len(set(kept)) == 3, kept  # three different answers
    assert measurement.output == [1]  # the first call's answer, not the buffer's last
    assert measurement.samples_s == pytest.approx([1e-3] * len(measurement.samples_s))


def test_without_keep_the_buffer_shows_only_the_last_answer() -> None:
    clock = FakeClock()
    measurement = make(clock, min_samples=12).measure(_graph_replay(clock), nothing)
    assert len({id(out) for _, out in measurement.sampled_outputs}) == 1


def test_single_calls_are_timed_on_the_device_clock() -> None:
    from tests.fakes import FakeCuda, FakeEvent

    # 20 µs per call: pipelined samples run hundreds of calls per synchronise.
    cuda = FakeCuda(duration=lambda n: 20e-6)
    device = cuda.device

    def time_call(step: object) -> float:
        assert device.queued == 0, "a single call must start on an idle device"
        start, end = FakeEvent(cuda, enable_timing=True), FakeEvent(cuda, enable_timing=True)
        start.record()
        device.step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    timer = make(cuda.clock, min_time_s=0.01, max_time_s=0.1)
    measurement = timer.measure(device.step, device.sync, time_call=time_call)
    assert measurement.loops > 1
    assert measurement.call_samples_s == pytest.approx([20e-6] * len(measurement.call_samples_s))
    assert 3 <= len(measurement.call_samples_s) <= 100


def test_no_device_clock_no_single_calls() -> None:
    clock = FakeClock()
    measurement = make(clock).measure(host_step(clock, lambda n: 1e-4), nothing)
    assert measurement.call_samples_s == []


def test_single_calls_stop_after_the_minimum_time() -> None:
    clock = FakeClock()
    timer = make(clock, min_time_s=0.05)

    def time_call(step: object) -> float:
        clock.advance(0.02)
        return 0.02

    assert len(timer.single_calls(nothing, nothing, time_call)) == 3  # the minimum count
    timer = make(clock, min_time_s=10.0)
    assert len(timer.single_calls(nothing, nothing, lambda step: 1e-6)) == 100  # the most
