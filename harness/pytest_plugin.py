"""pytest plugin (entry point ``pytest11``): the ``harness_bench`` fixture, and harness cases as
pytest-benchmark benchmarks.

**The fixture** measures in users' own test files, in a plain ``pytest`` run, as
:func:`harness.bench` does (the same timer, checks and probe, a worker per case), and writes
harness rows into one run folder per test session, under ``results/`` (``--harness-bench-out``
or the ``harness_bench_out`` ini option choose another directory)::

    def test_sort(harness_bench):
        rows = harness_bench(sorted, data, expected=sorted(data), min_time=0.2)
        assert rows.latency_median_s[0] < 1e-3

Each call is one case, ``<test module>/<test name>[<parametrize values>]``; it returns its
rows as a DataFrame. A case that errors or fails its check fails the test, and one that every
adapter skipped skips it, with the row's message. Nothing happens, and no folder is made,
in a session that does not use the fixture.

**Harness cases as benchmarks** are inert unless ``--harness`` is given, so installing the
harness changes no other test session. With it, the test module :mod:`harness.pytest_cases` is
parametrised over the plan's cases and adapters, chosen with the same words as ``harness run``::

    pytest --pyargs harness.pytest_cases --harness --harness-suite transformer \\
        --harness-adapter cpu --benchmark-only --benchmark-autosave
    pytest --pyargs harness.pytest_cases --harness ... --benchmark-compare \\
        --benchmark-compare-fail=median:5%

Each benchmarked call runs the prepared step and then the adapter's synchronise, inside
pytest-benchmark's clock, so device work is counted; the output of the last call is checked
against the task's reference afterwards, and a failed check fails the test. The harness's case
id, suite and adapter go into ``extra_info``, so ``harness import pytest-benchmark`` maps the
results back onto our rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest  # loaded by pytest only: importing it costs nothing more

if TYPE_CHECKING:
    import pandas as pd

    from harness.adapters import Adapter
    from harness.adhoc import Session
    from harness.plan import AdapterSpec, Plan
    from harness.workload import Case


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness cases as benchmarks (harness.pytest_cases)")
    group.addoption("--harness", action="store_true",
                    help="parametrise harness.pytest_cases over the selected harness cases")
    group.addoption("--harness-suite", action="append", default=[], metavar="SUITE",
                    help="a suite, as `harness run -s` (repeatable; default: all)")
    group.addoption("--harness-workload", action="append", default=[], metavar="NAME",
                    help="a workload, as `harness run -w` (repeatable)")
    group.addoption("--harness-adapter", action="append", default=[], metavar="NAME[:k=v]",
                    help="an adapter, as `harness run -a` (repeatable; default: every available "
                         "one except null)")
    group.addoption("--harness-param", action="append", default=[], metavar="K=V1,V2",
                    help="override a parameter's values, as `harness run -p` (repeatable)")
    group.addoption("--harness-full", action="store_true",
                    help="each workload's full grid instead of the quick preset")
    group.addoption("--harness-bench-out", metavar="DIR",
                    help="results directory of the harness_bench fixture's run folder "
                         "(default: the harness_bench_out ini option, else results/ in the "
                         "rootdir)")
    parser.addini("harness_bench_out", "results directory of the harness_bench fixture's run "
                  "folder, relative to the ini file (default: results/ in the rootdir)")


def bench_out(config: pytest.Config) -> Path:
    """Where the fixture's run folder goes: the option (from the invocation directory), the ini
    option (from the ini file's directory), else ``results/`` in the rootdir."""
    given = config.getoption("harness_bench_out", default=None)
    if given:
        return Path(config.invocation_params.dir) / str(given)
    ini = str(config.getini("harness_bench_out") or "")
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return Path(base) / ini
    return Path(config.rootpath) / "results"


_SESSIONS = pytest.StashKey["Session"]()


def _session(config: pytest.Config) -> Session:
    from harness.adhoc import Session

    if _SESSIONS not in config.stash:
        config.stash[_SESSIONS] = Session(bench_out(config), "harness_bench")
    return config.stash[_SESSIONS]


def _name(text: str) -> str:
    """``text`` fit for a case id's suite or workload name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:100] or "test"


def _case_parts(node: pytest.Item) -> tuple[str, str, dict[str, Any]]:
    """Suite, workload and parameters of a test's case: its module's name, its function's,
    and its ``parametrize`` values (or their id, where one is no number, bool or string)."""
    module = getattr(getattr(node, "module", None), "__name__", "") or node.path.stem
    workload = getattr(node, "originalname", None) or node.name
    params: dict[str, Any] = {}
    callspec = getattr(node, "callspec", None)
    if callspec is not None:
        values = dict(callspec.params)
        plain = all(isinstance(v, int | float | bool | str) for v in values.values())
        params = values if plain else {"id": callspec.id}
    return _name(module.rsplit(".", 1)[-1]), _name(workload), params


@pytest.fixture
def harness_bench(request: pytest.FixtureRequest) -> Callable[..., pd.DataFrame]:
    """Measure ``fn(*inputs)`` with the harness: ``harness_bench(fn, *inputs, adapters=...,
    **settings)`` takes what :func:`harness.bench` takes (but ``out``: see
    ``--harness-bench-out``), writes the rows into this session's run folder and returns them;
    a case that errors or fails its check fails the test."""
    session = _session(request.config)
    suite, workload, params = _case_parts(request.node)

    def measure(fn: Callable[..., Any], /, *inputs: Any,
                adapters: str | Iterable[str] = ("cpu",), **settings: Any) -> pd.DataFrame:
        if "out" in settings:
            raise TypeError("harness_bench: the fixture writes into its session's run folder; "
                            "choose its directory with --harness-bench-out or the "
                            "harness_bench_out ini option, not out=")
        rows = session.measure(fn, inputs, adapters, settings, suite=suite, workload=workload,
                               params=params)
        judge(rows)
        return rows

    return measure


def judge(rows: pd.DataFrame) -> None:
    """Fail the test on an error row or a failed check; skip it when every row was skipped."""
    where = f" (run folder {rows.attrs.get('run')})"
    for row in rows.itertuples():
        # ``correct`` is True, False, or empty (None, or NaN in a float column): only False fails.
        failed = row.correct is not None and row.correct == False  # noqa: E712 (NumPy's too)
        if row.status == "error" or failed:
            pytest.fail(f"harness_bench: {row.case_id} on {row.adapter_label}: {row.message}"
                        f"{where}", pytrace=False)
    if len(rows) and (rows.status == "skipped").all():
        pytest.skip(f"harness_bench: {rows.case_id[0]}: {rows.message[0]}")


def _plan(config: pytest.Config) -> Plan:
    from harness.cli.common import UsageError, parse_params
    from harness.config import RunConfig
    from harness.plan import PlanError, make_plan

    try:
        run = RunConfig(suites=tuple(config.getoption("harness_suite")),
                        workloads=tuple(config.getoption("harness_workload")),
                        adapters=tuple(config.getoption("harness_adapter")),
                        params=parse_params(config.getoption("harness_param")),
                        preset="full" if config.getoption("harness_full") else "quick")
        return make_plan(run)
    except (UsageError, PlanError, ValueError) as exc:
        raise pytest.UsageError(f"harness: {exc}") from None


_PLANS: dict[int, Plan] = {}


def pytest_configure(config: pytest.Config) -> None:
    # The selection is resolved once, up front: a bad name is a usage error (exit status 4,
    # one line), not a collection error buried in a report.
    if config.getoption("harness", default=False):
        _PLANS[id(config)] = _plan(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "harness_case" not in metafunc.fixturenames:
        return
    if not metafunc.config.getoption("harness"):
        metafunc.parametrize("harness_case", [pytest.param(
            None, marks=pytest.mark.skip(reason="pass --harness to benchmark harness cases"))])
        return
    plan = _PLANS.get(id(metafunc.config)) or _plan(metafunc.config)
    pairs = [(case, spec) for spec in plan.adapters for case in plan.cases]
    metafunc.parametrize("harness_case", pairs,
                         ids=[f"{case.id}@{spec.label}" for case, spec in pairs])


class _Adapters:
    """One instance per adapter label for the whole session, closed at its end."""

    def __init__(self) -> None:
        self.open: dict[str, Adapter] = {}

    def get(self, spec: AdapterSpec) -> Adapter:
        from harness import plugins

        if spec.label not in self.open:
            self.open[spec.label] = plugins.adapter_class(spec.name)(**spec.options)
        return self.open[spec.label]

    def close(self) -> None:
        for adapter in self.open.values():
            adapter.close()
        self.open.clear()


_ADAPTERS = _Adapters()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _ADAPTERS.close()


def run_benchmark(benchmark: Any, case: Case, spec: AdapterSpec) -> None:
    """Benchmark one case on one adapter with pytest-benchmark's ``benchmark`` fixture."""
    from harness.workload import Skip

    adapter = _ADAPTERS.get(spec)
    try:
        task = case.build()
    except Skip as exc:
        pytest.skip(str(exc) or "skipped by the workload")
    ok, reason = adapter.supports(task)
    if not ok:
        pytest.skip(reason)
    try:
        step = adapter.prepare(task)
    except Skip as exc:
        pytest.skip(str(exc) or "skipped by the adapter")
    synchronize = adapter.synchronize
    last: list[Any] = [None]

    def timed() -> None:
        # The synchronise is inside the timed call: without it an asynchronous device would
        # be timed at its dispatch cost only.
        last[0] = step()
        synchronize()

    benchmark.extra_info.update(harness_case_id=case.id, harness_suite=case.suite,
                                harness_workload=case.workload.name,
                                harness_params=dict(case.params), harness_adapter=spec.name,
                                harness_device=adapter.device, items=task.items,
                                items_unit=task.items_unit)
    with adapter.running():
        benchmark(timed)
    if adapter.checks_output and task.check is not None:
        # The verdict goes into the JSON for `harness import`: pytest-benchmark keeps the
        # benchmark of a test that failed after timing, so the file alone cannot tell.
        try:
            task.check(adapter.to_host(last[0]))
        except AssertionError:
            benchmark.extra_info["harness_correct"] = False
            raise
        benchmark.extra_info["harness_correct"] = True
