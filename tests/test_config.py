"""Plan files and timing options: valid plans load, invalid ones name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.config import ConfigError, TimingOptions, parse_precision, read_plan_file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


def test_a_full_plan_loads(tmp_path: Path) -> None:
    plan = read_plan_file(write(tmp_path, """
preset = "full"
suites = ["transformer"]
workloads = ["attention"]
adapters = ["cpu:threads=1"]
out = "elsewhere"
collect = false
[params]
seq = [128, 256]
causal = true
[timing]
min_time_s = 0.5
min_samples = 5
"""))
    assert plan["preset"] == "full"
    assert plan["adapters"] == ("cpu:threads=1",)
    assert plan["params"] == {"seq": ("128", "256"), "causal": ("true",)}
    assert plan["timing"] == TimingOptions(min_time_s=0.5, min_samples=5)
    assert plan["out"] == Path("elsewhere")
    assert plan["collect"] is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('adaptors = ["cpu"]', "unknown key 'adaptors' (did you mean 'adapters'?); valid: "
                               "adapters (or adapter), collect (or no-collect), out, params "
                               "(or param), preset (or quick, full), profile, repeat, suites "
                               "(or suite), timing, workloads (or workload), min-time, "
                               "max-time, min-samples, precision; dashes and underscores"),
        ('adapter = ["cpu"]\nadapters = ["cpu"]', "'adapter' and 'adapters' give the same"),
        ("no-collect = false", "'no-collect' takes true, like its flag"),
        ("min_time = 1\n[timing]\nmin_time = 2", "'min_time' is set both at the top and in"),
        ("[timing]\nmin_time = 1\nmin_time_s = 2", "'min_time' and 'min_time_s' give the same"),
        ('preset = "huge"', "'preset' must be one of quick, full"),
        ("suites = [1]", "'suites' must be a list of non-empty strings"),
        ("[timing]\nmin_tme_s = 1", "unknown key 'min_tme_s'; valid: min_sample_s, "
                                    "max_overhead_fraction, warmup_window"),
        ("[timing]\nmin_tme_s = 1", "min_time_s (or min-time), min_samples, max_time_s "
                                    "(or max-time), max_loops, precision"),
        ("[timing]\nmin_samples = 2.5", "timing.min_samples must be a non-negative integer"),
        ("[timing]\nmin_time_s = -1", "timing.min_time_s must be a non-negative finite number"),
        ("[timing]\nmax_time_s = nan", "timing.max_time_s must be a non-negative finite number"),
        ("[timing]\nmin_sample_s = inf", "timing.min_sample_s must be a non-negative finite"),
        ("[timing]\nmax_time_s = inf", "timing.max_time_s must be a non-negative finite number"),
        ("[timing]\nprecision = nan", "timing.precision: expected a percentage such as 2, 2% "
                                      "or 0.02 (a number of 1 or more is a percent"),
        ("precision = 100", "above 0% and below 100%, got 100"),
        ('precision = "2 %%"', "got '2 %%'"),
        ("precision = [2]", "got [2]"),
        ("min-time = 1\ntiming = 3", "plan key 'timing' must be a table"),
        ("[params]\nseq = []", "'params.seq' must be a non-empty list"),
        ("preset = ", "is not valid TOML"),
    ],
)
def test_bad_plans_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_plan_file(write(tmp_path, text))


def test_flag_spellings_are_plan_keys(tmp_path: Path) -> None:
    plan = read_plan_file(write(tmp_path, """
suite = "transformer"
workload = ["attention"]
adapter = ["cpu:threads=1"]
no-collect = true
full = true
min-time = 0.5
precision = 2
[param]
seq = 128
[timing]
max_time = 3
min_samples = 7
"""))
    assert plan["suites"] == ("transformer",) and plan["workloads"] == ("attention",)
    assert plan["adapters"] == ("cpu:threads=1",) and plan["params"] == {"seq": ("128",)}
    assert plan["collect"] is False and plan["preset"] == "full"
    assert plan["timing"] == TimingOptions(min_time_s=0.5, max_time_s=3, min_samples=7,
                                           precision=0.02)


@pytest.mark.parametrize("written", ["2", '"2%"', "0.02", '"0.02"', '" 2 "'])
def test_precision_reads_as_on_the_command_line(tmp_path: Path, written: str) -> None:
    for text in (f"precision = {written}", f"[timing]\nprecision = {written}"):
        assert read_plan_file(write(tmp_path, text))["timing"].precision == 0.02


@pytest.mark.parametrize(("value", "fraction"), [
    (2, 0.02), ("2%", 0.02), ("2", 0.02), (0.02, 0.02), ("0.5%", 0.005), (1, 0.01), ("99%", 0.99),
])
def test_parse_precision_rule(value: object, fraction: float) -> None:
    assert parse_precision(value) == pytest.approx(fraction)


@pytest.mark.parametrize("value", [0, "0%", 100, "100%", -2, "-2%", "x", True, None, "inf"])
def test_parse_precision_refuses_and_states_the_rule(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^--precision: expected a percentage such as 2, 2% "
                                          r"or 0.02 \(a number of 1 or more is a percent"):
        parse_precision(value, "--precision")


def test_missing_plan_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read plan"):
        read_plan_file(tmp_path / "absent.toml")


def test_timing_max_must_cover_min() -> None:
    with pytest.raises(ConfigError, match="max_time_s must be at least"):
        TimingOptions(min_time_s=5, max_time_s=1)
