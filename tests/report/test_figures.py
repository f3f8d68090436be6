"""The report's tables: one cell per figure, and what a check cell says."""

from __future__ import annotations

from typing import Any

from harness.report.figures import tables


def row(**extra: Any) -> dict[str, Any]:
    return {"suite": "s", "case_id": "s/w[n=1]", "workload": "w", "params": {"n": 1},
            "adapter": "cpu", "repetition": 0, "status": "ok", "median_s": 1e-3,
            "ci_low_s": 0.9e-3, "ci_high_s": 1.1e-3, "meta": {}, "missing": {}, **extra}


def check_cell(one: dict[str, Any]) -> str:
    (table,) = tables([one])
    return table.rows[0].cells[0][-1].text


def test_a_check_cell_says_pass_fail_test_or_not_checked() -> None:
    assert check_cell(row(correct=True)) == "pass"
    assert check_cell(row(correct=False, message="off by 2")) == "FAIL"
    # An imported pytest-benchmark test: its own assertions ran, the harness's check did not.
    assert check_cell(row(correct=None, meta={"check": "test"})) == "test"
    assert check_cell(row(correct=None)) == "-"
