"""Where a slower case's time went: categories and operators of two runs' profiles, per-call
changes, their part of the whole change, and the noise of the profiled repetitions."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.compare import Comparison
from harness.profile_diff import diff_profiles
from harness.report.comparison import render_markdown, render_text
from harness.results import RunWriter
from tests.report.test_comparison import report
from tests.report.test_profile import op_row, write_ops

CASE = "s/w[n=1]"
SLOWER = Comparison("s", CASE, "cpu", "slower", ratio=1.2, ratio_low=1.1, ratio_high=1.3,
                    delta=0.05, baseline_median_s=1e-3, candidate_median_s=1.2e-3,
                    repetitions=(3, 3))


def ops(matmul: list[float], gelu: list[float], adapter: str = "cpu",
        run_id: str = "r") -> list[dict[str, Any]]:
    """A profile per repetition: aten::addmm (matmul) and aten::gelu (activation), seconds."""
    out = []
    for rep, (mm, act) in enumerate(zip(matmul, gelu, strict=True)):
        wall = mm + act
        out += [op_row(CASE, adapter, "aten::addmm", "matmul", mm, wall, repetition=rep,
                       run_id=run_id),
                op_row(CASE, adapter, "aten::gelu", "activation", act, wall, repetition=rep,
                       run_id=run_id)]
    return out


def test_the_change_is_split_by_category_and_operator_largest_first() -> None:
    base = ops([1.0e-3, 1.02e-3, 0.98e-3], [2e-4, 2.1e-4, 1.9e-4])
    cand = ops([1.2e-3, 1.21e-3, 1.19e-3], [2.05e-4, 1.95e-4, 2.0e-4])
    (diff,) = diff_profiles([SLOWER], base, cand)
    assert diff.repetitions == (3, 3)
    # Medians of the repetitions' totals: 1.2 ms and 1.405 ms (1.2 + 0.205, 1.41 + 0.195, ...).
    assert diff.baseline_s == pytest.approx(1.2e-3)
    assert diff.candidate_s == pytest.approx(1.405e-3)
    matmul, activation = diff.categories
    assert (matmul.name, activation.name) == ("matmul", "activation")
    assert matmul.delta_s == pytest.approx(2e-4)
    assert matmul.contribution == pytest.approx(2e-4 / 2.05e-4)
    assert matmul.within_noise is False  # 1.19–1.21 ms against 0.98–1.02 ms
    assert activation.delta_s == pytest.approx(0.0, abs=1e-12)
    assert activation.within_noise is True  # the ranges overlap
    assert [(p.name, p.category) for p in diff.operators] == [
        ("aten::addmm", "matmul"), ("aten::gelu", "activation")]
    assert diff.within_noise is False and diff.note == ""


def test_one_repetition_per_side_leaves_the_noise_unknown() -> None:
    (diff,) = diff_profiles([SLOWER], ops([1e-3], [2e-4]), ops([1.2e-3], [2e-4]))
    assert [p.within_noise for p in diff.categories] == [None, None]


def test_an_operator_new_in_the_candidate_counts_from_zero() -> None:
    cand = [*ops([1e-3, 1e-3], [2e-4, 2e-4]),
            op_row(CASE, "cpu", "aten::copy_", "memory", 3e-4, 1.5e-3, repetition=1,
                   run_id="r")]
    (diff,) = diff_profiles([SLOWER], ops([1e-3, 1e-3], [2e-4, 2e-4]), cand)
    first = diff.categories[0]
    # Absent from repetition 0 (0 s) and 0.3 ms in repetition 1: the median is 0.15 ms.
    assert (first.name, first.baseline_s, first.candidate_s) == ("memory", 0.0,
                                                                 pytest.approx(1.5e-4))
    # One candidate repetition has none, like the baseline: the change is within the noise.
    assert first.within_noise is True
    assert first.contribution == pytest.approx(1.0)


def test_a_profile_that_did_not_grow_says_so() -> None:
    (diff,) = diff_profiles([SLOWER], ops([1e-3], [2e-4]), ops([0.9e-3], [2e-4]))
    assert math.isnan(diff.categories[0].contribution)
    assert diff.note.startswith("the profiled time per call did not grow")


def test_only_slower_cases_and_only_profiled_runs() -> None:
    same = Comparison("s", CASE, "cpu", "same", ratio=1.0)
    assert diff_profiles([same], ops([1e-3], [2e-4]), ops([1e-3], [2e-4])) == []
    assert diff_profiles([SLOWER], [], []) == []  # neither run profiled: nothing to say
    (diff,) = diff_profiles([SLOWER], [], ops([1e-3], [2e-4]))
    assert diff.note == "no profile in the baseline (run it with --profile)"
    assert diff.categories == ()


def test_an_adapter_name_finds_its_one_labelled_profile() -> None:
    base, cand = ops([1e-3], [2e-4], "cpu:threads=1"), ops([2e-3], [2e-4], "cpu:threads=1")
    (diff,) = diff_profiles([SLOWER], base, cand)
    assert diff.categories[0].delta_s == pytest.approx(1e-3)
    two = [*cand, *ops([2e-3], [2e-4], "cpu:threads=2")]
    (diff,) = diff_profiles([SLOWER], [*base, *ops([1e-3], [2e-4], "cpu:threads=2")], two)
    assert diff.note.startswith("no profile in the baseline and candidate")


def test_text_and_markdown_carry_the_diff_before_the_summary() -> None:
    base = ops([1.0e-3, 1.02e-3, 0.98e-3], [2e-4, 2.1e-4, 1.9e-4])
    cand = ops([1.2e-3, 1.21e-3, 1.19e-3], [2.05e-4, 1.95e-4, 2.0e-4])
    cand += [op_row(CASE, "cpu", "<b>|x", "other", 1e-6, 1.4e-3, run_id="r")]
    diffs = diff_profiles([SLOWER], base, cand)
    lines = render_text(report(SLOWER), diffs).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("where the slower"))
    assert lines[start + 2].startswith(f"{CASE} on cpu: timed +20.0%; profiled 1.2 ms → ")
    assert lines[start + 3].split() == ["category", "baseline", "candidate", "change", "of",
                                        "the", "change", "note"]
    assert lines[start + 5].split() == ["matmul", "1", "ms", "1.2", "ms", "+200", "µs",
                                        "97.6%"]
    assert lines[start + 6].split()[-2:] == ["within", "noise"]
    assert lines[-1] == "1 confirmed regression (1 slower)"
    text = render_markdown(report(SLOWER), "t", diffs)
    assert "### Where the time went" in text
    assert "| matmul | 1 ms | 1.2 ms | +200 µs | 97.6% |  |" in text
    assert "&lt;b&gt;&#124;x" in text and "<b>" not in text


def run_with_profile(results: Path, scale: float, seed: int) -> Path:
    """Three repetitions of one case, timed around 1 ms × scale and profiled likewise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    writer = RunWriter(results, {"host": "test"})
    for rep in range(3):
        samples = (1e-3 * scale * np.exp(rng.normal(0, 0.02, 40))).tolist()
        writer.append({"suite": "s", "workload": "w", "case_id": CASE, "adapter": "cpu",
                       "adapter_label": "cpu", "status": "ok", "repetition": rep,
                       "samples_s": samples})
    writer.close()
    matmul = [(scale - 0.2) * 1e-3 * (1 + 0.01 * rep) for rep in range(3)]
    write_ops(writer.path, ops(matmul, [2e-4] * 3, run_id=writer.path.name))
    return writer.path


def test_harness_compare_prints_where_the_time_went(tmp_path: Path, capsys: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it
    base = run_with_profile(tmp_path, 1.0, seed=1)
    cand = run_with_profile(tmp_path, 1.3, seed=2)
    summary = tmp_path / "summary.md"
    assert main(["compare", str(base), str(cand), "--markdown", str(summary)]) == 1
    out = capsys.readouterr().out
    assert f"{CASE} on cpu: timed +" in out and "matmul" in out and "aten::addmm" in out
    assert "### Where the time went" in summary.read_text(encoding="utf-8")
