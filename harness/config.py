"""Run configuration: frozen dataclasses, built from the command line and TOML plan files."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from harness.scenarios.options import LoadOptions

Preset = Literal["quick", "full"]
PRESETS: tuple[Preset, ...] = ("quick", "full")


class ConfigError(ValueError):
    """A plan file or a command-line value is not valid; the message names the key."""


@dataclass(frozen=True)
class TimingOptions:
    """How the timer calibrates, warms up and samples (docs/architecture.md, "Timing").

    Defaults aim at a trustworthy median in a few seconds per case on a CPU.
    """

    #: a sample lasts at least this long, so that the clock's resolution is negligible.
    min_sample_s: float = 1e-3
    #: clock-read plus synchronise overhead stays below this fraction of a sample.
    max_overhead_fraction: float = 1e-3
    #: samples per warm-up window; two successive windows must agree to call the case steady.
    warmup_window: int = 5
    #: ... but a window of slow samples ends once it has lasted this long (and has 3 samples):
    #: a 150 ms call needs no 0.75 s windows to show it has settled.
    warmup_window_s: float = 0.2
    #: relative difference of successive window medians that counts as steady (or less than
    #: the noise lets two windows tell apart: see Timer.warm_up).
    warmup_tolerance: float = 0.02
    #: stop warming up after this long (having seen two windows) and flag the case as unsteady.
    max_warmup_s: float = 2.0
    #: sampling stops once both minimums are reached ...
    min_time_s: float = 1.0
    min_samples: int = 20
    #: ... or when this much sampling time has passed, whichever comes first.
    max_time_s: float = 10.0
    #: upper bound on calls per sample, so a no-op cannot calibrate forever.
    max_loops: int = 10_000_000
    #: adaptive stopping: end sampling once the median's 95% CI lies within ±precision of it
    #: (a fraction) and min_samples are taken, whether min_time_s has passed or not, and go on
    #: until max_time_s while it is not; None: off (min_time_s and min_samples decide).
    precision: float | None = None

    def __post_init__(self) -> None:
        if self.precision is not None and (
                isinstance(self.precision, bool) or not isinstance(self.precision, int | float)
                or not 0 < self.precision < 1):
            raise ConfigError(f"timing.precision must be a fraction in (0, 1) (0.02 for ±2%; "
                              f"parse_precision reads 2 and '2%' too), got {self.precision!r}")
        for f in dataclasses.fields(self):
            if f.name == "precision":
                continue
            value = getattr(self, f.name)
            wanted = int if isinstance(f.default, int) else int | float
            if (isinstance(value, bool) or not isinstance(value, wanted)
                    or not (math.isfinite(value) and value >= 0)):  # NaN compares false
                kind = "integer" if wanted is int else "finite number"
                raise ConfigError(f"timing.{f.name} must be a non-negative {kind}, got {value!r}")
        if self.warmup_window < 1 or self.min_samples < 1 or self.max_loops < 1:
            raise ConfigError("timing.warmup_window, min_samples and max_loops must be at least 1")
        if self.max_time_s < self.min_time_s:
            raise ConfigError("timing.max_time_s must be at least timing.min_time_s")


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``harness run`` needs to know, after parsing and defaults."""

    suites: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()
    #: adapter specs as written by the user: ``cpu`` or ``cpu:threads=1``.
    adapters: tuple[str, ...] = ()
    #: parameter overrides as raw strings, parsed later against each workload's grid types.
    params: dict[str, tuple[str, ...]] = field(default_factory=dict)
    preset: Preset = "quick"
    out: Path = Path("results")
    timing: TimingOptions = field(default_factory=TimingOptions)
    #: run collectors (memory, energy) in a pass after timing.
    collect: bool = True
    #: how many times each case runs, each time in a fresh process (``--repeat``).
    repeat: int = 1
    #: which repetition this process runs (set for the worker processes of ``--repeat``).
    repetition: int = 0
    #: measure the adapters' peaks even where this machine has a fresh calibration cached
    #: (:mod:`harness.peak_cache`), and replace it.
    recalibrate: bool = False
    #: a load scenario (``--scenario``) instead of the timing loop; None: the timing loop.
    load: LoadOptions | None = None
    #: profile each case after timing (``--profile``): operators, trust figures, traces.
    profile: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.repeat, bool) or not isinstance(self.repeat, int) or self.repeat < 1:
            raise ConfigError(f"--repeat must be a positive integer, got {self.repeat!r}")

    def stored(self, adapters: list[str]) -> dict[str, Any]:
        """The selection as a run folder's ``context.json`` keeps it (``adapters``: the plan's
        adapter labels), which :meth:`from_stored` reads back for ``--resume``."""
        return {
            "suites": self.suites, "workloads": self.workloads, "preset": self.preset,
            "params": self.params, "adapters": adapters, "timing": self.timing.__dict__,
            "collect": self.collect, "repeat": self.repeat, "profile": self.profile,
            "load": None if self.load is None else dataclasses.asdict(self.load),
        }

    @classmethod
    def from_stored(cls, stored: dict[str, Any], out: Path, recalibrate: bool = False
                    ) -> RunConfig:
        """The configuration a run folder's context recorded (:meth:`stored`); ``out``: the
        results directory holding that folder. Raises TypeError or ValueError when the stored
        values are not valid."""
        return cls(
            suites=tuple(stored.get("suites") or ()),
            workloads=tuple(stored.get("workloads") or ()),
            adapters=tuple(stored.get("adapters") or ()),
            params={k: tuple(v) for k, v in (stored.get("params") or {}).items()},
            preset=stored.get("preset", "quick"), out=out,
            timing=TimingOptions(**(stored.get("timing") or {})),
            collect=bool(stored.get("collect", True)), repeat=int(stored.get("repeat", 1)),
            recalibrate=recalibrate, profile=bool(stored.get("profile", False)),
            load=LoadOptions(**stored["load"]) if stored.get("load") else None)


PLAN_FILE_KEYS = {"suites", "workloads", "adapters", "params", "preset", "out", "timing", "collect",
                  "repeat", "profile"}

#: Plan keys spelt as the flags of ``harness run`` are (``adapter`` for ``-a/--adapter``,
#: ``min-time`` for ``--min-time``) → the key they stand for. Dashes and underscores are alike
#: in every key. ``no-collect``, ``quick`` and ``full`` take ``true``, like their flags.
PLAN_FILE_ALIASES = {"suite": "suites", "workload": "workloads", "adapter": "adapters",
                     "param": "params", "no_collect": "collect", "quick": "preset",
                     "full": "preset"}

#: The sampling flags of ``harness run``, which a plan may also give at its top level, and the
#: :class:`TimingOptions` field each sets (in ``[timing]`` the field's own name works too).
TIMING_FLAGS = {"min_time": "min_time_s", "max_time": "max_time_s", "min_samples": "min_samples",
                "precision": "precision"}


def parse_precision(value: Any, where: str = "") -> float:
    """``2``, ``"2%"`` or ``0.02`` → 0.02: the rule of ``--precision`` and of plan files.

    A number of 1 or more is a percent and a number below 1 a fraction, so ``2`` and ``0.02``
    agree (half a percent is written ``0.5%`` or ``0.005``). The result must lie strictly
    between 0% and 100%; anything else is a :class:`ConfigError` that states the rule, after
    ``where: `` if given."""
    rule = (f"{where + ': ' if where else ''}expected a percentage such as 2, 2% or 0.02 (a "
            f"number of 1 or more is a percent, below 1 a fraction: half a percent is 0.5% or "
            f"0.005), above 0% and below 100%, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        percent = text.endswith("%")
        try:
            number = float(text[:-1] if percent else text)
        except ValueError:
            raise ConfigError(rule) from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number, percent = float(value), False
    else:
        raise ConfigError(rule)
    fraction = number / 100 if percent or number >= 1 else number
    if not (math.isfinite(fraction) and 0 < fraction < 1):
        raise ConfigError(rule)
    return fraction


def _key(name: str) -> str:
    return name.replace("-", "_")


def _valid_keys() -> str:
    """Every key a plan file takes, each with the flag spellings it also answers to."""
    aliases: dict[str, list[str]] = {}
    for alias, key in PLAN_FILE_ALIASES.items():
        aliases.setdefault(key, []).append(alias.replace("_", "-"))
    keys = [f"{key} (or {', '.join(aliases[key])})" if key in aliases else key
            for key in sorted(PLAN_FILE_KEYS)]
    keys += [f"{flag.replace('_', '-')}" for flag in TIMING_FLAGS]
    return ", ".join(keys)


def _unknown(path: Path, key: str, valid: str, choices: list[str]) -> ConfigError:
    import difflib

    close = difflib.get_close_matches(_key(key), choices, n=1)
    hint = f" (did you mean {close[0].replace('_', '-')!r}?)" if close else ""
    return ConfigError(f"plan {path}: unknown key {key!r}{hint}; valid: {valid}; dashes and "
                       "underscores are alike")


def _canonical(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """The plan's keys under their canonical names: flag spellings resolved, the top-level
    sampling keys moved into ``timing``, a key given twice (``adapter`` and ``adapters``) and
    an unknown key refused."""
    plan: dict[str, Any] = {}
    spelt: dict[str, str] = {}
    timing: dict[str, Any] = {}
    choices = [*PLAN_FILE_KEYS, *PLAN_FILE_ALIASES, *TIMING_FLAGS]
    for written, value in raw.items():
        key = _key(written)
        if key in TIMING_FLAGS:
            timing[written] = value
            continue
        if key not in PLAN_FILE_KEYS and key not in PLAN_FILE_ALIASES:
            raise _unknown(path, written, _valid_keys(), choices)
        canonical = PLAN_FILE_ALIASES.get(key, key)
        if canonical in spelt:
            raise ConfigError(f"plan {path}: {spelt[canonical]!r} and {written!r} give the same "
                              "setting: keep one")
        spelt[canonical] = written
        if key in ("no_collect", "quick", "full"):
            if value is not True:
                raise ConfigError(f"plan key {written!r} takes true, like its flag (or use "
                                  f"{'collect = false' if key == 'no_collect' else 'preset'})")
            value = False if key == "no_collect" else key
        plan[canonical] = value
    if timing:
        table = plan.get("timing", {})
        if not isinstance(table, dict):
            raise ConfigError("plan key 'timing' must be a table")
        both = sorted(set(timing) & set(table))
        if both:  # the same spelling in both places: one would silently win
            raise ConfigError(f"plan {path}: {both[0]!r} is set both at the top and in "
                              "[timing]: keep one")
        plan["timing"] = {**timing, **table}
    return plan


def _str_list(plan: dict[str, Any], key: str) -> tuple[str, ...]:
    value = plan.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"plan key {key!r} must be a list of non-empty strings")
    return tuple(value)


def read_plan_file(path: Path) -> dict[str, Any]:
    """Read a TOML plan file (``--plan``) into keyword arguments for :class:`RunConfig`.

    A plan looks like::

        preset = "quick"
        suites = ["transformer"]
        workloads = ["attention"]
        adapters = ["cpu:threads=1"]
        out = "results"
        [params]
        seq = [128, 256]
        [timing]
        min_time_s = 0.5

    Every key may also be spelt as the flag of ``harness run`` that sets it (``adapter``,
    ``min-time``, ``no-collect = true``; see :data:`PLAN_FILE_ALIASES`), and the sampling flags
    (``min-time``, ``max-time``, ``min-samples``, ``precision``) may stand at the top level.
    """
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read plan {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"plan {path} is not valid TOML: {exc}") from None
    plan = _canonical(path, raw)
    kwargs: dict[str, Any] = {}
    for key in ("suites", "workloads", "adapters"):
        if key in plan:
            kwargs[key] = _str_list(plan, key)
    if "preset" in plan:
        if plan["preset"] not in PRESETS:
            raise ConfigError(f"plan key 'preset' must be one of {', '.join(PRESETS)}")
        kwargs["preset"] = plan["preset"]
    if "out" in plan:
        if not isinstance(plan["out"], str) or not plan["out"]:
            raise ConfigError("plan key 'out' must be a directory path")
        kwargs["out"] = Path(plan["out"])
    for key in ("collect", "profile"):
        if key in plan:
            if not isinstance(plan[key], bool):
                raise ConfigError(f"plan key {key!r} must be true or false")
            kwargs[key] = plan[key]
    if "repeat" in plan:
        repeat = plan["repeat"]
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 1000:
            raise ConfigError("plan key 'repeat' must be an integer from 1 to 1000")
        kwargs["repeat"] = repeat
    if "params" in plan:
        kwargs["params"] = _plan_params(plan["params"])
    if "timing" in plan:
        kwargs["timing"] = timing_from_mapping(plan["timing"], "plan key 'timing'")
    return kwargs


def _plan_params(raw: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise ConfigError("plan key 'params' must be a table of parameter = [values]")
    params: dict[str, tuple[str, ...]] = {}
    for key, values in raw.items():
        if not isinstance(values, list):
            values = [values]
        if not values or not all(isinstance(v, int | float | str | bool) for v in values):
            raise ConfigError(f"plan key 'params.{key}' must be a non-empty list of values")
        # Kept as text and parsed against the workload's own types, exactly like `-p k=v`.
        params[key] = tuple(
            ("true" if v else "false") if isinstance(v, bool) else str(v) for v in values
        )
    return params


def _timing_field(key: str) -> str | None:
    """The :class:`TimingOptions` field a ``[timing]`` key names, by its own name or by the
    flag's (``min-time``); None for none."""
    key = _key(key)
    if key in {f.name for f in dataclasses.fields(TimingOptions)}:
        return key
    return TIMING_FLAGS.get(key)


def timing_from_mapping(raw: Any, where: str) -> TimingOptions:
    """Build :class:`TimingOptions` from a mapping, naming any unknown key. Keys are the
    fields' names or the flags' (``min-time`` for ``min_time_s``); ``precision`` follows
    :func:`parse_precision`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    values: dict[str, Any] = {}
    spelt: dict[str, str] = {}
    for key, value in raw.items():
        name = _timing_field(key)
        if name is None:
            valid = ", ".join(
                f"{f.name} (or {flag.replace('_', '-')})" if (flag := _flag_of(f.name)) else f.name
                for f in dataclasses.fields(TimingOptions))
            raise ConfigError(f"{where}: unknown key {key!r}; valid: {valid}")
        if name in spelt:
            raise ConfigError(f"{where}: {spelt[name]!r} and {key!r} give the same setting: "
                              "keep one")
        spelt[name] = key
        values[name] = parse_precision(value, "timing.precision") if name == "precision" \
            else value
    return TimingOptions(**values)


def _flag_of(field_name: str) -> str | None:
    return next((flag for flag, name in TIMING_FLAGS.items() if name == field_name
                 and flag != name), None)
