"""The pytest-benchmark bridge, as a user runs it: pytest in a subprocess on harness cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import harness
from harness.importers import import_pytest_benchmark

ROOT = Path(__file__).parent.parent


def pytest_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "harness.pytest_cases", "-q",
         "-p", "no:cacheprovider", "--benchmark-max-time=0.05", "--benchmark-min-rounds=8",
         *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)


def test_without_the_option_the_module_skips_with_the_reason(tmp_path: Path) -> None:
    result = pytest_run(tmp_path, "-rs")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass --harness to benchmark harness cases" in result.stdout


def test_harness_cases_run_as_benchmarks_and_import_back(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = pytest_run(tmp_path, "--harness", "--harness-workload", "ffn",
                        "--harness-workload", "attention", "--harness-adapter", "cpu:threads=1",
                        "--benchmark-only", f"--benchmark-json={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout  # ffn and attention's quick impls: sdpa, math
    data = json.loads(out.read_text())
    ids = sorted(b["extra_info"]["harness_case_id"] for b in data["benchmarks"])
    assert ids[-1] == ("transformer/ffn[tokens=128,hidden=768,intermediate=3072,"
                       "dtype=float32,engine=eager]")
    run = import_pytest_benchmark(out, tmp_path / "results")
    frame = harness.load(run)
    assert sorted(frame.case_id) == ids
    assert set(frame.adapter) == {"cpu"}
    assert (frame.latency_median_s > 0).all() and (frame.n_samples >= 8).all()
    assert frame.latency_ci_low_s.notna().all()  # per-round data came along
    # The task's check ran after timing; its verdict came along too.
    assert all(b["extra_info"]["harness_correct"] is True for b in data["benchmarks"])
    assert frame.correct.tolist() == [True] * len(ids)


def test_a_bad_selection_is_a_usage_error(tmp_path: Path) -> None:
    result = pytest_run(tmp_path, "--harness", "--harness-workload", "conv")
    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage-error status
    assert "harness: unknown workload 'conv'" in result.stderr
