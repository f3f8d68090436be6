"""The pytest plugin as a user runs it, pytest in a subprocess: the harness_bench fixture in a
user's own test file, and harness cases as pytest-benchmark benchmarks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


# --- the harness_bench fixture, in a user's own test file ------------------------------------

USER_TESTS = '''
import pytest

DATA = [5, 3, 9, 1, 7] * 20
FAST = dict(min_time=0.01, max_time=0.2, min_samples=3, max_warmup_s=0.02, collect=False)


def my_sort(xs):
    return sorted(xs)


def test_sort(harness_bench):
    rows = harness_bench(my_sort, DATA, expected=sorted(DATA), **FAST)
    assert len(rows) == 1 and rows.status[0] == "ok" and rows.correct[0] == True
    assert rows.output_varies[0] == True and rows.latency_median_s[0] > 0


@pytest.mark.parametrize("n", [3])
def test_twice(harness_bench, n):
    harness_bench(sorted, DATA[:n], isolate=False, **FAST)
    harness_bench(sorted, DATA[:n], isolate=False, **FAST)


def test_wrong(harness_bench):
    harness_bench(sorted, DATA, expected=DATA, isolate=False, **FAST)
'''


@pytest.mark.slow  # pytest in a fresh interpreter, its forkserver and a worker: about 13 s
def test_the_fixture_measures_in_a_plain_pytest_run(tmp_path: Path) -> None:
    from harness import peak_cache
    from harness.roofline import Peaks

    peak_cache.store("cpu", {}, "float32", Peaks(1e11, 1e10, "seeded by the test"))
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nharness_bench_out = ini-results\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "test_user.py"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 1, result.stdout + result.stderr  # test_wrong fails
    assert "1 failed, 2 passed" in result.stdout
    assert ("harness_bench: test_user/test_wrong[] on cpu: check failed: the output differs "
            "from the expected one") in result.stdout
    (run,) = (tmp_path / "ini-results").iterdir()  # one run folder for the session
    frame = harness.load(run)
    assert frame.case_id.tolist() == ["test_user/test_sort[]", "test_user/test_twice[n=3]",
                                      "test_user/test_twice[n=3,call=2]",
                                      "test_user/test_wrong[]"]
    assert set(frame.status) == {"ok"} and frame.correct.tolist() == [True, None, None, False]
    meta = [json.loads(m) for m in frame.meta]
    assert "in_process" not in meta[0]  # its worker imported the test module
    assert meta[1]["in_process"] == "isolate=False"


def test_the_fixture_folder_is_the_option_then_the_ini_then_results(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from harness.pytest_plugin import bench_out

    def config(option: str | None, ini: str, inipath: Path | None) -> Any:
        return SimpleNamespace(getoption=lambda name, default=None: option,
                               getini=lambda name: ini, inipath=inipath,
                               rootpath=tmp_path / "root",
                               invocation_params=SimpleNamespace(dir=tmp_path / "here"))

    assert bench_out(config("out", "ini", tmp_path / "cfg/pytest.ini")) == tmp_path / "here/out"
    assert bench_out(config(None, "ini", tmp_path / "cfg/pytest.ini")) == tmp_path / "cfg/ini"
    assert bench_out(config(None, "", None)) == tmp_path / "root/results"
