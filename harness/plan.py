"""Turn a RunConfig into a plan: the concrete cases and the adapters to run them on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
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
    #: suite name → what loads it again (a registered name, a dotted module or an absolute
    #: path), so that a worker process can rebuild any case from its id's parts.
    sources: dict[str, str] = field(default_factory=dict)

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


def select_adapters(specs: tuple[str, ...], here: bool = True) -> list[AdapterSpec]:
    """The user's adapters (each must be available), or every available one except ``null``.

    ``here=False`` (a cluster run): the adapters the user names need not be available on this
    machine, only on the nodes that will run them; each node checks for itself."""
    if not specs:
        chosen = [AdapterSpec(name) for name in plugins.registered("harness.adapters")
                  if name != "null" and plugins.adapter_status(name)[0]]
        if not chosen:
            raise PlanError("no adapter is available here; see `harness list adapters`")
        return chosen
    chosen = []
    for text in specs:
        spec = parse_adapter(text)
        ok, reason = plugins.adapter_status(spec.name) if here else (True, "")
        if not ok:
            raise PlanError(f"adapter {spec.name!r} is not available here: {reason}")
        chosen.append(spec)
    return chosen


def _source(spec: str) -> str:
    """A suite spec that loads the same suite from any working directory."""
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        return str(Path(spec).resolve())
    return spec


def select_cases(config: RunConfig, sources: dict[str, str] | None = None) -> list[Case]:
    """Expand the selected suites' workloads over the preset grid with the user's overrides;
    ``sources`` (if given) receives each suite's name → how to load it again."""
    specs = list(config.suites) or list(plugins.registered("harness.suites"))
    try:
        suites = [plugins.load_suite(s) for s in specs]
    except plugins.PluginError as exc:
        raise PlanError(str(exc)) from None
    if sources is not None:
        sources.update({suite.name: _source(spec) for suite, spec in zip(suites, specs,
                                                                         strict=True)})
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


def make_plan(config: RunConfig, here: bool = True) -> Plan:
    """Resolve the configuration into a plan, or raise :class:`PlanError` with one clear line;
    ``here``: whether the adapters must be available on this machine (not for a cluster)."""
    sources: dict[str, str] = {}
    cases = select_cases(config, sources)
    return Plan(cases=cases, adapters=select_adapters(config.adapters, here), sources=sources)
