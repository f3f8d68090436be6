"""The comparison statistics on synthetic runs with known effects: verdicts, noise, BH, extras."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from harness.compare import Options, between_noise, compare, sides


def rows(medians: dict[str, float], reps: int = 5, n: int = 60, seed: int = 0,
         process_noise: float = 0.01, **extra: Any) -> list[dict[str, Any]]:
    """A run: per case, ``reps`` repetitions of ``n`` lognormal samples; each repetition's
    level shifted by its own between-process noise, as on a real machine."""
    rng = np.random.default_rng(seed)
    out = []
    for case, median in medians.items():
        for rep in range(reps):
            level = median * math.exp(rng.normal(0, process_noise))
            samples = (level * np.exp(rng.normal(0, 0.03, n))).tolist()
            out.append({"suite": "s", "case_id": case, "adapter": "cpu", "status": "ok",
                        "repetition": rep, "samples_s": samples, **extra})
    return out


CASES = {f"s/w[i={i}]": 1e-3 * (1 + i) for i in range(8)}


def verdicts(baseline: list[dict[str, Any]], candidate: list[dict[str, Any]],
             **options: Any) -> dict[str, str]:
    report = compare(baseline, candidate, Options(**options))
    return {c.case_id: c.verdict for c in report.comparisons}


def test_same_code_in_other_processes_is_never_a_regression() -> None:
    for seed in range(5):
        found = verdicts(rows(CASES, seed=seed), rows(CASES, seed=100 + seed))
        assert "slower" not in found.values(), (seed, found)


def test_a_ten_percent_slowdown_of_one_case_is_flagged_for_that_case_alone() -> None:
    slowed = dict(CASES)
    slowed["s/w[i=3]"] *= 1.10
    report = compare(rows(CASES, seed=1), rows(slowed, seed=2))
    found = {c.case_id: c for c in report.comparisons}
    assert found["s/w[i=3]"].verdict == "slower"
    assert found["s/w[i=3]"].ratio == pytest.approx(1.10, abs=0.03)
    assert found["s/w[i=3]"].ratio_low > 1.05
    assert [c.case_id for c in report.regressions] == ["s/w[i=3]"]


def test_a_speedup_is_faster_and_not_a_regression() -> None:
    quick = {k: v * 0.8 for k, v in CASES.items()}
    report = compare(rows(CASES, seed=1), rows(quick, seed=2))
    assert {c.verdict for c in report.comparisons} == {"faster"}
    assert report.regressions == []


def test_a_slowdown_within_the_baselines_own_noise_is_not_confirmed() -> None:
    # 8% between-process noise: a 6% slowdown cannot be told apart from it.
    noisy = dict(process_noise=0.08)
    slowed = {k: v * 1.06 for k, v in CASES.items()}
    report = compare(rows(CASES, seed=1, **noisy), rows(slowed, seed=2, **noisy))
    assert report.regressions == []
    # The measured noise raised the bar above the 5% threshold (for most cases: five
    # repetitions estimate a spread only roughly).
    assert np.median([c.delta for c in report.comparisons]) > 0.05


def test_one_repetition_per_side_still_compares_with_the_threshold() -> None:
    slowed = {k: v * 1.2 for k, v in CASES.items()}
    found = verdicts(rows(CASES, reps=1, seed=1), rows(slowed, reps=1, seed=2))
    assert set(found.values()) == {"slower"}


def test_missing_and_failed_cases_are_missing_with_the_reason() -> None:
    base = rows({"s/a": 1e-3, "s/b": 1e-3, "s/c": 1e-3}, reps=2)
    cand = rows({"s/a": 1e-3, "s/c": 1e-3}, reps=2)
    for row in cand:
        if row["case_id"] == "s/c":
            row.update(status="error", message="timing failed: boom", samples_s=None)
    report = compare(base, cand)
    found = {c.case_id: c for c in report.comparisons}
    assert found["s/b"].verdict == "missing" and found["s/b"].note == "only in the baseline"
    assert found["s/c"].verdict == "missing"
    assert found["s/c"].note == "candidate: error: timing failed: boom"
    assert found["s/a"].verdict in ("same", "inconclusive")


def test_p_values_are_corrected_across_cases() -> None:
    report = compare(rows(CASES, seed=1), rows(CASES, seed=2))
    raw_count = len(report.comparisons)
    assert raw_count == len(CASES)
    assert all(0 <= c.p_slower <= 1 and 0 <= c.p_faster <= 1 for c in report.comparisons)


def test_between_noise_is_a_robust_relative_spread() -> None:
    assert math.isnan(between_noise([1.0, 1.1]))
    assert between_noise([1.0, 1.0, 1.0]) == 0.0
    spread = between_noise([1.0, 1.02, 0.98, 1.0, 5.0])  # one odd process barely counts
    assert 0.01 < spread < 0.04


def test_memory_growth_beyond_its_threshold_is_a_regression() -> None:
    base = rows({"s/a": 1e-3}, peak_rss_bytes=100e6)
    cand = rows({"s/a": 1e-3}, seed=3, peak_rss_bytes=130e6)
    report = compare(base, cand, Options(memory_threshold=0.2))
    (only,) = report.comparisons
    assert only.memory_ratio == pytest.approx(1.3)
    assert only.other_regressions == ("peak memory +30.0% (limit 20%)",)
    assert only.regression
    assert compare(base, cand).regressions == []  # without the option, memory is not judged


def test_geometric_mean_per_suite() -> None:
    slowed = {k: v * 1.2 for k, v in CASES.items()}
    report = compare(rows(CASES, seed=1), rows(slowed, seed=2))
    mean, n = report.geomeans[("s", "cpu")]
    assert n == len(CASES) and mean == pytest.approx(1.2, abs=0.02)


def test_samples_stored_as_json_text_are_read() -> None:
    import json

    (row,) = rows({"s/a": 1e-3}, reps=1, n=5)
    row["samples_s"] = json.dumps(row["samples_s"])
    (side,) = sides([row]).values()
    assert len(side.samples[0]) == 5


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        Options(alpha=2)
    with pytest.raises(ValueError, match="threshold"):
        Options(threshold=-0.1)


def test_device_memory_is_compared_where_there_is_one_not_mixed_with_host_rss() -> None:
    base = rows({"s/a": 1e-3}, peak_rss_bytes=1e9, peak_device_bytes=100e6)
    cand = rows({"s/a": 1e-3}, seed=3, peak_rss_bytes=1e9, peak_device_bytes=150e6)
    (only,) = compare(base, cand, Options(memory_threshold=0.2)).comparisons
    assert only.memory_ratio == pytest.approx(1.5)  # mixed with RSS it would read ~1.0
    assert only.other_regressions == ("peak memory +50.0% (limit 20%)",)
