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
            raise ConfigError(f"timing.precision must be a fraction in (0, 1), got "
                              f"{self.precision!r}")
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
    """
    try:
        plan = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read plan {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"plan {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(plan) - PLAN_FILE_KEYS)
    if unknown:
        raise ConfigError(
            f"plan {path}: unknown key {unknown[0]!r}; valid: {', '.join(sorted(PLAN_FILE_KEYS))}"
        )
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


def timing_from_mapping(raw: Any, where: str) -> TimingOptions:
    """Build :class:`TimingOptions` from a mapping, naming any unknown key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a table")
    names = [f.name for f in dataclasses.fields(TimingOptions)]
    for key in raw:
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r}; valid: {', '.join(names)}")
    return TimingOptions(**raw)
