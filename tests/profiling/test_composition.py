"""Profiles of workloads whose composition is known, on the real runtimes that run here (torch
on the CPU, XLA:CPU, ONNX Runtime's CPU provider), through ``harness run --profile`` in each
way runs go: isolated workers (the default), ``--no-isolate``, ``--repeat`` and a local Ray
cluster."""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import harness
from harness.cli import main
from harness.results import read_rows

SUITE = Path(__file__).parent / "composition.py"
FAST = ["--min-time", "0.05", "--min-samples", "3", "--max-time", "2", "--no-collect"]
ADAPTERS = ["-a", "cpu", "-a", "xla-cpu", "-a", "onnxruntime"]

pytestmark = pytest.mark.slow


def profiled_run(out: Path, *args: str) -> Path:
    # Adapters one after another: what is tested is each one's profile, not their speedups.
    assert main(["run", "--profile", "--no-interleave", "-s", str(SUITE), "--out", str(out),
                 *FAST, *args]) == 0
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def shares(run: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(workload, adapter) → category → share of the profiled wall time."""
    ops = harness.load_ops(run)
    out: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in ops.itertuples():
        workload = str(row.case_id).split("/", 1)[1].split("[", 1)[0]
        out[(workload, str(row.adapter))][str(row.category)] += float(row.share)
    return out


def check_trust_figures(row: dict[str, Any], run: Path) -> None:
    assert row["profile_calls"] >= 5
    # cProfile's own bookkeeping between function events is nobody's self time: on call-heavy
    # Python its coverage is lower, and says so.
    least = 0.5 if row["profiler"] == "cProfile" else 0.9
    assert least <= row["profile_coverage"] <= 1.05, row
    assert row["profile_overhead"] > 0
    if row["profile_trace"] is not None:
        trace = json.loads(gzip.decompress((run / row["profile_trace"]).read_bytes()))
        assert isinstance(trace["traceEvents"], list) and trace["traceEvents"]


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("isolated")
    return profiled_run(out, "-w", "matmul_chain", "-w", "elementwise", "-w",
                        "python_function", *ADAPTERS)


@pytest.mark.parametrize("adapter", ["cpu", "xla-cpu", "onnxruntime"])
def test_a_chain_of_matmuls_is_matmul_dominant(isolated: Path, adapter: str) -> None:
    found = shares(isolated)[("matmul_chain", adapter)]
    assert max(found, key=lambda c: found[c]) == "matmul" and found["matmul"] > 0.5, found


@pytest.mark.parametrize("adapter", ["cpu", "xla-cpu", "onnxruntime"])
def test_an_elementwise_expression_is_elementwise_or_memory_dominant(isolated: Path,
                                                                     adapter: str) -> None:
    found = shares(isolated)[("elementwise", adapter)]
    assert found["elementwise"] + found["memory"] > 0.5, found
    assert found.get("matmul", 0.0) == 0.0


def test_cprofile_names_a_plain_python_function(isolated: Path) -> None:
    ops = harness.load_ops(isolated)
    mine = ops[ops.case_id.str.contains("python_function") & (ops.adapter == "cpu")]
    # The unattributed remainder (cProfile's own bookkeeping on call-heavy code) is a line of its
    # own, not a function: the top function is what the profile names.
    functions = mine[mine.category != "unattributed"]
    top = functions.sort_values("self_time_s", ascending=False).iloc[0]
    assert top.op.endswith("count_primes_below") or "genexpr" in top.op, mine.op.tolist()
    assert any(op.endswith("count_primes_below") for op in mine.op)
    (row,) = [r for r in read_rows(isolated)
              if "python_function" in r["case_id"] and r["adapter"] == "cpu"]
    assert row["profiler"] == "cProfile" and row["profile_trace"] is None
    assert "no trace" in row["missing"]["profile_trace"]


@pytest.mark.parametrize("adapter", ["xla-cpu", "onnxruntime"])
def test_a_plain_python_function_is_refused_where_it_cannot_run(isolated: Path,
                                                               adapter: str) -> None:
    (row,) = [r for r in read_rows(isolated)
              if "python_function" in r["case_id"] and r["adapter"] == adapter]
    assert row["status"] == "skipped" and "Python" in row["message"]


def test_every_profiled_row_has_trust_figures_and_a_valid_trace(isolated: Path) -> None:
    rows = [r for r in read_rows(isolated) if r["status"] == "ok"]
    assert len(rows) == 7
    for row in rows:
        check_trust_figures(row, isolated)
    traces = sorted((isolated / "traces").iterdir())
    assert len(traces) == 6  # every ok row but cProfile's


def test_profiling_runs_inline_and_with_repetitions(tmp_path: Path) -> None:
    run = profiled_run(tmp_path / "inline", "--no-isolate", "--repeat", "2", "-w",
                       "matmul_chain", "-a", "cpu", "-a", "onnxruntime")
    ops = harness.load_ops(run)
    assert set(ops.repetition) == {0.0, 1.0} and set(ops.adapter) == {"cpu", "onnxruntime"}
    for row in read_rows(run):
        check_trust_figures(row, run)
    assert len(list((run / "traces").iterdir())) == 4  # one per case, adapter and repetition


def test_profiling_on_a_cluster_brings_ops_and_traces_home(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the [cluster] extra (Ray) is not installed")
    run = profiled_run(tmp_path, "--cluster", "local", "-w", "matmul_chain", "-a", "cpu")
    (row,) = read_rows(run)
    check_trust_figures(row, run)
    assert (run / row["profile_trace"]).is_file()
    assert harness.load_ops(run).category.tolist()[0] == "matmul"


def test_profiling_leaves_the_timing_of_a_busy_wait_unchanged(tmp_path: Path) -> None:
    """A call that spins 2 ms: within one profiled run, the profiled calls (cProfile, which
    may slow them: it traces each of the loop's clock reads) are their own pass, and the timed
    samples still show 2 ms.
    The fastest sample is compared, not the median: on a shared machine preemption stretches
    some calls, which is load, not the profiler."""
    run = profiled_run(tmp_path, "-w", "busy_wait", "-a", "cpu")
    (row,) = read_rows(run)
    assert row["profiler"] == "cProfile" and row["profile_calls"] >= 5
    assert 0.002 <= row["latency_min_s"] < 0.0025
    assert row["profile_wall_s"] >= row["latency_min_s"]  # the spin is never profiled shorter
