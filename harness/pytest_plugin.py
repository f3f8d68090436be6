"""pytest plugin (entry point ``pytest11``): harness cases as pytest-benchmark benchmarks.

Inert unless ``--harness`` is given, so installing the harness changes no other test session.
With it, the test module :mod:`harness.pytest_cases` is parametrised over the plan's cases and
adapters, chosen with the same words as ``harness run``::

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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from harness.adapters import Adapter
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
        import pytest

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
    import pytest

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
    import pytest

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
