"""Plan files and timing options: valid plans load, invalid ones name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import ConfigError, TimingOptions, read_plan_file


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
        ('adapter = ["cpu"]', "unknown key 'adapter'"),
        ('preset = "huge"', "'preset' must be one of quick, full"),
        ("suites = [1]", "'suites' must be a list of non-empty strings"),
        ("[timing]\nmin_tme_s = 1", "unknown key 'min_tme_s'"),
        ("[timing]\nmin_samples = 2.5", "timing.min_samples must be a non-negative integer"),
        ("[timing]\nmin_time_s = -1", "timing.min_time_s must be a non-negative finite number"),
        ("[timing]\nmax_time_s = nan", "timing.max_time_s must be a non-negative finite number"),
        ("[timing]\nmin_sample_s = inf", "timing.min_sample_s must be a non-negative finite"),
        ("[timing]\nmax_time_s = inf", "timing.max_time_s must be a non-negative finite number"),
        ("[timing]\nprecision = nan", "timing.precision must be a fraction in"),
        ("[params]\nseq = []", "'params.seq' must be a non-empty list"),
        ("preset = ", "is not valid TOML"),
    ],
)
def test_bad_plans_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_plan_file(write(tmp_path, text))


def test_missing_plan_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read plan"):
        read_plan_file(tmp_path / "absent.toml")


def test_timing_max_must_cover_min() -> None:
    with pytest.raises(ConfigError, match="max_time_s must be at least"):
        TimingOptions(min_time_s=5, max_time_s=1)
