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

import json
import math
from pathlib import Path
from typing import Any

from harness.results import ResultsError, RunWriter

ADAPTER = "pytest-benchmark"
NO_CHECK = "imported from pytest-benchmark: no correctness check ran"


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ResultsError(f"{path} is not a pytest-benchmark file (no 'benchmarks' list)")
    return data


def _number(value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else math.nan


def benchmark_row(bench: dict[str, Any]) -> dict[str, Any]:
    """One row of our schema from one pytest-benchmark benchmark entry."""
    from harness.stats import summarize, summary_columns

    stats = bench.get("stats") or {}
    extra = bench.get("extra_info") or {}
    name = str(bench.get("name") or bench.get("fullname") or "benchmark")
    params = extra.get("harness_params")
    if not isinstance(params, dict):
        raw = bench.get("params") or {}
        params = {k: v for k, v in raw.items() if isinstance(v, int | float | str | bool)}
    items = extra.get("items") if isinstance(extra.get("items"), int) else None
    row: dict[str, Any] = {
        "suite": str(extra.get("harness_suite") or "pytest-benchmark"),
        "workload": str(extra.get("harness_workload") or bench.get("group")
                        or name.split("[")[0]),
        "case_id": str(extra.get("harness_case_id") or bench.get("fullname") or name),
        "params": params,
        "adapter": str(extra.get("harness_adapter") or ADAPTER),
        "device": str(extra.get("harness_device") or ADAPTER),
        "status": "ok", "message": NO_CHECK, "correct": None,
        "loops": stats.get("iterations"), "items": items,
        "meta": {"source": "pytest-benchmark", "name": name,
                 "items_unit": extra.get("items_unit", "items")},
    }
    missing: dict[str, str] = {}
    data = [x for x in stats.get("data") or [] if _number(x) >= 0]
    if data:
        values, why_missing = summary_columns(summarize(data, items=items))
        row.update(values, samples_s=data)
        missing.update(why_missing)
    else:
        why = "the pytest-benchmark file holds no per-round data (saved without it)"
        row.update(n_samples=stats.get("rounds"),
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
    """Write the benchmarks of a pytest-benchmark JSON file as a new run folder; its path."""
    data = _load(Path(path))
    machine = data.get("machine_info") or {}
    commit = data.get("commit_info") or {}
    context = {
        "started_at": data.get("datetime"),
        "source": f"pytest-benchmark {data.get('version', '?')}: {Path(path).name}",
        "host": machine.get("node"), "python": machine.get("python_version"),
        "cpu_model": (machine.get("cpu") or {}).get("brand_raw"),
        "git_sha": commit.get("id"), "git_dirty": commit.get("dirty"),
        "command": ["harness", "import", "pytest-benchmark", str(path)],
    }
    rows = [benchmark_row(b) for b in data["benchmarks"] if isinstance(b, dict)]
    writer = RunWriter(Path(results), context)
    try:
        for row in rows:
            writer.append(row)
    finally:
        writer.close()
    return writer.path
