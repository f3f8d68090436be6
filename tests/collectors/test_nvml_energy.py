"""The NVML energy collector against a fake ``pynvml`` and a fake clock."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from harness.collectors.energy import NUMERIC_COLUMNS
from harness.collectors.nvml_energy import DEVICE_COLUMNS, NvmlEnergyCollector
from tests.test_nvml import ERRORS, FakeNvml


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
    return NvmlEnergyCollector(module=fake.module, idle_window_s=1.0, sleep=fake_time.sleep,
                               clock=fake_time.clock, **kwargs)  # type: ignore[arg-type]


def _window(collector: NvmlEnergyCollector, fake: FakeNvml, fake_time: FakeTime, s: float,
            mj: int) -> None:
    """Start a window, let ``s`` seconds pass and ``mj`` millijoules be counted."""
    collector.start()
    fake_time.now += s
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
    for column in ("idle_power_w", "energy_net_j", "energy_net_per_item_j"):
        assert _nan(v[column])
        assert "calibrate() was not called" in figures.missing[column]
    assert set(figures.missing) == {"idle_power_w", "energy_net_j", "energy_net_per_item_j"}


def test_idle_baseline_is_subtracted(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)

    def idle() -> None:
        fake.energy_mj[0] += 75_000  # 75 J in the 1 s calibration window → 75 W

    fake_time.on_sleep = idle
    collector.calibrate()
    assert collector.idle_power_w == 75.0
    _window(collector, fake, fake_time, 2.0, 600_000)
    v = collector.stop(calls=4, items_per_call=5).values
    assert v["energy_j"] == 600.0
    assert v["idle_power_w"] == 75.0
    assert v["energy_net_j"] == 450.0  # 600 J - 75 W × 2 s
    assert v["energy_net_per_item_j"] == 450.0 / 20
    assert v["mean_power_w"] == 300.0


def test_same_energy_columns_as_rapl(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    _window(collector, fake, fake_time, 1.0, 1000)
    values = collector.stop(1, 1).values
    assert set(values) == {*NUMERIC_COLUMNS, *DEVICE_COLUMNS, "energy_source"}


def test_device_figures_at_both_ends(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    fake.sm_clock_mhz, fake.temperature_c = 1980, 40
    collector.start()
    fake.sm_clock_mhz, fake.temperature_c = 1755, 71
    fake.reasons = 0x4 | 0x20
    fake.memory_used = 12_345_678
    fake_time.now += 1.5
    figures = collector.stop(1, 1)
    v = figures.values
    assert (v["sm_clock_start_mhz"], v["sm_clock_end_mhz"]) == (1980.0, 1755.0)
    assert (v["temperature_start_c"], v["temperature_end_c"]) == (40.0, 71.0)
    assert v["throttle_reasons"] == "SwPowerCap+SwThermalSlowdown"
    assert v["device_memory_used_bytes"] == 12_345_678


def test_no_throttle_reasons_is_an_empty_string(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    _window(collector, fake, fake_time, 1.0, 1)
    figures = collector.stop(1, 1)
    assert figures.values["throttle_reasons"] == ""
    assert "throttle_reasons" not in figures.missing


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
                 "nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetMemoryInfo"):
        fake.fail[name] = ERRORS["NVMLError_NotSupported"]()
    collector = _collector(fake, fake_time)
    _window(collector, fake, fake_time, 1.0, 2000)
    figures = collector.stop(1, 1)
    assert figures.values["energy_j"] == 2.0
    for column in DEVICE_COLUMNS:
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


def test_device_by_index_and_uuid(fake_time: FakeTime) -> None:
    fake = FakeNvml(names=("NVIDIA A10", "NVIDIA L4"), uuids=("GPU-aaaa", "GPU-bbbb"))
    by_index = _collector(fake, fake_time, device=1)
    by_uuid = _collector(fake, fake_time, device=0, uuid="GPU-bbbb")  # the UUID wins
    for collector in (by_index, by_uuid):
        collector.start()
        fake.energy_mj[1] += 3000
        fake_time.now += 1.0
        figures = collector.stop(1, 1)
        assert figures.values["energy_source"] == "nvml:NVIDIA L4"
        assert figures.values["energy_j"] == 3.0


def test_unknown_uuid_falls_back_only_with_one_device(fake_time: FakeTime) -> None:
    single = FakeNvml(uuids=("GPU-real",))
    collector = _collector(single, fake_time, uuid="GPU-other")
    assert collector.check() == (True, "")
    assert collector.device_name == "NVIDIA H200"

    several = FakeNvml(names=("NVIDIA A10", "NVIDIA L4"), uuids=("GPU-a", "GPU-b"))
    ok, reason = _collector(several, fake_time, uuid="GPU-other").check()
    assert not ok and reason.startswith("cannot find GPU GPU-other in NVML")


def test_one_session_until_close(fake: FakeNvml, fake_time: FakeTime) -> None:
    collector = _collector(fake, fake_time)
    collector.calibrate()
    for _ in range(3):
        _window(collector, fake, fake_time, 1.0, 10)
        collector.stop(1, 1)
    assert (fake.inits, fake.shutdowns) == (1, 0)
    collector.close()
    assert fake.shutdowns == 1


def test_window_is_at_least_a_second() -> None:
    assert NvmlEnergyCollector.min_window_s >= 1.0


def test_real_nvml_here_is_unavailable_or_works() -> None:
    ok, reason = NvmlEnergyCollector.available()
    assert ok or reason
