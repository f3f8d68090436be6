"""Operator-table arithmetic: repetitions are (run, repetition) pairs, absent operators count 0 s
in a repetition, unknown figures are left out of sums, medians ignore NaN."""

from __future__ import annotations

import math

from harness import opstats


def op(name: str, seconds: float | None, run: str = "a", rep: int = 0,
       category: str = "matmul") -> dict[str, object]:
    return {"run_id": run, "case_id": "c", "adapter": "cpu", "repetition": rep, "op": name,
            "category": category, "self_time_s": seconds}


def test_per_repetition_sums_per_key_with_zero_where_absent() -> None:
    ops = [op("mm", 1.0), op("mm", 2.0), op("mm", 5.0, rep=1), op("relu", 3.0, run="b",
                                                                  category="activation")]
    assert opstats.repetitions(ops) == [("a", 0), ("a", 1), ("b", 0)]
    assert opstats.per_repetition(ops, opstats.category_key) == {
        "matmul": [3.0, 5.0, 0.0], "activation": [0.0, 0.0, 3.0]}
    by_op = opstats.per_repetition(ops, opstats.op_key)
    assert by_op[("mm", "matmul", "")] == [3.0, 5.0, 0.0]


def test_unknown_figures_are_not_summed_and_medians_skip_nan() -> None:
    ops = [op("mm", None), op("mm", math.nan, rep=1)]
    assert opstats.per_repetition(ops, opstats.category_key) == {}
    assert opstats.median([3.0, math.nan, 1.0, 2.0]) == 2.0
    assert opstats.median([1.0, 2.0]) == 1.5
    assert math.isnan(opstats.median([]))


def test_by_case_groups_by_case_and_adapter_label() -> None:
    ops = [op("mm", 1.0), {**op("mm", 1.0), "adapter": "cpu:threads=2"}, op("x", 1.0)]
    grouped = opstats.by_case(ops)
    assert list(grouped) == [("c", "cpu"), ("c", "cpu:threads=2")]
    assert len(grouped[("c", "cpu")]) == 2


def test_a_generation_task_lists_its_operators_per_phase() -> None:
    ops = [{**op("mm", 1.0), "phase": "prefill"}, {**op("mm", 2.0), "phase": "decode"}]
    assert opstats.per_repetition(ops, opstats.op_key) == {
        ("mm [prefill]", "matmul", ""): [1.0], ("mm [decode]", "matmul", ""): [2.0]}
    assert opstats.per_repetition(ops, opstats.category_key) == {"matmul": [3.0]}
