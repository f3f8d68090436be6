"""Turn a RunConfig into a plan: the concrete cases and the adapters to run them on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness import plugins
from harness.adapters import AdapterError
from harness.config import RunConfig
from harness.workload import Case, ParamValue, WorkloadError


class PlanError(ValueError):
    """The selection names something that does not exist or cannot run here."""


@dataclass(frozen=True)
class AdapterSpec:
    """An adapter name with its parsed options, e.g. ``cpu:threads=1``."""

    name: str
    options: dict[str, ParamValue] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.options.items())


@dataclass(frozen=True)
class Plan:
    """Cases × adapters, in the order they will run."""

    cases: list[Case]
    adapters: list[AdapterSpec]

    def __len__(self) -> int:
        return len(self.cases) * len(self.adapters)


def parse_adapter(text: str) -> AdapterSpec:
    """Parse ``name`` or ``name:k=v,...`` against the adapter's declared options."""
    name, _, options = text.partition(":")
    try:
        cls = plugins.adapter_class(name.strip())
        return AdapterSpec(name=cls.name, options=cls.parse_options(options))
    except (plugins.PluginError, AdapterError) as exc:
        raise PlanError(str(exc)) from None


def select_adapters(specs: tuple[str, ...]) -> list[AdapterSpec]:
    """The user's adapters (each must be available), or every available one except ``null``."""
    if not specs:
        chosen = [AdapterSpec(name) for name in plugins.registered("harness.adapters")
                  if name != "null" and plugins.adapter_status(name)[0]]
        if not chosen:
            raise PlanError("no adapter is available here; see `harness list adapters`")
        return chosen
    chosen = []
    for text in specs:
        spec = parse_adapter(text)
        ok, reason = plugins.adapter_status(spec.name)
        if not ok:
            raise PlanError(f"adapter {spec.name!r} is not available here: {reason}")
        chosen.append(spec)
    return chosen


def select_cases(config: RunConfig) -> list[Case]:
    """Expand the selected suites' workloads over the preset grid with the user's overrides."""
    try:
        suites = ([plugins.load_suite(s) for s in config.suites] if config.suites
                  else plugins.all_suites())
    except plugins.PluginError as exc:
        raise PlanError(str(exc)) from None
    available = {name: (suite, w) for suite in suites for name, w in suite.workloads.items()}
    wanted = list(config.workloads) or list(available)
    for name in wanted:
        if name not in available:
            raise PlanError(f"unknown workload {name!r}; valid: {', '.join(available)}")
    selected = [available[name] for name in dict.fromkeys(wanted)]

    for key in config.params:
        if not any(key in w.params for _, w in selected):
            known = sorted({k for _, w in selected for k in w.params})
            raise PlanError(f"no selected workload has parameter {key!r}; valid: "
                            f"{', '.join(known) or '(none)'}")
    cases: list[Case] = []
    for suite, wl in selected:
        try:
            overrides: dict[str, Any] = {
                key: [wl.parse_value(key, v) for v in values]
                for key, values in config.params.items() if key in wl.params
            }
            grid = wl.grid(config.preset, overrides)
            for params in grid:
                wl.check_params(params)
        except WorkloadError as exc:
            raise PlanError(str(exc)) from None
        cases.extend(Case(suite=suite.name, workload=wl, params=p) for p in grid)
    return cases


def make_plan(config: RunConfig) -> Plan:
    """Resolve the configuration into a plan, or raise :class:`PlanError` with one clear line."""
    return Plan(cases=select_cases(config), adapters=select_adapters(config.adapters))
