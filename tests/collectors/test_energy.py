"""Tests for the RAPL energy collector, against a fake powercap tree and a fake clock."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.collectors.energy import NUMERIC_COLUMNS, RaplCollector, discover

MAX_UJ = 262_143_328_850  # a typical max_energy_range_uj


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


def _zone(root: Path, folder: str, name: str, energy_uj: int, max_uj: int = MAX_UJ) -> None:
    zone = root / folder
    zone.mkdir(parents=True)
    (zone / "name").write_text(name + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")


def _set(root: Path, folder: str, energy_uj: int) -> None:
    (root / folder / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Two packages, plus zones that must be ignored: a subdomain, psys, the MMIO twin."""
    root = tmp_path / "powercap"
    (root / "intel-rapl").mkdir(parents=True)
    (root / "intel-rapl" / "enabled").write_text("1\n")
    _zone(root, "intel-rapl:0", "package-0", 1_000_000)
    _zone(root, "intel-rapl:1", "package-1", 5_000_000)
    _zone(root, "intel-rapl:0:0", "core", 0)
    _zone(root, "intel-rapl:2", "psys", 0)
    _zone(root, "intel-rapl-mmio:0", "package-0", 0)
    return root


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def _collector(root: Path, fake: FakeTime) -> RaplCollector:
    return RaplCollector(root, idle_window_s=1.0, sleep=fake.sleep, clock=fake.clock)


def _window(
    collector: RaplCollector, fake: FakeTime, root: Path, s: float, uj: dict[str, int]
) -> None:
    """Start a window, let ``s`` seconds pass, then set each zone's counter to ``uj[zone]``."""
    collector.start()
    fake.now += s
    for zone, value in uj.items():
        _set(root, zone, value)


def _assert_all_missing(values: dict[str, object], missing: dict[str, str], reason: str) -> None:
    for column in NUMERIC_COLUMNS:
        value = values[column]
        assert isinstance(value, float) and math.isnan(value), column
        assert missing[column] == reason, column
    assert values["energy_source"] == f"unavailable: {reason}"


def test_discovers_packages_only(tree: Path) -> None:
    assert [d.name for d in discover(tree)] == ["package-0", "package-1"]


def test_gross_energy_without_calibration(tree: Path, fake: FakeTime) -> None:
    collector = _collector(tree, fake)
    _window(collector, fake, tree, 2.0, {"intel-rapl:0": 31_000_000, "intel-rapl:1": 15_000_000})
    figures = collector.stop(calls=10, items_per_call=4)
    v = figures.values
    assert v["energy_j"] == pytest.approx(40.0)  # 30 J + 10 J
    assert v["mean_power_w"] == pytest.approx(20.0)
    assert v["energy_per_item_j"] == pytest.approx(1.0)
    assert v["energy_source"] == "rapl:package-0+package-1"
    for column in ("idle_power_w", "idle_power_source", "energy_net_j", "energy_net_per_item_j"):
        assert math.isnan(v[column])
        assert "calibrate() was not called" in figures.missing[column]
    assert set(figures.missing) == {"idle_power_w", "idle_power_source", "energy_net_j",
                                    "energy_net_per_item_j"}


def test_net_energy_subtracts_idle_baseline(tree: Path, fake: FakeTime) -> None:
    collector = _collector(tree, fake)

    # Idle: 5 J + 3 J over the 1 s calibration window → 8 W.
    def idle_counters() -> None:
        _set(tree, "intel-rapl:0", 6_000_000)
        _set(tree, "intel-rapl:1", 8_000_000)

    fake.on_sleep = idle_counters
    collector.calibrate()
    assert collector.idle_power_w == pytest.approx(8.0)
    _window(collector, fake, tree, 2.0, {"intel-rapl:0": 36_000_000, "intel-rapl:1": 18_000_000})
    figures = collector.stop(calls=5, items_per_call=2)
    v = figures.values
    assert v["energy_j"] == pytest.approx(40.0)
    assert v["idle_power_w"] == pytest.approx(8.0)
    assert v["energy_net_j"] == pytest.approx(24.0)  # 40 J - 8 W * 2 s
    assert v["energy_per_item_j"] == pytest.approx(4.0)
    assert v["energy_net_per_item_j"] == pytest.approx(2.4)
    assert figures.missing == {}


def test_counter_wraparound(tree: Path, fake: FakeTime) -> None:
    _set(tree, "intel-rapl:0", MAX_UJ - 1_000_000)
    collector = _collector(tree, fake)
    _window(collector, fake, tree, 1.0, {"intel-rapl:0": 2_000_000, "intel-rapl:1": 5_000_000})
    figures = collector.stop(calls=1, items_per_call=1)
    assert figures.values["energy_j"] == pytest.approx(3.0)  # 1 J before the wrap, 2 J after


def test_zero_items_gives_nan_per_item(tree: Path, fake: FakeTime) -> None:
    collector = _collector(tree, fake)
    _window(collector, fake, tree, 1.0, {"intel-rapl:0": 2_000_000})
    figures = collector.stop(calls=0, items_per_call=8)
    assert figures.values["energy_j"] == pytest.approx(1.0)
    assert math.isnan(figures.values["energy_per_item_j"])
    assert "0 items" in figures.missing["energy_per_item_j"]


def test_missing_root(tmp_path: Path, fake: FakeTime) -> None:
    root = tmp_path / "absent"
    reason = f"no RAPL domains under {root} (kernel without intel_rapl or a virtual machine)"
    collector = _collector(root, fake)
    assert collector.check() == (False, reason)
    collector.calibrate()
    collector.start()
    figures = collector.stop(calls=1, items_per_call=1)
    _assert_all_missing(figures.values, figures.missing, reason)


def test_root_without_package_zones(tmp_path: Path, fake: FakeTime) -> None:
    _zone(tmp_path, "intel-rapl:0:0", "core", 0)
    ok, reason = _collector(tmp_path, fake).check()
    assert not ok and reason.startswith("no RAPL domains")


def test_permission_denied(tree: Path, fake: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not block reads: fake the non-root failure.
    real_read_text = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self)

    monkeypatch.setattr(Path, "read_text", read_text)
    collector = _collector(tree, fake)
    ok, reason = collector.check()
    assert not ok
    assert str(tree / "intel-rapl:0" / "energy_uj") in reason
    assert "root" in reason and "udev" in reason
    collector.calibrate()
    collector.start()
    figures = collector.stop(calls=1, items_per_call=1)
    _assert_all_missing(figures.values, figures.missing, reason)


def test_unreadable_counter_is_a_directory(tree: Path, fake: FakeTime) -> None:
    counter = tree / "intel-rapl:1" / "energy_uj"
    counter.unlink()
    counter.mkdir()
    ok, reason = _collector(tree, fake).check()
    assert not ok and str(counter) in reason


def test_counter_vanishes_during_window(tree: Path, fake: FakeTime) -> None:
    collector = _collector(tree, fake)
    collector.start()
    (tree / "intel-rapl:1" / "energy_uj").unlink()
    figures = collector.stop(calls=1, items_per_call=1)
    reason = figures.missing["energy_j"]
    assert "intel-rapl:1" in reason
    _assert_all_missing(figures.values, figures.missing, reason)


def test_failed_calibration_keeps_gross_figures(tree: Path, fake: FakeTime) -> None:
    collector = _collector(tree, fake)

    def corrupt() -> None:
        (tree / "intel-rapl:0" / "energy_uj").write_text("garbage\n")

    fake.on_sleep = corrupt
    collector.calibrate()
    assert collector.idle_power_w is None
    _set(tree, "intel-rapl:0", 1_000_000)
    _window(collector, fake, tree, 1.0, {"intel-rapl:0": 3_000_000})
    figures = collector.stop(calls=1, items_per_call=1)
    assert figures.values["energy_j"] == pytest.approx(2.0)
    assert math.isnan(figures.values["energy_net_j"])
    assert "idle power not measured" in figures.missing["energy_net_j"]
    assert "garbage" in figures.missing["idle_power_w"]


def test_stop_without_start(tree: Path, fake: FakeTime) -> None:
    figures = _collector(tree, fake).stop(calls=1, items_per_call=1)
    _assert_all_missing(figures.values, figures.missing, "stop() called without start()")


def test_available_checks_default_root() -> None:
    ok, reason = RaplCollector.available()
    assert ok == RaplCollector().check()[0]
    assert ok or reason
