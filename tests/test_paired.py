"""The paired comparison of an A/B run: medians over the same pairs, what goes missing, labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from harness.compare import Options
from harness.paired import compare_paired


def ab_rows(cases: dict[str, float], reps: int = 3, n: int = 60, seed: int = 0,
            label: str = "cpu", drift: float = 0.0) -> list[dict[str, Any]]:
    """Interleaved samples of two sides; ``drift`` makes the machine's speed climb through
    each repetition, on both sides of every pair alike."""
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        speed = np.exp(np.linspace(0, drift, n))
        for case, effect in cases.items():
            for variant, scale in (("baseline", 1.0), ("candidate", effect)):
                samples = 1e-3 * scale * speed * np.exp(rng.normal(0, 0.01, n))
                rows.append({"suite": "s", "case_id": case, "adapter": "cpu",
                             "adapter_label": label, "status": "ok", "repetition": rep,
                             "variant": variant, "samples_s": samples.tolist()})
    return rows


def test_a_candidate_side_that_fails_a_case_fails_the_comparison() -> None:
    rows = ab_rows({"s/a": 1.0, "s/b": 1.0})
    rows[3].update(status="error", message="boom", samples_s=None)  # s/b, candidate, rep 0
    report = compare_paired(rows)
    assert report.lost == (1, 2) and report.failed and report.regressions == []
    assert not compare_paired(rows, Options(max_missing=0.5)).failed
    # The baseline side failing is not the candidate's loss (but that case is still missing).
    rows = ab_rows({"s/a": 1.0, "s/b": 1.0})
    rows[2].update(status="error", message="boom", samples_s=None)  # s/b, baseline, rep 0
    assert compare_paired(rows).lost == (0, 2)


def test_the_medians_are_over_the_pairs_and_a_disagreement_is_noted() -> None:
    rows = ab_rows({"s/a": 1.05})
    rows[0]["samples_s"] = rows[0]["samples_s"] + [1.0] * 200  # unpaired tail: not counted
    (only,) = compare_paired(rows).comparisons
    assert only.baseline_median_s == pytest.approx(1e-3, rel=0.01)
    assert only.ratio == pytest.approx(1.05, abs=0.01)
    assert only.note == "paired, interleaved"
    # The median of ratios is not the ratio of medians: pairs at three machine speeds, where
    # the candidate gains only at the slowest, give a paired change of 0% but medians 25%
    # apart. The note says so instead of leaving the two figures to contradict each other.
    pairs = [(1.0, 1.0)] * 20 + [(2.0, 2.0)] * 21 + [(3.0, 1.5)] * 20
    rng = np.random.default_rng(0)
    for row in rows:
        side = 0 if row["variant"] == "baseline" else 1
        row["samples_s"] = [1e-3 * p[side] * float(np.exp(rng.normal(0, 0.001))) for p in pairs]
    (only,) = compare_paired(rows).comparisons
    assert only.ratio == pytest.approx(1.0, abs=0.01)
    assert only.candidate_median_s / only.baseline_median_s == pytest.approx(0.75, abs=0.01)
    assert "the medians' own ratio (-25.0%) lies outside" in only.note


def test_adapter_options_stay_apart() -> None:
    rows = ab_rows({"s/a": 1.0}) + ab_rows({"s/a": 1.2}, label="cpu:threads=1", seed=1)
    found = {c.adapter: c for c in compare_paired(rows).comparisons}
    assert set(found) == {"cpu", "cpu:threads=1"}
    assert found["cpu:threads=1"].ratio == pytest.approx(1.2, abs=0.01)


def test_identical_timings_on_both_sides_are_the_same_not_an_error() -> None:
    rows = ab_rows({"s/a": 1.0, "s/b": 1.0})
    for row in rows:
        if row["case_id"] == "s/a":  # every pair exactly equal: Wilcoxon has nothing to rank
            row["samples_s"] = [1e-3] * 60
    report = compare_paired(rows)
    assert report.regressions == [] and not report.failed
    (same,) = [c for c in report.comparisons if c.case_id == "s/a"]
    assert same.ratio == pytest.approx(1.0)
