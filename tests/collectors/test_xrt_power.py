"""The XRT board-power collector, against a fake ``xbutil`` script put on PATH."""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.collectors.energy import NUMERIC_COLUMNS
from harness.collectors.xrt_power import XrtError, XrtPowerCollector, find_tool, parse_power

# A stand-in for `xbutil examine ... --format JSON --output FILE`. It reads the watts to report
# from a file beside itself (one reading per line, cycled; a line "fail" exits with an error,
# "garbage" writes a report that is not JSON) and logs its arguments.
FAKE_XBUTIL = """#!{python}
import json, pathlib, sys
here = pathlib.Path(__file__).parent
args = sys.argv[1:]
with open(here / "calls.log", "a") as log:
    log.write(json.dumps(args) + "\\n")
readings = (here / "watts.txt").read_text().split()
count = sum(1 for _ in open(here / "calls.log"))
reading = readings[(count - 1) % len(readings)]
if reading == "fail":
    print("ERROR: No devices found", file=sys.stderr)
    sys.exit(1)
out = pathlib.Path(args[args.index("--output") + 1])
if out.exists():
    print("ERROR: The output file already exists", file=sys.stderr)
    sys.exit(1)
if reading == "garbage":
    out.write_text("Electrical\\n  Power : 23 Watts\\n")
    sys.exit(0)
report = {{"schema_version": {{"schema": "JSON", "creation_date": "today"}},
          "devices": [{{"device_id": "0000:b3:00.1", "interface_type": "pcie",
                        "electrical": {{"power_consumption_max_watts": "225",
                                        "power_consumption_watts": reading,
                                        "power_rails": []}}}}]}}
out.write_text(json.dumps(report))
"""


def fake_tool(folder: Path, monkeypatch: pytest.MonkeyPatch, readings: str,
              name: str = "xbutil") -> Path:
    """Write the fake tool into ``folder``, put only that folder on PATH, return the tool."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text(FAKE_XBUTIL.format(python=sys.executable))
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    (folder / "watts.txt").write_text(readings)
    monkeypatch.setenv("PATH", str(folder))
    return tool


def calls(folder: Path) -> list[list[str]]:
    log = folder / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait_for_calls(folder: Path, count: int, timeout_s: float = 20.0) -> None:
    """Wait (in real time) until the fake tool has been called ``count`` times."""
    import time

    deadline = time.monotonic() + timeout_s
    while len(calls(folder)) < count:
        assert time.monotonic() < deadline, f"the tool was not called {count} times"
        time.sleep(0.005)


class FakeTime:
    """A clock that moves only when slept."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_missing_tool_is_unavailable_with_the_reason(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_tool() is None
    ok, reason = XrtPowerCollector.available()
    assert not ok and "xbutil/xrt-smi (XRT) not found on PATH" in reason
    collector = XrtPowerCollector()
    collector.calibrate()
    collector.start()
    figures = collector.stop(calls=10, items_per_call=2)
    assert figures.values["energy_source"].startswith(
        "unavailable: xbutil/xrt-smi (XRT) not found on PATH")
    for column in NUMERIC_COLUMNS:
        assert math.isnan(figures.values[column])
        assert "not found on PATH" in figures.missing[column]
    collector.close()


def test_a_sample_runs_the_documented_command(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    tool = fake_tool(tmp_path / "bin", monkeypatch, "23.5")
    collector = XrtPowerCollector(device="0000:b3:00.1")
    assert collector.tool == str(tool) and collector.tool_name == "xbutil"
    assert collector.sample() == 23.5
    (args,) = calls(tmp_path / "bin")
    assert args[:7] == ["examine", "--device", "0000:b3:00.1", "--report", "electrical",
                        "--format", "JSON"]
    assert args[7] == "--output"
    assert not Path(args[8]).exists()  # each report is removed once read
    assert collector.sample() == 23.5  # a fresh file each time: --output never overwrites
    folder = Path(args[8]).parent
    collector.close()
    assert not folder.exists()


def test_xrt_smi_is_preferred_over_the_old_name(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path / "bin", monkeypatch, "10", name="xbutil")
    fake_tool(tmp_path / "bin", monkeypatch, "10", name="xrt-smi")
    assert XrtPowerCollector().tool_name == "xrt-smi"


def test_energy_is_mean_sampled_power_times_the_window(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path / "bin", monkeypatch, "20 30")  # reading k: 20 if k is odd, else 30
    time = FakeTime()
    collector = XrtPowerCollector(interval_s=0.01, idle_window_s=0.01, clock=time.clock,
                                  sleep=time.sleep)
    # Idle: a reading, a sleep past the idle window, a last reading.
    collector.calibrate()
    assert collector.idle_power_w == 25.0
    collector.start()
    wait_for_calls(tmp_path / "bin", 6)
    time.now += 4.0  # the window, on the collector's clock
    figures = collector.stop(calls=8, items_per_call=4)
    collector.close()
    total = len(calls(tmp_path / "bin"))  # every logged call has finished after stop()
    readings = [20.0 if k % 2 else 30.0 for k in range(3, total + 1)]
    mean = sum(readings) / len(readings)
    values = figures.values
    assert values["mean_power_w"] == pytest.approx(mean)
    assert values["energy_j"] == pytest.approx(mean * 4.0)
    assert values["idle_power_w"] == 25.0
    assert values["energy_net_j"] == pytest.approx((mean - 25.0) * 4.0)
    assert values["energy_per_item_j"] == pytest.approx(mean * 4.0 / 32)
    assert values["energy_net_per_item_j"] == pytest.approx((mean - 25.0) * 4.0 / 32)
    assert values["energy_source"] == (
        f"xbutil sampled board power ({len(readings)} samples; mean power × window)")
    assert figures.missing == {}


def test_a_real_window_with_a_background_thread(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path / "bin", monkeypatch, "25")
    collector = XrtPowerCollector(interval_s=0.01)
    collector.start()
    import time

    time.sleep(0.5)
    figures = collector.stop(calls=1, items_per_call=1)
    collector.close()
    samples = len(calls(tmp_path / "bin"))
    assert samples >= 2
    assert figures.values["mean_power_w"] == 25.0
    assert 25.0 * 0.5 <= figures.values["energy_j"] < 25.0 * 5
    assert f"({samples} samples;" in figures.values["energy_source"]
    # Not calibrated: the net figures are missing, with the reason.
    assert math.isnan(figures.values["energy_net_j"])
    assert "calibrate() was not called" in figures.missing["energy_net_j"]


@pytest.mark.parametrize(("readings", "reason"), [
    ("garbage", "wrote a report that is not JSON"),
    ("fail", "exited with 1: ERROR: No devices found"),
    ("0", "the board reports no power reading"),
    ("N/A", "'N/A', not a number"),
])
def test_unreadable_reports_leave_figures_empty_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, readings: str, reason: str) -> None:
    fake_tool(tmp_path / "bin", monkeypatch, readings)
    time = FakeTime()
    collector = XrtPowerCollector(interval_s=0.01, idle_window_s=0.01, clock=time.clock,
                                  sleep=time.sleep)
    with pytest.raises(XrtError, match=reason):
        collector.sample()
    collector.calibrate()
    assert collector.idle_power_w is None
    start = len(calls(tmp_path / "bin"))
    collector.start()
    wait_for_calls(tmp_path / "bin", start + 2)
    time.now += 1.0
    figures = collector.stop(calls=3, items_per_call=1)
    collector.close()
    assert reason in figures.values["energy_source"]
    assert figures.values["energy_source"].startswith("unavailable: ")
    for column in NUMERIC_COLUMNS:
        assert math.isnan(figures.values[column]) and reason in figures.missing[column]


def test_failed_readings_among_good_ones_are_counted(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path / "bin", monkeypatch, "40 fail")
    time = FakeTime()
    collector = XrtPowerCollector(interval_s=0.0, clock=time.clock, sleep=time.sleep)
    collector.start()
    wait_for_calls(tmp_path / "bin", 4)
    time.now += 2.0
    figures = collector.stop(calls=1, items_per_call=1)
    collector.close()
    assert figures.values["mean_power_w"] == 40.0
    assert figures.values["energy_j"] == 80.0
    assert "failed; mean power × window)" in figures.values["energy_source"]


def _report(*devices: dict[str, Any]) -> dict[str, Any]:
    return {"devices": list(devices)}


def test_parse_power_picks_the_device() -> None:
    report = _report(
        {"device_id": "0000:b3:00.1", "electrical": {"power_consumption_watts": "23.1"}},
        {"device_id": "0000:65:00.1", "electrical": {"power_consumption_watts": "41.0"}})
    assert parse_power(report) == 23.1
    assert parse_power(report, "0000:65:00.1") == 41.0
    with pytest.raises(XrtError, match=r"no device 0000:01:00\.1"):
        parse_power(report, "0000:01:00.1")
    with pytest.raises(XrtError, match="no power_consumption_watts"):
        parse_power(_report({"device_id": "0000:b3:00.1", "electrical": {}}))
    # Another layout still works: the figure is looked for anywhere.
    assert parse_power({"electrical": {"power_consumption_watts": 12}}) == 12.0


def test_stop_without_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_tool(tmp_path / "bin", monkeypatch, "5")
    figures = XrtPowerCollector().stop(calls=1, items_per_call=1)
    assert figures.values["energy_source"] == "unavailable: stop() called without start()"


def test_no_shell_is_involved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A BDF with shell metacharacters reaches the tool as one argument, untouched.
    fake_tool(tmp_path / "bin", monkeypatch, "5")
    odd = "0000:b3:00.1; touch pwned"
    collector = XrtPowerCollector(device=odd)
    with pytest.raises(XrtError, match="no device"):
        collector.sample()
    collector.close()
    assert calls(tmp_path / "bin")[0][2] == odd
    assert not (Path(os.getcwd()) / "pwned").exists()
