"""harness.bench's settings: the flags' and plan keys' names, checked, each error one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.adhoc_settings import SETTINGS, parse


def test_flag_and_plan_key_names_reach_the_timer() -> None:
    settings = parse({"min_time": 0.5, "max_time": 2, "min_samples": 5, "max_warmup_s": 0.1,
                      "repeat": 3, "collect": False, "out": "elsewhere", "timeout": 30,
                      "max_memory": "1G", "items": 8, "expected": None})
    timing = settings.timing
    assert (timing.min_time_s, timing.max_time_s, timing.min_samples) == (0.5, 2.0, 5)
    assert timing.max_warmup_s == 0.1
    assert (settings.repeat, settings.collect, settings.out) == (3, False, Path("elsewhere"))
    assert settings.limits.timeout_s == 30 and settings.limits.max_memory_bytes == 2**30
    assert settings.task == {"items": 8} and settings.expected == (None,)
    assert parse({"min_time_s": 0.25}).timing.min_time_s == 0.25


@pytest.mark.parametrize("given", [2, "2%", 0.02, "0.02", " 2 %"])
def test_precision_takes_a_percentage_or_a_fraction_alike(given: object) -> None:
    assert parse({"precision": given}).timing.precision == pytest.approx(0.02)


def test_a_long_minimum_alone_raises_the_maximum_with_it() -> None:
    timing = parse({"min_time": 30}).timing
    assert timing.min_time_s == timing.max_time_s == 30


@pytest.mark.parametrize(("settings", "error", "message"), [
    ({"min_tme": 1}, TypeError, "harness.bench: unknown setting 'min_tme'; valid: min_time, "),
    ({"min_time": 1, "min_time_s": 2}, TypeError, "'min_time' and 'min_time_s' are one setting"),
    ({"precision": 100}, ValueError, "precision must be a percentage such as 2, '2%' or 0.02"),
    ({"precision": "fast"}, ValueError, "precision must be a percentage"),
    ({"min_time": -1}, ValueError, "min_time must be a finite number of seconds, 0 or more"),
    ({"min_time": 2, "max_time": 1}, ValueError, "max_time (1 s) must be at least min_time"),
    ({"min_samples": 0}, ValueError, "min_samples must be an integer of at least 1, got 0"),
    ({"repeat": True}, ValueError, "repeat must be an integer of at least 1"),
    ({"collect": "no"}, ValueError, "collect must be True or False, got 'no'"),
    ({"timeout": 0}, ValueError, "timeout must be a finite number of seconds, above 0"),
    ({"max_memory": "1K"}, ValueError, "max_memory must be a size such as '8G'"),
    ({"name": "a/b"}, ValueError, "name must be letters, digits"),
    ({"out": ""}, ValueError, "out must be a directory path"),
    ({"warmup_window": 0}, ValueError, "harness.bench: warmup_window, min_samples and "),
])
def test_a_bad_setting_is_one_line_naming_it(settings: dict[str, object], error: type,
                                             message: str) -> None:
    with pytest.raises(error) as info:
        parse(settings)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_every_timing_key_is_a_setting() -> None:
    from dataclasses import fields

    from harness.config import TimingOptions

    assert {f.name for f in fields(TimingOptions)} <= set(SETTINGS)
