"""Importing other tools' results as harness runs: pytest-benchmark's JSON (``--benchmark-json``
or ``--benchmark-autosave`` files).

Each benchmark becomes one row. Benchmarks recorded through our pytest plugin carry the harness
case id, suite, parameters and adapter in ``extra_info`` and land on the same case ids as
``harness run`` rows; any other benchmark becomes suite ``pytest-benchmark`` with its test name
as the workload and ``pytest-benchmark`` as the adapter. Per-round times per call (``stats.data``,
written by ``--benchmark-json``; ``--benchmark-autosave`` needs ``--benchmark-save-data``) are
kept as ``samples_s`` and summarised exactly like our own samples; without them only the figures
pytest-benchmark stored are filled, and the rest are empty with the reason.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness import safe_json
from harness.results import ResultsError, RunWriter, stored
from harness.schema import row_problem

ADAPTER = "pytest-benchmark"
#: ``meta.check`` of an imported benchmark whose output only the test itself judged: its own
#: assertions ran, but not the harness's check, so ``correct`` stays empty. pytest-benchmark
#: leaves out a benchmark whose function raised, yet keeps one whose test failed an assertion
#: afterwards: the file cannot say whether the assertions passed, and the row does not claim it.
TEST_CHECK = "test"
#: why ``correct`` is empty on such a row (``missing.correct``).
TEST_CHECK_WHY = ("checked by the test's own assertions, not by the harness; pytest-benchmark's "
                  "file does not record whether they passed")


def _load(path: Path) -> dict[str, Any]:
    try:
        data = safe_json.read(path)
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except safe_json.JSONProblem as exc:
        raise ResultsError(f"{path} {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ResultsError(f"{path} is not a pytest-benchmark file (no 'benchmarks' list)")
    if not data["benchmarks"]:
        raise ResultsError(f"{path} holds no benchmarks: nothing to import")
    return data


def _object(value: Any, what: str) -> dict[str, Any]:
    """``value`` when it is an object, {} when absent; a :class:`ResultsError` otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ResultsError(f"{what} is not an object")
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else math.nan


def _count(value: Any) -> int | None:
    """A whole number >= 0, else None (missing): pytest-benchmark's rounds and iterations."""
    number = _number(value)
    return int(number) if number >= 0 and number.is_integer() else None


def benchmark_row(bench: dict[str, Any]) -> dict[str, Any]:
    """One row of our schema from one pytest-benchmark benchmark entry; a
    :class:`ResultsError` when the entry is not one."""
    from harness.stats import summarize, summary_columns

    if not isinstance(bench, dict):
        raise ResultsError("the entry is not an object")
    stats = _object(bench.get("stats"), "stats")
    extra = _object(bench.get("extra_info"), "extra_info")
    name = _text(bench.get("name")) or _text(bench.get("fullname")) or "benchmark"
    params = extra.get("harness_params")
    if not isinstance(params, dict):
        raw = _object(bench.get("params"), "params")
        params = {str(k): v for k, v in raw.items() if isinstance(v, int | float | str | bool)}
    items = extra.get("items")
    items = items if isinstance(items, int) and not isinstance(items, bool) and items > 0 else None
    row: dict[str, Any] = {
        "suite": _text(extra.get("harness_suite")) or "pytest-benchmark",
        "workload": (_text(extra.get("harness_workload")) or _text(bench.get("group"))
                     or name.split("[")[0]),
        "case_id": (_text(extra.get("harness_case_id")) or _text(bench.get("fullname"))
                    or name),
        "params": params,
        "adapter": _text(extra.get("harness_adapter")) or ADAPTER,
        "device": _text(extra.get("harness_device")) or ADAPTER,
        "status": "ok", "loops": _count(stats.get("iterations")), "items": items,
        "meta": {"source": "pytest-benchmark", "name": name,
                 "items_unit": _text(extra.get("items_unit")) or "items"},
    }
    missing: dict[str, str] = {}
    correct = extra.get("harness_correct")
    if isinstance(correct, bool):  # the harness's plugin ran the task's own check
        row["correct"] = correct
        if not correct:
            row["message"] = "check failed (recorded by the harness's pytest plugin)"
    else:
        row["meta"]["check"] = TEST_CHECK
        missing["correct"] = TEST_CHECK_WHY
    raw_data = stats.get("data")
    if raw_data is not None and not isinstance(raw_data, list):
        raise ResultsError("stats.data is not a list")
    data = [float(x) for x in raw_data or [] if _number(x) >= 0]
    if data:
        values, why_missing = summary_columns(summarize(data, items=items))
        row.update(values, samples_s=data)
        missing.update(why_missing)
    else:
        why = "the pytest-benchmark file holds no per-round data (saved without it)"
        row.update(n_samples=_count(stats.get("rounds")),
                   latency_median_s=_number(stats.get("median")),
                   latency_iqr_s=_number(stats.get("iqr")),
                   latency_mean_s=_number(stats.get("mean")),
                   latency_std_s=_number(stats.get("stddev")),
                   latency_min_s=_number(stats.get("min")),
                   latency_max_s=_number(stats.get("max")))
        missing.update({c: why for c in ("latency_ci_low_s", "latency_ci_high_s",
                                         "latency_p90_s", "latency_p99_s", "samples_s")})
        median = row["latency_median_s"]
        if items and median > 0:
            row["throughput_items_per_s"] = items / median
    for column in ("first_call_s", "peak_rss_bytes", "energy_j", "peak_fraction"):
        missing[column] = "not measured by pytest-benchmark"
    row["energy_source"] = "unavailable: not measured by pytest-benchmark"
    row["missing"] = missing
    return row


def import_pytest_benchmark(path: str | Path, results: str | Path) -> Path:
    """Write the benchmarks of a pytest-benchmark JSON file as a new run folder; its path.
    Every benchmark must convert to a valid row, else nothing is written."""
    data = _load(Path(path))
    try:
        machine = _object(data.get("machine_info"), "machine_info")
        commit = _object(data.get("commit_info"), "commit_info")
        cpu = _object(machine.get("cpu"), "machine_info.cpu")
    except ResultsError as exc:
        raise ResultsError(f"{path}: {exc}") from None
    dirty = commit.get("dirty")
    sha = _text(commit.get("id"))
    system = " ".join(t for t in (_text(machine.get("system")), _text(machine.get("release")))
                      if t)
    context = {
        "started_at": _text(data.get("datetime")),
        "source": f"pytest-benchmark {_text(data.get('version')) or '?'}: {Path(path).name}",
        "host": _text(machine.get("node")), "python": _text(machine.get("python_version")),
        "python_implementation": _text(machine.get("python_implementation")),
        "os": system or None, "cpu_model": _text(cpu.get("brand_raw")),
        # `-dirty` as harness runs write it (environment.git_sha), so history reads both alike.
        "git_sha": f"{sha}-dirty" if sha and dirty is True else sha,
        "git_dirty": dirty if isinstance(dirty, bool) else None,
        "git_branch": _text(commit.get("branch")), "git_project": _text(commit.get("project")),
        "git_commit_time": _text(commit.get("time")),
        # Whatever else pytest-benchmark recorded, as it recorded it.
        "commit_info": commit, "machine_info": machine,
        "command": ["harness", "import", "pytest-benchmark", str(path)],
    }
    rows = []
    for index, bench in enumerate(data["benchmarks"]):
        try:
            row = benchmark_row(bench)
        except ResultsError as exc:
            raise ResultsError(f"{path}: benchmarks[{index}]: {exc}") from None
        problem = row_problem(stored(row))
        if problem is not None:  # what the loader would refuse is not written
            raise ResultsError(f"{path}: benchmarks[{index}]: {problem}")
        rows.append(row)
    writer = RunWriter(Path(results), context)
    try:
        for row in rows:
            writer.append(row)
    finally:
        writer.close()
    return writer.path
