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
