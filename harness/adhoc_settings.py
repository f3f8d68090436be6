"""The settings of :func:`harness.bench` and the ``harness_bench`` fixture, checked.

They take the names of ``harness run``'s flags (``min_time`` for ``--min-time``, ``collect`` for
``--no-collect``) and of the plan file's keys (``[timing]``'s ``min_time_s`` ...), and the
task's own (:class:`~harness.workload.Task`'s fields). A bad one is a ``TypeError`` (an unknown
name) or a ``ValueError`` (a bad value) of one line that names it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import ConfigError, TimingOptions
from harness.execution.workers import Limits

#: ``harness run``'s timing flags, by their Python names → :class:`TimingOptions` fields.
TIMING_FLAGS = {"min_time": "min_time_s", "max_time": "max_time_s", "min_samples": "min_samples",
                "precision": "precision"}
#: plan keys of ``[timing]``: every :class:`TimingOptions` field.
TIMING_KEYS = tuple(f.name for f in dataclasses.fields(TimingOptions))
#: how the run goes: ``harness run``'s flags (``collect`` for ``--no-collect``).
RUN_KEYS = ("out", "repeat", "collect", "profile", "recalibrate", "isolate", "timeout",
            "max_memory", "reference", "interleave")
#: what the task is: :class:`~harness.workload.Task`'s fields, its case's name, and
#: ``expected`` (the output the check compares with, exactly).
TASK_KEYS = ("name", "check", "expected", "items", "items_unit", "flops", "bytes", "dtype",
             "engine", "host_only", "footprint_bytes", "meta", "vary")
SETTINGS = (*TIMING_FLAGS, *RUN_KEYS, *TASK_KEYS,
            *(k for k in TIMING_KEYS if k not in TIMING_FLAGS))
#: a case's name: it becomes part of the case id, ``bench/NAME[]``.
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class Settings:
    """The parsed settings of one ``harness.bench`` call."""

    timing: TimingOptions = field(default_factory=TimingOptions)
    out: Path = Path("results")
    repeat: int = 1
    collect: bool = True
    profile: bool = False
    recalibrate: bool = False
    #: None: a worker when the task can be sent to one, else this process (and the row says so).
    isolate: bool | None = None
    limits: Limits = field(default_factory=Limits)
    reference: str | None = None
    interleave: bool = True
    name: str | None = None
    task: dict[str, Any] = field(default_factory=dict)
    #: empty, or the expected output (which may be None).
    expected: tuple[Any, ...] = ()


def parse(settings: Mapping[str, Any], who: str = "harness.bench") -> Settings:
    """The settings, checked; a ``TypeError`` for an unknown name, a ``ValueError`` for a bad
    value, each one line naming it."""
    unknown = [key for key in settings if key not in SETTINGS]
    if unknown:
        raise TypeError(f"{who}: unknown setting {unknown[0]!r}; valid: {', '.join(SETTINGS)}")
    timing: dict[str, Any] = {}
    named: dict[str, str] = {}  # TimingOptions field → the name it was given by
    for key, value in settings.items():
        if key in TIMING_FLAGS or key in TIMING_KEYS:
            target = TIMING_FLAGS.get(key, key)
            if target in timing:
                raise TypeError(f"{who}: {named[target]!r} and {key!r} are one setting; give "
                                "one")
            timing[target], named[target] = value, key
    options = timing_options(who, timing)
    get = settings.get
    timeout = get("timeout", Limits.timeout_s)
    name = get("name")
    if name is not None and not (isinstance(name, str) and NAME.fullmatch(name)):
        raise ValueError(f"{who}: name must be letters, digits, '_', '.' or '-' (up to 100), "
                         f"got {name!r}")
    reference = get("reference")
    if reference is not None and not (isinstance(reference, str) and reference):
        raise ValueError(f"{who}: reference must be an adapter name, got {reference!r}")
    isolate = get("isolate")
    if isolate is not None:
        isolate = flag(who, "isolate", isolate)
    return Settings(
        timing=options, out=directory(who, get("out", "results")),
        repeat=count(who, "repeat", get("repeat", 1), 1), collect=flag(who, "collect",
                                                                       get("collect", True)),
        profile=flag(who, "profile", get("profile", False)),
        recalibrate=flag(who, "recalibrate", get("recalibrate", False)), isolate=isolate,
        limits=Limits(timeout_s=None if timeout is None else seconds(who, "timeout", timeout,
                                                                     positive=True),
                      max_memory_bytes=memory(who, get("max_memory"))),
        reference=reference, interleave=flag(who, "interleave", get("interleave", True)),
        name=name,
        task={k: v for k, v in settings.items() if k in TASK_KEYS and k not in ("name",
                                                                                "expected")},
        expected=(settings["expected"],) if "expected" in settings else ())


def timing_options(who: str, timing: dict[str, Any]) -> TimingOptions:
    """:class:`TimingOptions` from the settings (by field name); ``min_time`` alone above the
    default ``max_time`` raises ``max_time`` to it."""
    for key, flag_name in (("min_time_s", "min_time"), ("max_time_s", "max_time")):
        if key in timing:
            timing[key] = seconds(who, flag_name, timing[key])
    if "min_samples" in timing:
        timing["min_samples"] = count(who, "min_samples", timing["min_samples"], 1)
    if timing.get("precision") is not None:
        timing["precision"] = precision(who, timing["precision"])
    low = timing.get("min_time_s", TimingOptions.min_time_s)
    high = timing.setdefault("max_time_s", max(low, TimingOptions.max_time_s))
    if high < low:
        raise ValueError(f"{who}: max_time ({high:g} s) must be at least min_time ({low:g} s)")
    try:
        return TimingOptions(**timing)
    except ConfigError as exc:
        raise ValueError(f"{who}: {str(exc).removeprefix('timing.')}") from None
    except TypeError as exc:  # a value of a type the dataclass cannot compare
        raise TypeError(f"{who}: {exc}") from None


def seconds(who: str, key: str, value: Any, positive: bool = False) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value < 0 or (positive and value == 0)):
        wanted = "above 0" if positive else "0 or more"
        raise ValueError(f"{who}: {key} must be a finite number of seconds, {wanted}, got "
                         f"{value!r}")
    return float(value)


def count(who: str, key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{who}: {key} must be an integer of at least {minimum}, got {value!r}")
    return value


def flag(who: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{who}: {key} must be True or False, got {value!r}")
    return value


def precision(who: str, value: Any) -> float:
    """``0.02``, ``2`` and ``"2%"`` alike: a fraction in (0, 1), or a percentage from 1 up."""
    try:
        if isinstance(value, str):
            text = value.strip()
            number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        else:
            raise ValueError
    except ValueError:
        number = math.nan
    if math.isfinite(number) and 1 <= number < 100 and not str(value).strip().endswith("%"):
        number /= 100  # 2 means 2%: a fraction of 1 or more would be no precision at all
    if not (math.isfinite(number) and 0 < number < 1):
        raise ValueError(f"{who}: precision must be a percentage such as 2, '2%' or 0.02 "
                         f"(above 0%, below 100%), got {value!r}")
    return number


def memory(who: str, value: Any) -> int | None:
    """A worker's memory cap: bytes, or ``"8G"``, ``"512M"``; None: no cap."""
    if value is None:
        return None
    size: float = math.nan
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", value, re.IGNORECASE)
        if match:
            size = float(match.group(1)) * 1024 ** " KMGT".index(match.group(2).upper() or " ")
    if not 64 * 2**20 <= size < 2**63:
        raise ValueError(f"{who}: max_memory must be a size such as '8G' or '512M' (at least "
                         f"64M), or a byte count, got {value!r}")
    return int(size)


def directory(who: str, value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ValueError(f"{who}: out must be a directory path, got {value!r}")
    return Path(value)


