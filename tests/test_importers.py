"""Importing pytest-benchmark JSON: rows in our schema, with or without per-round data."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from harness.importers import TEST_CHECK_WHY, benchmark_row, import_pytest_benchmark
from harness.report.table import render
from harness.results import ResultsError, load, read_context


def bench(data: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    stats: dict[str, Any] = {"min": 1e-3, "max": 3e-3, "mean": 2e-3, "stddev": 1e-4,
                             "median": 2e-3, "iqr": 2e-4, "rounds": 7, "iterations": 10}
    if data is not None:
        stats["data"] = data
    return {"group": None, "name": "test_sort[n=10]", "fullname": "t.py::test_sort[n=10]",
            "params": {"n": 10}, "extra_info": extra, "stats": stats}


def test_a_plain_benchmark_becomes_a_pytest_benchmark_row() -> None:
    row = benchmark_row(bench(data=[1e-3, 2e-3, 3e-3, 2e-3, 2e-3, 2e-3, 2e-3]))
    assert (row["suite"], row["workload"], row["case_id"], row["adapter"]) == (
        "pytest-benchmark", "test_sort", "t.py::test_sort[n=10]", "pytest-benchmark")
    assert row["params"] == {"n": 10} and row["loops"] == 10
    assert row["latency_median_s"] == 2e-3 and row["n_samples"] == 7
    # The test's own assertions are the check: said so, never "no check ran", never "pass".
    assert row.get("correct") is None and row["meta"]["check"] == "test"
    assert row["missing"]["correct"] == TEST_CHECK_WHY and not row.get("message")
    assert row["missing"]["energy_j"] == "not measured by pytest-benchmark"


def test_a_check_recorded_by_the_harness_plugin_is_kept() -> None:
    assert benchmark_row(bench(harness_correct=True))["correct"] is True
    failed = benchmark_row(bench(harness_correct=False))
    assert failed["correct"] is False and "check failed" in failed["message"]
    assert "check" not in failed["meta"]


def test_without_per_round_data_stored_figures_are_used_and_the_rest_say_why() -> None:
    row = benchmark_row(bench(items=4))
    assert row["latency_median_s"] == 2e-3 and row["latency_std_s"] == 1e-4
    assert row["throughput_items_per_s"] == 2000.0
    assert "no per-round data" in row["missing"]["latency_ci_low_s"]


def test_a_file_becomes_a_loadable_run(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    commit = {"id": "abc", "time": "2026-01-01T00:00:00+00:00", "dirty": True,
              "project": "proj", "branch": "main"}
    machine = {"node": "box", "system": "Linux", "release": "6.1", "python_version": "3.11.7",
               "python_implementation": "CPython", "cpu": {"brand_raw": "EPYC"}}
    path.write_text(json.dumps({"benchmarks": [bench([1e-3] * 5)], "datetime": "2026-01-01",
                                "version": "5.1", "commit_info": commit,
                                "machine_info": machine}))
    run = import_pytest_benchmark(path, tmp_path / "results")
    frame = load(run)
    assert len(frame) == 1 and frame.latency_median_s[0] == 1e-3
    assert math.isnan(frame.peak_rss_bytes[0])
    context = read_context(run)
    assert (context["git_sha"], context["git_dirty"], context["git_branch"]) == (
        "abc-dirty", True, "main")
    assert (context["git_project"], context["git_commit_time"]) == (
        "proj", "2026-01-01T00:00:00+00:00")
    assert context["commit_info"] == commit and context["machine_info"] == machine
    assert (context["host"], context["os"], context["cpu_model"]) == ("box", "Linux 6.1", "EPYC")


def test_the_table_shows_the_tests_own_check(tmp_path: Path) -> None:
    text = render([{**benchmark_row(bench([1e-3] * 5)), "adapter_label": None}])
    header, _, line = text.splitlines()[1:4]
    assert header.split()[-1] == "check" and line.split()[-1] == "test"
    assert "no correctness check" not in text
    assert "test: checked by the test's own assertions" in text


@pytest.mark.parametrize("text, message", [
    ("{", "is not JSON"), ("[]", "not a pytest-benchmark file"), ('{"a": 1}', "no 'benchmarks'"),
])
def test_bad_files_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(ResultsError, match=message):
        import_pytest_benchmark(path, tmp_path)
    with pytest.raises(ResultsError, match="cannot read"):
        import_pytest_benchmark(tmp_path / "absent.json", tmp_path)
