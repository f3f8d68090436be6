"""How cases execute: the one place that chooses inline, workers, a cluster or a load scenario.

A run mode is a module with a target function that a worker runs
(:func:`harness.execution.workers.run_in_worker`), and a parent side that hands it payloads and
writes the rows it gets back:

- :mod:`~harness.execution.loop`: the timing loop (:class:`~harness.execution.loop.Runner`),
  inline, or in a worker as :func:`~harness.execution.targets.case_target`;
- :mod:`~harness.execution.local`: each case in a fresh worker on this machine (the default);
- :mod:`~harness.execution.cluster`: each case on a node of a Ray cluster;
- :mod:`~harness.execution.repeat`: ``--repeat`` without isolation, a worker per repetition;
- :mod:`~harness.execution.interleave`: a case's adapters measured in alternating rounds, a
  persistent worker each (the default with two or more adapters);
- :mod:`~harness.execution.ab`: two versions of a suite timed interleaved (``harness ab``);
- :mod:`harness.scenarios.driver`: load scenarios, inline or a worker per scenario run.

The command line parses and prints; :func:`open_run`, :func:`reopen_run` and :func:`execute`
decide how the cases run. See ``docs/architecture.md`` for the path of one case.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.execution.hooks import Hooks
from harness.execution.loop import Runner, close_all, instantiate
from harness.execution.rows import pending, row_key
from harness.execution.workers import Limits
from harness.results import mark_finished

if TYPE_CHECKING:
    from harness.adapters import Adapter
    from harness.config import RunConfig
    from harness.plan import Plan
    from harness.results import RunWriter

__all__ = ["ExecutionError", "Hooks", "Limits", "Mode", "execute", "open_run", "reopen_run"]


class ExecutionError(Exception):
    """A run could not go on (a repetition's process failed); rows so far are on disk."""


@dataclass(frozen=True)
class Mode:
    """How a run's cases execute (the command line's ``--no-isolate``, ``--timeout``,
    ``--max-memory``, ``--cluster``, ``--resources``, ``--no-interleave`` and ``--reference``)."""

    isolate: bool = True
    limits: Limits = field(default_factory=Limits)
    #: a Ray cluster's address (``--cluster``); None: this machine.
    cluster: str | None = None
    #: adapter name → the Ray resources one case needs there (``--resources``).
    resources: dict[str, dict[str, float]] = field(default_factory=dict)
    #: with two or more adapters, measure each case on all of them in alternating rounds
    #: (:mod:`~harness.execution.interleave`); False: one adapter after the other.
    interleave: bool = True
    #: the adapter (label or name) that interleaved speedups are relative to; None: the first.
    reference: str | None = None


def prepare(plan: Plan, mode: Mode) -> None:
    """Start what the run needs before its set-up (the forkserver's imports overlap it); on a
    cluster, check that live nodes can run every adapter (connected by the caller). A
    :class:`~harness.plan.PlanError` for limits an adapter cannot run under."""
    refuse_cap(plan, mode)
    if mode.cluster is not None:
        from harness.execution import cluster

        cluster.check(plan.adapters, mode.resources, cluster.live_nodes())
    elif mode.isolate:
        from harness.execution import workers

        workers.start(plan)


def open_run(config: RunConfig, plan: Plan, mode: Mode) -> RunWriter:
    """A new run folder under ``config.out``, its context holding the environment and the
    selection; a :class:`~harness.plan.PlanError` for adapter options the run's adapters
    refuse, before anything runs.

    No adapter is built here: each adapter's facts are recorded in the context as the process
    running its first case reports them (:mod:`harness.execution.facts`)."""
    from harness import environment
    from harness.results import RunWriter

    context = environment.collect()
    context["config"] = {**config.stored([s.label for s in plan.adapters]),
                         "isolate": mode.isolate, "interleave": mode.interleave,
                         "reference": mode.reference}
    # What the run does, beside what was asked: a reader of the folder sees whether its
    # speedups were measured in alternating rounds or from runs minutes apart.
    context["interleaved"] = interleaves(config, plan, mode)
    if mode.interleave and len(plan.adapters) > 1 and not context["interleaved"]:
        print(f"note: the adapters run one after another, not interleaved "
              f"({_why_sequential(config, mode)}): speedups compare moments minutes apart",
              file=sys.stderr)
    context["adapters"] = {}
    context["finished_at"] = None  # set when the run ends (execute): None says it did not
    if mode.cluster is None:
        check_options(plan)
    else:
        # Each node reports its own hosts' context and adapters' info as it first returns.
        context["config"]["cluster"] = {"address": mode.cluster, "resources": mode.resources}
        context["hosts"] = {}
    return RunWriter(config.out, context)


def interleaves(config: RunConfig, plan: Plan, mode: Mode) -> bool:
    """Whether the run's cases are measured on their adapters in alternating rounds: asked
    for (the default), two or more adapters, isolated workers on this machine, the loop
    scenario."""
    return (mode.interleave and len(plan.adapters) > 1 and mode.isolate
            and mode.cluster is None and config.load is None)


def _why_sequential(config: RunConfig, mode: Mode) -> str:
    if mode.cluster is not None:
        return "a cluster run places each case on a node of its own"
    if not mode.isolate:
        return "--no-isolate runs every adapter in this one process"
    return f"the {config.load.scenario if config.load else 'load'} scenario drives one " \
        "adapter at a time"


def refuse_cap(plan: Plan, mode: Mode) -> None:
    """A :class:`~harness.plan.PlanError` when ``--max-memory`` would cap the workers of an
    adapter that cannot run under an address-space cap."""
    from harness import plugins
    from harness.plan import PlanError

    if mode.limits.max_memory_bytes is None or not (mode.isolate or mode.cluster is not None):
        return
    for spec in plan.adapters:
        why = plugins.adapter_class(spec.name).no_address_space_cap
        if why:
            raise PlanError(f"--max-memory caps each worker's address space (RLIMIT_AS), and "
                            f"adapter {spec.label!r} cannot run under such a cap: {why}; run it "
                            "without --max-memory")


def check_options(plan: Plan) -> None:
    """A :class:`~harness.plan.PlanError` for options an adapter of ``plan`` refuses, found
    without starting any device (:meth:`~harness.adapters.Adapter.check_options`)."""
    from harness import plugins
    from harness.plan import PlanError

    for spec in plan.adapters:
        try:
            plugins.adapter_class(spec.name).check_options(spec.options)
        except ValueError as exc:
            raise PlanError(str(exc)) from None


def reopen_run(run: Path, config: RunConfig, plan: Plan, mode: Mode) -> RunWriter:
    """The run folder of ``--resume``, its lost rows (cases lost with a node or Ray worker)
    moved aside to be run again; on a cluster, refused before anything changes when no live
    node can run what is missing."""
    from harness.results import RunWriter, read_rows, set_aside_lost

    refuse_cap(plan, mode)
    if mode.cluster is not None:
        from harness.execution import cluster

        kept = {row_key(row) for row in read_rows(run) if row.get("lost") is not True}
        needed = {spec.label: spec for k in range(config.repeat)
                  for spec, cases in pending(plan, kept, k) if cases}
        cluster.check(list(needed.values()), mode.resources, cluster.live_nodes())
    moved = set_aside_lost(run)
    if moved:
        print(f"{moved} lost case(s) moved to {run / 'lost.jsonl'}: running them again",
              file=sys.stderr)
    return RunWriter.reopen(run)


def execute(config: RunConfig, plan: Plan, writer: RunWriter, mode: Mode,
            hooks: Hooks | None = None) -> list[dict[str, Any]]:
    """Every repetition of every case of ``plan`` not yet in the run folder; rows are written
    as they come, and the writer is closed at the end; the run folder records that the run
    finished. A ``KeyboardInterrupt`` passes through (rows finished so far are on disk); an
    :class:`ExecutionError` when a repetition's process failed."""
    rows = _execute(config, plan, writer, mode, hooks)
    mark_finished(writer.path)
    return rows


def _execute(config: RunConfig, plan: Plan, writer: RunWriter, mode: Mode, hooks: Hooks | None
             ) -> list[dict[str, Any]]:
    from harness.results import read_rows

    hooks = hooks or Hooks()
    done = {row_key(row) for row in read_rows(writer.path)}
    rows: list[dict[str, Any]] = []
    try:
        if config.repeat > 1 and not mode.isolate:
            from harness.execution.repeat import run_repetitions

            writer.close()
            failure = run_repetitions(writer.path, config.repeat, config.recalibrate)
            if failure:
                raise ExecutionError(f"{failure}; rows finished so far are in {writer.path}")
            return read_rows(writer.path)
        for k in range(config.repeat):
            run = dataclasses.replace(config, repetition=k)
            todo = sum(len(cases) for _, cases in pending(plan, done, k))
            hooks.pass_begins(k, config.repeat, len(plan), len(plan) - todo)
            try:
                rows += _one_pass(run, plan, writer, done, mode, hooks)
            finally:
                hooks.pass_ends()
    finally:
        writer.close()
    return rows


def _one_pass(config: RunConfig, plan: Plan, writer: RunWriter, done: set[Any], mode: Mode,
              hooks: Hooks) -> list[dict[str, Any]]:
    """One repetition of the plan's pending cases, in the mode's way."""
    if mode.cluster is not None:
        from harness.execution.cluster import run_cluster

        return run_cluster(config, plan, writer, mode.limits, mode.resources, hooks, done)
    if interleaves(config, plan, mode):
        from harness.execution.interleave import run_interleaved

        return run_interleaved(config, plan, writer, mode.limits, hooks, done, mode.reference)
    if mode.isolate and config.load is None:
        from harness.execution.local import run_local

        return run_local(config, plan, writer, mode.limits, hooks, done)
    adapters: dict[str, Adapter] = {} if mode.isolate else instantiate(plan)
    try:
        if not mode.isolate:  # this process runs the cases: its adapters' facts are the run's
            from harness.execution.facts import record_facts

            record_facts(writer.path, adapters)
        if config.load is not None:
            from harness.scenarios.driver import LoadDriver

            driver = LoadDriver(config, plan, writer, config.load, mode.isolate, mode.limits,
                                hooks)
            rows = driver.run(done, adapters if not mode.isolate else None)
        else:
            rows = Runner(config, plan, writer, hooks, done=done).run(adapters)
    except BaseException:
        close_all(list(adapters.values()))  # the error in flight is the one to report
        raise
    failure = close_all(list(adapters.values()))
    if failure:
        raise ExecutionError(f"{failure}, after its cases; their rows are in {writer.path}")
    return rows
