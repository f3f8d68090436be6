"""The terminal table: grouped by workload, varying parameters as columns, gaps shown as dashes."""

from __future__ import annotations

from typing import Any

from harness.report.table import render


def row(impl: str, median: float | None, **extra: Any) -> dict[str, Any]:
    return {"suite": "s", "workload": "w", "case_id": f"s/w[n=1,impl={impl}]",
            "params": {"n": 1, "impl": impl}, "adapter": "cpu", "status": "ok",
            "latency_median_s": median, "latency_ci_low_s": 0.99e-3, "latency_ci_high_s": 1.02e-3,
            "latency_p99_s": 2e-3, "p99_low_confidence": True, "throughput_items_per_s": 1000.0,
            "peak_fraction": 0.5, "peak_rss_bytes": 2**20, "correct": True,
            "meta": {"items_unit": "lookups"}, "message": "", **extra}


def test_groups_by_workload_with_varying_parameters_as_columns() -> None:
    text = render([row("a", 1e-3), row("b", 2e-3, correct=False, message="check failed: x")])
    lines = text.splitlines()
    assert lines[0] == "s/w  n=1"
    assert lines[1].split() == ["impl", "adapter", "median", "95%", "CI", "p99", "throughput",
                                "%", "peak", "peak", "RSS", "check"]
    assert lines[3].split() == ["a", "cpu", "1", "ms", "±2.0%", "2", "ms*", "1", "klookups/s",
                                "50%", "1", "MiB", "pass"]
    assert lines[4].split()[-1] == "FAIL"
    assert "* p99 from fewer than 662 samples" in text
    assert "  s/w[n=1,impl=b] on cpu: check failed: x" in lines


def test_error_rows_show_status_and_dashes() -> None:
    text = render([row("a", None, status="error", message="timing failed: boom")])
    assert text.splitlines()[3].split() == ["cpu", "error", "-", "-", "-", "-", "-", "-"]
    assert "timing failed: boom" in text


def test_several_adapters_show_speedup_over_the_reference_on_the_same_case() -> None:
    rows = [row("a", 4e-3), row("b", 1e-3),
            row("a", 1e-3, adapter="xla-cpu"), row("b", 2e-3, adapter="xla-cpu", correct=False),
            row("a", None, adapter="onnxruntime", status="skipped", message="no kernel")]
    lines = render(rows).splitlines()
    assert lines[1].split()[:4] == ["impl", "adapter", "median", "vs"]
    cells = {(line.split()[0], line.split()[1]): line.split() for line in lines[3:8]}
    assert cells[("a", "cpu")][4] == "1×"
    assert cells[("a", "xla-cpu")][4] == "4×"  # 4 ms on cpu / 1 ms here
    assert cells[("b", "xla-cpu")][4] == "0.5×"
    assert cells[("b", "xla-cpu")][-1] == "FAIL"  # correctness stays beside the speedup
    assert cells[("a", "onnxruntime")][2:] == ["skipped", *["-"] * 7]


def test_the_reference_can_be_changed_and_a_single_adapter_has_no_speedup() -> None:
    rows = [row("a", 4e-3), row("a", 1e-3, adapter="xla-cpu")]
    assert "vs xla-cpu" in render(rows, reference="xla-cpu").splitlines()[1]
    assert "vs " not in render([row("a", 4e-3)])
    assert "vs " not in render(rows, reference="tpu")  # not in the run: no column


def test_peak_shows_the_ceiling_fraction_else_the_measured_roof_marked() -> None:
    from harness.report.table import _figures

    base = {"status": "ok", "latency_median_s": 1e-3, "meta": {}}
    with_ceiling = _figures({**base, "peak_fraction": 0.25, "attainable_fraction": 0.9})
    without = _figures({**base, "peak_fraction": float("nan"), "attainable_fraction": 1.09})
    neither = _figures(base)
    assert "25%" in with_ceiling[4] and "†" not in with_ceiling[4]
    assert without[4].endswith("†") and without[4].startswith("109")
    assert neither[4] == "-"


def test_an_interleaved_run_shows_its_measured_speedup_with_the_interval() -> None:
    interleaved = {"interleaved": True, "speedup_reference": "cpu"}
    rows = [row("a", 4e-3, adapter_label="cpu", **interleaved),
            row("a", 1e-3, adapter_label="cpu:threads=1", speedup=1.47, speedup_ci_low=1.41,
                speedup_ci_high=1.52, **interleaved),
            row("b", 1e-3, adapter_label="cpu", **interleaved),
            row("b", 1e-3, adapter_label="cpu:threads=1", speedup=1.01, speedup_ci_low=0.98,
                speedup_ci_high=1.03, **interleaved)]
    text = render(rows)
    lines = text.splitlines()
    assert lines[1].split()[:4] == ["impl", "adapter", "median", "vs"]
    cells = {(line.split()[0], line.split()[1]): line for line in lines[3:7]}
    # the measured figure, not the ratio of the medians (4×); the adapters by their labels
    assert "1.47× (1.41–1.52)" in cells[("a", "cpu:threads=1")]
    assert "~1.01× (0.98–1.03)" in cells[("b", "cpu:threads=1")]  # holds 1: no clear difference
    assert "reference" in cells[("a", "cpu")]
    assert "~: the interval holds 1.00×, no clear difference" in text


def test_every_table_names_the_adapter_by_its_label() -> None:
    label = {"adapter_label": "cpu:threads=1"}
    loop = row("a", 1e-3, **label)
    load = row("a", 1e-3, scenario="single-stream", achieved_qps=900.0, queries=900, **label)
    generated = row("a", 1e-3, ttft_s=1e-3, tpot_s=1e-4, **label)
    text = render([loop, load, generated])
    named = [line.split() for line in text.splitlines()
             if {"cpu", "cpu:threads=1"} & set(line.split()[:3])]
    # the loop table (both loop rows), the generation table and the load table
    assert len(named) == 4 and all("cpu:threads=1" in cells for cells in named), named
    assert any(cells[0] == "single-stream" for cells in named)
    assert "generation" in text.splitlines()
