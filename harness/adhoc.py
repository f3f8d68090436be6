"""``harness.bench(fn, *inputs)``: one callable measured in one line, from a notebook, a script
or a test (the ``harness_bench`` fixture of :mod:`harness.pytest_plugin`).

It builds what ``harness run`` builds from a suite — a case, a plan, a run folder under
``results/`` — and hands them to the same execution layer (:func:`harness.execution.prepare`,
:func:`~harness.execution.open_run`, :func:`~harness.execution.execute`). So the figures are
measured exactly as a suite's are: the same timer (first call apart, calibrated loops, warm-up
until steady), the same checks and changed-input probe, the collectors' pass and the roofline,
each case in a worker process of its own, and the rows are the rows ``harness run`` writes.

The task reaches its worker pickled (:mod:`harness.portable`). A function defined in a
notebook, a script's ``__main__`` or another function cannot be imported by a worker; unless
``isolate=True`` asks for a worker or an error, such a task is measured in this process
(``harness run --no-isolate``), and its row's ``meta`` says so and why (``in_process``).

Settings (:mod:`harness.adhoc_settings`) take the names of ``harness run``'s flags and plan
keys; a bad one is a ``ValueError`` or ``TypeError`` of one line naming it, raised before
anything runs.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.adhoc_settings import Settings, directory, parse
from harness.config import RunConfig
from harness.execution import Mode, execute, open_run, prepare
from harness.plan import AdapterSpec, Plan, PlanError, select_adapters
from harness.portable import NotPortable, TaskSpec, one_workload, pickled, write_suite
from harness.workload import Case, Params, Task, WorkloadError

if TYPE_CHECKING:
    import pandas as pd

#: the suites entry a bench run's context stores: ``--resume`` cannot rebuild a bench task,
#: and this one fails to load with that said, rather than resume every registered suite.
NO_SUITE = "harness.bench"


def adapter_specs(who: str, adapters: str | Iterable[str]) -> list[AdapterSpec]:
    """The adapters, each available here (a ``ValueError`` naming any that is not)."""
    names = (adapters,) if isinstance(adapters, str) else tuple(adapters)
    if not names or not all(isinstance(a, str) and a.strip() for a in names):
        raise ValueError(f"{who}: adapters must name one adapter or more, such as 'cpu' or "
                         f"'cpu:threads=1', got {adapters!r}")
    try:
        specs = select_adapters(names)
    except PlanError as exc:
        raise ValueError(f"{who}: {exc}") from None
    labels = [spec.label for spec in specs]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ValueError(f"{who}: adapter {twice[0]!r} is named twice")
    return specs


def default_name(fn: Callable[..., Any]) -> str:
    """The case's name from the callable: its ``__name__`` (a partial's function's, a module's
    class's), made fit for a case id."""
    inner = getattr(fn, "func", fn)  # functools.partial
    raw = getattr(inner, "__name__", None) or type(inner).__name__
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(raw)).strip("_.-")
    return cleaned[:100] or "fn"


@dataclass
class Prepared:
    """A task made into a one-case plan, ready to run."""

    case: Case
    plan: Plan
    config: RunConfig
    mode: Mode
    #: the folder the task travels to workers through, removed once the run is over.
    folder: Path | None

    def cleanup(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def make_case(spec: TaskSpec, adapters: str | Iterable[str], settings: Settings, *,
              suite: str, workload: str, params: Params, who: str = "harness.bench"
              ) -> Prepared:
    """The plan, configuration and mode that measure ``spec`` as ``suite/workload[params]``; a
    ``ValueError`` or ``TypeError`` of one line for anything that cannot run."""
    specs = adapter_specs(who, adapters)
    if settings.reference is not None and settings.reference not in {
            name for s in specs for name in (s.name, s.label)}:
        raise ValueError(f"{who}: reference {settings.reference!r} is not among the adapters: "
                         f"{', '.join(s.label for s in specs)}")
    meta = spec.fields.get("meta", {})
    if not isinstance(meta, Mapping):
        raise ValueError(f"{who}: meta must be a mapping, got {type(meta).__name__}")
    spec.fields["meta"] = {"function": qualified(spec.fn), **meta}
    task = build(spec, who)
    data, why = None, "isolate=False"
    if settings.isolate is not False:
        try:
            data = pickled(spec)
        except NotPortable as exc:
            why = f"the task cannot be sent to a worker: {exc}"
    if data is None and settings.isolate:
        raise ValueError(f"{who}: isolate=True, but {why}; pass isolate=False to measure it in "
                         "this process")
    if data is None and settings.repeat > 1:
        raise ValueError(f"{who}: repeat={settings.repeat} runs each repetition in a fresh "
                         f"process, which needs a worker, but "
                         f"{'isolate=False' if settings.isolate is False else why}")
    if data is None:  # measured here: the row says so, and why
        spec.fields["meta"] = {**spec.fields["meta"], "in_process": why}
        task = dataclasses.replace(task, meta=spec.fields["meta"])
    folder = None if data is None else Path(tempfile.mkdtemp(prefix="harness-bench-"))
    case = Case(suite, one_workload(workload, lambda **_: task, params), params)
    sources = {} if folder is None or data is None else {  # (both or neither)
        suite: str(write_suite(folder, suite, workload, params, data))}
    config = RunConfig(suites=(NO_SUITE,), workloads=(workload,),
                       adapters=tuple(s.label for s in specs), out=settings.out,
                       timing=settings.timing, collect=settings.collect, repeat=settings.repeat,
                       recalibrate=settings.recalibrate, profile=settings.profile)
    mode = Mode(isolate=data is not None, limits=settings.limits, reference=settings.reference,
                interleave=settings.interleave)
    return Prepared(case, Plan([case], specs, sources), config, mode, folder)


def build(spec: TaskSpec, who: str) -> Task:
    """The task, or a ``ValueError`` naming the setting it refuses."""
    try:
        return spec.task()
    except WorkloadError as exc:
        raise ValueError(f"{who}: {str(exc).removeprefix('Task.')}") from None
    except TypeError as exc:  # a field of the wrong kind the dataclass did not check
        raise TypeError(f"{who}: {exc}") from None


def qualified(fn: Callable[..., Any]) -> str:
    """``module.name`` of a callable (a module instance's class), for the row's ``meta``."""
    inner = getattr(fn, "func", fn)
    if not hasattr(inner, "__qualname__"):
        inner = type(inner)
    module = getattr(inner, "__module__", None)
    name = getattr(inner, "__qualname__", "?")
    return f"{module}.{name}" if module else str(name)


def open_writer(prepared: Prepared, run: Path | None, who: str = "harness.bench") -> Path:
    """Start the workers' server, and open a new run folder (``run`` None) or take ``run``;
    the folder. A ``ValueError`` of one line when it cannot."""
    from harness.results import update_context

    try:
        prepare(prepared.plan, prepared.mode)
        if run is not None:
            return run
        writer = open_run(prepared.config, prepared.plan, prepared.mode)
    except PlanError as exc:
        raise ValueError(f"{who}: {exc}") from None
    except OSError as exc:  # out read-only, or a file
        raise ValueError(f"{who}: cannot create a run folder in {prepared.config.out}: "
                         f"{exc.strerror or exc}") from None
    writer.close()  # run() appends under the run folder's lock
    update_context(writer.path, {"config": {"api": who}})
    return writer.path


def run(prepared: Prepared, folder: Path) -> list[dict[str, Any]]:
    """Measure the prepared case into the run folder ``folder``; its rows."""
    from harness.results import RunWriter, lock_run

    with lock_run(folder):
        return execute(prepared.config, prepared.plan, RunWriter.reopen(folder), prepared.mode)


def frame(folder: Path, case_id: str) -> pd.DataFrame:
    """The rows of ``case_id`` in a run folder as ``harness.load`` gives them, with the run
    folder in ``attrs["run"]``."""
    from harness.results import load

    rows = load(folder)
    rows = rows[rows.case_id == case_id].reset_index(drop=True)
    rows.attrs["run"] = str(folder)
    return rows


def one_line(exc: ValueError | TypeError) -> ValueError | TypeError:
    """A plain ``ValueError`` or ``TypeError`` with ``exc``'s message, to raise afresh."""
    return (ValueError if isinstance(exc, ValueError) else TypeError)(str(exc))


class Session:
    """Measurements into one run folder, opened at the first (the ``harness_bench`` fixture's:
    one per test session), each case under its own id."""

    def __init__(self, out: Path, who: str) -> None:
        self.out = out
        self.who = who
        #: the run folder, once the first measurement opened it.
        self.run: Path | None = None
        self.ids: set[str] = set()

    def measure(self, fn: Callable[..., Any], inputs: tuple[Any, ...],
                adapters: str | Iterable[str], settings: Mapping[str, Any], *, suite: str,
                workload: str, params: Params) -> pd.DataFrame:
        """Measure ``fn(*inputs)`` as ``suite/workload[params]`` (its ``name`` setting replaces
        ``workload``; a second case of that id gets ``call=2``, and so on); its rows. A
        ``ValueError`` or ``TypeError`` of one line, raised here, for bad input."""
        who = self.who
        try:
            if not callable(fn):
                raise TypeError(f"{who}: the first argument must be the callable to measure, "
                                f"got {type(fn).__name__}")
            parsed = dataclasses.replace(parse(settings, who), out=self.out)
            name = parsed.name or workload
            numbered, call = dict(params), 1
            while case_id(suite, name, numbered) in self.ids:
                call += 1
                numbered = {**params, "call": call}
            spec = TaskSpec(fn, inputs, dict(parsed.task), parsed.expected)
            prepared = make_case(spec, adapters, parsed, suite=suite, workload=name,
                                 params=numbered, who=who)
        except (ValueError, TypeError) as exc:  # one line, raised here: not a deep traceback
            raise one_line(exc) from None
        try:
            try:
                folder = open_writer(prepared, self.run, who)
            except ValueError as exc:
                raise one_line(exc) from None
            self.run = folder
            self.ids.add(prepared.case.id)
            run(prepared, folder)
        finally:
            prepared.cleanup()
        return frame(folder, prepared.case.id)


def case_id(suite: str, workload: str, params: Params) -> str:
    """The id of case ``suite/workload[params]``."""
    return Case(suite, one_workload(workload, Task, params), params).id


def bench(fn: Callable[..., Any], /, *inputs: Any, adapters: str | Iterable[str] = ("cpu",),
          **settings: Any) -> pd.DataFrame:
    """See :func:`harness.bench`: a new run folder under ``out`` (default ``results/``)."""
    out = settings.pop("out", "results")
    try:
        folder = directory("harness.bench", out)
    except ValueError as exc:
        raise one_line(exc) from None
    return Session(folder, "harness.bench").measure(
        fn, inputs, adapters, settings, suite="bench",
        workload=default_name(fn) if callable(fn) else "fn", params={})
