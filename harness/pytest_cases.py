"""The test module the pytest plugin parametrises: one benchmark per harness case and adapter.

Run it with ``pytest --pyargs harness.pytest_cases --harness --benchmark-only`` (see
:mod:`harness.pytest_plugin` for the options).
"""

from __future__ import annotations

from typing import Any

from harness.pytest_plugin import run_benchmark


def test_case(benchmark: Any, harness_case: Any) -> None:
    case, spec = harness_case
    run_benchmark(benchmark, case, spec)
