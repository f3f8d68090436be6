"""The NVML energy collector against a fake ``pynvml`` (tests/fakes.py) and a fake clock."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest

from harness import nvml
from harness.collectors import nvml_energy
from harness.collectors.energy import NUMERIC_COLUMNS
from harness.collectors.nvml_energy import DEVICE_COLUMNS, NvmlEnergyCollector
from tests.fakes import ERRORS, FakeNvml, SteppingCounter


class FakeTime:
    """A clock that only moves when slept; ``on_sleep`` runs after each sleep (counter updates)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.on_sleep: Callable[[], None] = lambda: None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.on_sleep()


@pytest.fixture
def fake() -> FakeNvml:
    return FakeNvml()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def _collector(fake: FakeNvml, fake_time: FakeTime, **kwargs: object) -> NvmlEnergyCollector:
    options: dict[str, object] = {"idle_window_s": 1.0, **kwargs}
    return NvmlEnergyCollector(module=fake.module, sleep=fake_time.sleep,
                               clock=fake_time.clock, **options)  # type: ignore[arg-type]


def _window(collector: NvmlEnergyCollector, fake: FakeNvml, fake_time: FakeTime, s: float,
            mj: int) -> None:
    """Start a window, let ``s`` seconds pass and ``mj`` millijoules be counted.

    The counter stands still here, so start() reads it at once and then waits in vain for a
    step (its time is that first reading's); the window ends ``s`` after that reading."""
    begun = fake_time.now
    collector.start()
    fake_time.now = begun + s
    fake.energy_mj[0] += mj


def _nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def test_counter_delta_gives_exact_joules(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    _window(collector, fake, fake_time, 2.0, 500_250)  # 500.25 J over 2 s
    figures = collector.stop(calls=10, items_per_call=5)
    v = figures.values
    assert v["energy_j"] == 500.25
    assert v["mean_power_w"] == 250.125
    assert v["energy_per_item_j"] == 500.25 / 50
    assert v["energy_source"] == "nvml:NVIDIA H200"
    for column in ("idle_power_w", "idle_power_source", "energy_net_j", "energy_net_per_item_j"):
        assert _nan(v[column])
        assert "calibrate() was not called" in figures.missing[column]
    # The counter stood still here, so the marks are off steps and their error unknown.
    assert set(figures.missing) == {"idle_power_w", "idle_power_source", "energy_net_j",
                                    "energy_net_per_item_j", "energy_uncertainty_j",
                                    "energy_net_uncertainty_j"}


def test_idle_baseline_is_subtracted(fake: FakeNvml, fake_time: FakeTime) -> None:
    counter = SteppingCounter(fake_time.clock, 0.05, 75.0)  # idles at 75 W
    fake.energy_at = counter
    collector = _collector(fake, fake_time)
    collector.calibrate()
    assert collector.idle_power_w == pytest.approx(75.0, rel=1e-3)
    collector.start()
    counter.power_w = 300.0
    fake_time.now += 2.0
    counter.power_w = 75.0
    v = collector.stop(calls=4, items_per_call=5).values
    assert v["idle_power_w"] == pytest.approx(75.0, rel=1e-3)
    assert v["energy_net_j"] == pytest.approx(450.0, abs=v["energy_net_uncertainty_j"])
    assert v["energy_net_per_item_j"] == pytest.approx(v["energy_net_j"] / 20)
    # The window ends on the counter's next step after the work: up to 50 ms of idle in it.
    assert 290.0 < v["mean_power_w"] <= 300.0


def test_an_idle_baseline_is_handed_to_a_later_collector(fake: FakeNvml,
                                                         fake_time: FakeTime) -> None:
    # One worker measures idle power; the next one's collector takes it instead of idling
    # another 5 s, and its rows say where the figure came from.
    counter = SteppingCounter(fake_time.clock, 0.05, 75.0)
    fake.energy_at = counter
    first = _collector(fake, fake_time)
    first.calibrate()
    baseline = first.baseline()
    assert baseline is not None and baseline["idle_power_w"] == first.idle_power_w
    later = _collector(fake, fake_time)
    waited = fake_time.now
    later.adopt(json.loads(json.dumps(baseline)))  # as a worker's payload carries it
    assert fake_time.now == waited  # no idle window of its own
    later.start()
    counter.power_w = 300.0
    fake_time.now += 2.0
    counter.power_w = 75.0
    figures = later.stop(calls=4, items_per_call=5)
    v = figures.values
    assert v["idle_power_w"] == first.idle_power_w
    assert v["energy_net_j"] == pytest.approx(450.0, abs=v["energy_net_uncertainty_j"])
    assert v["energy_net_uncertainty_j"] > v["energy_uncertainty_j"]  # idle's error counted
    assert "handed over, not measured again for this case" in v["idle_power_source"]
    first.start()
    fake_time.now += 1.0
    assert first.stop(1, 1).values["idle_power_source"] == (
        "measured over 1 s in this process, before its first case on this device")


def test_a_failed_calibration_hands_nothing_over(fake: FakeNvml, fake_time: FakeTime) -> None:
    fake.fail["nvmlDeviceGetTotalEnergyConsumption"] = fake.module.NVMLError_NotSupported
    collector = _collector(fake, fake_time)
    collector.calibrate()
    assert collector.baseline() is None  # the next worker tries again


def test_same_energy_columns_as_rapl(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    _window(collector, fake, fake_time, 1.0, 1000)
    values = collector.stop(1, 1).values
    assert set(values) == {*NUMERIC_COLUMNS, *DEVICE_COLUMNS, "energy_source",
                           "idle_power_source"}


def test_device_figures_at_both_ends(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    fake.sm_clock_mhz, fake.temperature_c = 1980, 40
    collector.start()
    fake.sm_clock_mhz, fake.temperature_c = 1755, 71
    fake.violation_ns[0] += 250_000_000  # power held clocks down for 0.25 s of the window
    fake.violation_ns[1] += 10_000_000  # thermal, 10 ms
    fake.memory_used = 12_345_678
    fake_time.now += 1.5
    figures = collector.stop(1, 1)
    v = figures.values
    assert (v["sm_clock_start_mhz"], v["sm_clock_end_mhz"]) == (1980.0, 1755.0)
    assert (v["temperature_start_c"], v["temperature_end_c"]) == (40.0, 71.0)
    assert v["throttle_reasons"] == "power+thermal"
    assert v["throttle_power_s"] == pytest.approx(0.25)
    assert v["throttle_thermal_s"] == pytest.approx(0.01)
    assert v["device_memory_used_bytes"] == 12_345_678


def test_no_throttle_reasons_is_an_empty_string(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    fake.violation_ns[0] = 9_000_000_000  # throttled before the window: not this case's
    _window(collector, fake, fake_time, 1.0, 1)
    figures = collector.stop(1, 1)
    assert figures.values["throttle_reasons"] == ""
    assert figures.values["throttle_power_s"] == 0.0
    assert "throttle_reasons" not in figures.missing


def test_throttling_inside_the_window_is_seen_though_the_end_is_idle(
        fake: FakeNvml, fake_time: FakeTime) -> None:
    # A power cap that held clocks down mid-window and let go before the end: the reasons of
    # the moment after the window (all the old code read) would say nothing.
    collector = _collector(fake, fake_time)
    collector.start()
    fake.violation_ns[0] += 400_000_000
    fake_time.now += 3.0
    figures = collector.stop(1, 1)
    assert figures.values["throttle_reasons"] == "power"
    assert figures.values["throttle_power_s"] == pytest.approx(0.4)


def test_unsupported_energy_is_nan_with_reason(fake: FakeNvml, fake_time: FakeTime) -> None:
    fake.fail["nvmlDeviceGetTotalEnergyConsumption"] = ERRORS["NVMLError_NotSupported"]()
    collector = _collector(fake, fake_time)
    collector.calibrate()
    assert collector.idle_power_w is None
    _window(collector, fake, fake_time, 2.0, 0)
    figures = collector.stop(3, 1)
    for column in NUMERIC_COLUMNS:
        assert _nan(figures.values[column]), column
        assert "Volta or newer" in figures.missing[column], column
    assert figures.values["energy_source"].startswith("unavailable: NVML has no total-energy")
    # The other figures do not depend on the energy counter.
    assert figures.values["sm_clock_end_mhz"] == 1980.0
    assert figures.values["temperature_end_c"] == 41.0


def test_unsupported_device_queries_are_nan_with_reason(fake: FakeNvml,
                                                        fake_time: FakeTime) -> None:
    for name in ("nvmlDeviceGetClockInfo", "nvmlDeviceGetTemperature",
                 "nvmlDeviceGetViolationStatus", "nvmlDeviceGetMemoryInfo"):
        fake.fail[name] = ERRORS["NVMLError_NotSupported"]()
    collector = _collector(fake, fake_time)
    _window(collector, fake, fake_time, 1.0, 2000)
    figures = collector.stop(1, 1)
    assert figures.values["energy_j"] == 2.0
    for column in DEVICE_COLUMNS:
        if column.endswith("uncertainty_j"):
            continue  # energy figures: the counter still works
        assert _nan(figures.values[column]), column
        assert "not supported" in figures.missing[column], column


def test_failures_never_become_zero(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    collector.start()
    fake.fail["nvmlDeviceGetTotalEnergyConsumption"] = ERRORS["NVMLError_GpuIsLost"]()
    fake_time.now += 1.0
    figures = collector.stop(1, 1)
    assert _nan(figures.values["energy_j"])
    assert figures.missing["energy_j"] == "nvmlDeviceGetTotalEnergyConsumption failed: GPU is lost"


def test_init_failure_gives_reasons_and_never_raises(fake: FakeNvml, fake_time: FakeTime) -> None:
    fake.fail["nvmlInit"] = ERRORS["NVMLError_LibraryNotFound"]()
    collector = _collector(fake, fake_time)
    ok, reason = collector.check()
    assert not ok and reason.startswith("NVML library not found")
    collector.calibrate()
    assert collector.idle_power_w is None
    collector.start()
    figures = collector.stop(1, 1)
    for column in (*NUMERIC_COLUMNS, *DEVICE_COLUMNS):
        assert _nan(figures.values[column]), column
        assert figures.missing[column] == reason
    assert figures.values["energy_source"] == f"unavailable: {reason}"
    collector.close()


def test_idle_failure_keeps_gross_figures(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    fake.fail["nvmlDeviceGetTotalEnergyConsumption"] = ERRORS["NVMLError_Unknown"]()
    collector.calibrate()
    del fake.fail["nvmlDeviceGetTotalEnergyConsumption"]
    _window(collector, fake, fake_time, 1.0, 100_000)
    figures = collector.stop(1, 1)
    assert figures.values["energy_j"] == 100.0
    assert figures.missing["energy_net_j"] == (
        "idle power not measured: nvmlDeviceGetTotalEnergyConsumption failed: Unknown Error")


def test_counter_going_backwards_is_not_a_figure(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    _window(collector, fake, fake_time, 1.0, -5000)
    figures = collector.stop(1, 1)
    assert _nan(figures.values["energy_j"])
    assert "went backwards" in figures.missing["energy_j"]


def test_stop_without_start(fake: FakeNvml, fake_time: FakeTime) -> None:
    figures = _collector(fake, fake_time).stop(1, 1)
    assert figures.missing["energy_j"] == "stop() called without start()"


def test_device_by_uuid_never_by_cuda_index(fake_time: FakeTime) -> None:
    fake = FakeNvml(names=("NVIDIA A10", "NVIDIA L4"), uuids=("GPU-aaaa", "GPU-bbbb"))
    # torch spells the UUID bare; CUDA's index 0 is NVML's device 1 here (the UUID wins).
    collector = _collector(fake, fake_time, device=0, uuid="bbbb")
    collector.start()
    fake.energy_mj[1] += 3000
    fake_time.now += 1.0
    figures = collector.stop(1, 1)
    assert figures.values["energy_source"] == "nvml:NVIDIA L4"
    assert figures.values["energy_j"] == 3.0
    # Without a UUID, CUDA's index 1 could be NVML's 0 (CUDA_VISIBLE_DEVICES, fastest first):
    # no figure rather than another GPU's.
    ok, reason = _collector(fake, fake_time, device=1).check()
    assert not ok and "the CUDA index may name another one" in reason


def test_unknown_uuid_falls_back_only_with_one_device(fake_time: FakeTime) -> None:
    single = FakeNvml(uuids=("GPU-real",))
    collector = _collector(single, fake_time, uuid="GPU-other")
    assert collector.check() == (True, "")
    assert collector.device_name == "NVIDIA H200"

    several = FakeNvml(names=("NVIDIA A10", "NVIDIA L4"), uuids=("GPU-a", "GPU-b"))
    ok, reason = _collector(several, fake_time, uuid="GPU-other").check()
    assert not ok and reason.startswith("cannot find GPU GPU-other in NVML")


def test_a_mig_instance_reports_no_energy_and_its_own_memory(fake_time: FakeTime) -> None:
    fake = FakeNvml(uuids=("GPU-0000",), migs={"MIG-1111": 0})
    collector = _collector(fake, fake_time, uuid="1111", mig=True)
    collector.calibrate()
    assert collector.idle_power_w is None
    _window(collector, fake, fake_time, 3.0, 900_000)  # the whole board's energy moved
    figures = collector.stop(10, 1)
    v = figures.values
    for column in NUMERIC_COLUMNS:
        assert _nan(v[column]), column
        assert "MIG instance" in figures.missing[column], column
    assert v["energy_source"] == f"unavailable: {nvml.MIG_ENERGY}"
    assert v["device_memory_used_bytes"] == fake.mig_memory_used  # the instance's, not the GPU's
    assert v["sm_clock_end_mhz"] == 1980.0  # the GPU's clock, which the instance runs at


def test_a_mig_instance_is_never_read_as_its_whole_gpu(fake_time: FakeTime) -> None:
    fake = FakeNvml(uuids=("GPU-0000",), migs={"MIG-1111": 0})
    ok, reason = _collector(fake, fake_time, uuid="2222", mig=True).check()
    assert not ok and "MIG instance 2222 not found" in reason


# --- a counter that moves in steps ----------------------------------------------------------


def _stepping(fake: FakeNvml, fake_time: FakeTime, period_s: float, idle_w: float
              ) -> SteppingCounter:
    counter = SteppingCounter(fake_time.clock, period_s, idle_w)
    fake.energy_at = counter
    return counter


@pytest.mark.parametrize("period_s", [0.02, 0.1])
@pytest.mark.parametrize("phase_s", [0.0, 0.013, 0.067])
def test_marks_on_counter_steps_hold_the_truth(fake: FakeNvml, fake_time: FakeTime,
                                               period_s: float, phase_s: float) -> None:
    idle_w, work_w, window_s = 80.0, 650.0, 3.0
    counter = _stepping(fake, fake_time, period_s, idle_w)
    collector = _collector(fake, fake_time, idle_window_s=5.0)
    fake_time.now += phase_s
    collector.calibrate()
    assert collector.idle_power_w == pytest.approx(idle_w, rel=1e-3)
    fake_time.now += phase_s
    collector.start()
    counter.power_w = work_w
    fake_time.now += window_s
    counter.power_w = idle_w  # the work ends with the window; the GPU idles while stop() waits
    figures = collector.stop(calls=100, items_per_call=1)
    v = figures.values
    truth_net = (work_w - idle_w) * window_s
    assert abs(v["energy_net_j"] - truth_net) <= v["energy_net_uncertainty_j"]
    # The marks sit on steps: the error is the polling's, far below one step of the counter.
    assert v["energy_net_uncertainty_j"] < 0.002 * truth_net
    assert v["energy_uncertainty_j"] < v["energy_net_uncertainty_j"]
    assert abs(v["energy_net_j"] - truth_net) < work_w * period_s / 4


def test_a_counter_that_never_steps_leaves_the_uncertainty_empty(fake: FakeNvml,
                                                                 fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    _window(collector, fake, fake_time, 3.0, 600_000)
    figures = collector.stop(1, 1)
    assert figures.values["energy_j"] == 600.0
    assert _nan(figures.values["energy_uncertainty_j"])
    assert "did not move within" in figures.missing["energy_uncertainty_j"]


def test_one_session_until_close(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    collector.calibrate()
    for _ in range(3):
        _window(collector, fake, fake_time, 1.0, 10)
        collector.stop(1, 1)
    assert (fake.inits, fake.shutdowns) == (1, 0)
    collector.close()
    assert fake.shutdowns == 1


def test_windows_are_long_next_to_the_counter_steps() -> None:
    assert NvmlEnergyCollector.min_window_s >= 3.0
    assert NvmlEnergyCollector().idle_window_s >= 5.0
    assert nvml_energy.STEP_TIMEOUT_S >= 0.1  # longer than the slowest update (100 ms)


def test_real_nvml_here_is_unavailable_or_works() -> None:
    ok, reason = NvmlEnergyCollector.available()
    assert ok or reason
