"""The comparison statistics on synthetic runs with known effects: verdicts, noise, BH, extras."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from harness.compare import Options, between_noise, compare, sides, spread_bar


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
    mean = report.geomeans[("s", "cpu")]
    assert mean.cases == len(CASES) and mean.ratio == pytest.approx(1.2, abs=0.02)
    # Its interval: the geometric means of the cases' bounds, around the mean itself.
    assert 1.1 < mean.low < mean.ratio < mean.high < 1.3
    lows = [c.ratio_low for c in report.comparisons]
    assert mean.low == pytest.approx(math.exp(np.mean(np.log(lows))))


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


def drifting(medians: dict[str, float], reps: int, rng: np.random.Generator,
             sway: float = 0.08, effect: float = 1.0) -> list[dict[str, Any]]:
    """A run on a machine whose speed drifts: each case's repetition finds the machine at
    another speed (±8% σ: one-second medians of one loop range over ±20% on a shared VM), and
    the speed wanders further while it samples."""
    out = []
    for rep in range(reps):
        for case, median in medians.items():
            level = median * effect * math.exp(rng.normal(0, sway))
            wander = np.exp(np.cumsum(rng.normal(0, 0.003, 60)))
            samples = level * wander * np.exp(rng.normal(0, 0.03, 60))
            out.append({"suite": "s", "case_id": case, "adapter": "cpu", "status": "ok",
                        "repetition": rep, "samples_s": samples.tolist()})
    return out


@pytest.mark.parametrize("reps", [2, 3])
def test_sequential_a_a_with_few_repetitions_on_a_drifting_machine_does_not_alarm(
        reps: int) -> None:
    naive = 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        report = compare(drifting(CASES, reps, rng), drifting(CASES, reps, rng))
        assert not report.failed, [c for c in report.comparisons if c.verdict == "slower"]
        # Without the small-sample bar (δ = threshold or the baseline's noise) some of these
        # A/A cases would have read as confirmed slowdowns.
        naive += sum(c.p_slower < 0.01 and c.ratio_low > 1 + max(
            0.05, 0 if math.isnan(c.noise) else c.noise) for c in report.comparisons)
        assert all(c.spread > 0.05 for c in report.comparisons)  # the bar that held them
    assert naive > 0


def test_the_small_sample_bar_leaves_a_real_slowdown_visible() -> None:
    rng = np.random.default_rng(1)
    report = compare(drifting(CASES, 5, rng, sway=0.02),
                     drifting(CASES, 5, rng, sway=0.02, effect=1.15))
    found = [c.verdict for c in report.comparisons]
    assert found.count("slower") >= 6, found
    assert all(c.delta < 0.12 for c in report.comparisons)


def test_spread_bar_is_a_t_quantile_on_the_repetitions_spread() -> None:
    from scipy.stats import t

    assert math.isnan(spread_bar([[1.0], [1.1]], 0.01))  # no degree of freedom
    assert spread_bar([[1.0, 1.0], [2.0, 2.0]], 0.01) == 0.0  # no spread within a side
    logs = np.log([1.0, 1.02, 0.98, 1.01])
    one = math.expm1(t.ppf(0.99, 3) * logs.std(ddof=1) / 2)
    assert spread_bar([[1.0, 1.02, 0.98, 1.01]], 0.01) == pytest.approx(one)
    # Two groups: pooled σ, √(1/n_b + 1/n_c), df = n_b + n_c − 2; fewer repetitions, wider bar.
    a = [1.0, 1.03, 0.97]
    b = [1.1 * x for x in a]  # the same spread on a log scale
    assert spread_bar([a, b], 0.01) == pytest.approx(math.expm1(
        t.ppf(0.99, 4) * np.log(a).std(ddof=1) * math.sqrt(2 / 3)), rel=1e-3)
    assert spread_bar([a[:2], b[:2]], 0.01) > spread_bar([a, b], 0.01)


def test_one_repetition_a_side_says_the_run_to_run_noise_is_unmeasured() -> None:
    (only,) = compare(rows({"s/a": 1e-3}, reps=1), rows({"s/a": 1e-3}, reps=1, seed=1)).comparisons
    assert math.isnan(only.spread) and "not measured" in only.note


def test_a_candidate_without_rows_or_beyond_the_missing_limit_fails_as_missing() -> None:
    base = rows(CASES, reps=2)
    empty = compare(base, [])
    assert empty.failed and empty.regressions == [] and empty.lost == (8, 8)
    assert {c.verdict for c in empty.comparisons} == {"missing"}
    assert "lacks 8 of the 8" in empty.missing_failure
    one_lost = [r for r in rows(CASES, reps=2, seed=1) if r["case_id"] != "s/w[i=0]"]
    assert compare(base, one_lost).failed  # default: no case may go missing
    assert not compare(base, one_lost, Options(max_missing=0.2)).failed  # 1 of 8 allowed
    # Cases new in the candidate, or that the baseline itself failed, are not the candidate's
    # loss; nothing compared at all is no pass.
    broken = [{**r, "status": "error", "samples_s": None} if r["case_id"] == "s/w[i=0]" else r
              for r in base]
    new = rows({**CASES, "s/new": 1e-3}, reps=2, seed=1)
    assert compare(broken, [r for r in new if r["case_id"] != "s/w[i=0]"]).lost == (0, 7)
    assert "nothing to compare" in compare([], []).missing_failure
    with pytest.raises(ValueError, match="max_missing"):
        Options(max_missing=1.5)


def test_adapters_with_other_options_and_ab_sides_are_never_pooled() -> None:
    base = rows({"s/a": 1e-3}, reps=3)
    threads = [{**r, "adapter_label": "cpu:threads=1"} for r in rows({"s/a": 2e-3}, reps=3)]
    sided = [{**r, "variant": "baseline"} for r in rows({"s/a": 3e-3}, reps=3)]
    found = sides(base + threads + sided)
    assert sorted(k[2] for k in found) == ["cpu", "cpu [baseline]", "cpu:threads=1"]
    assert found[("s", "s/a", "cpu:threads=1")].median == pytest.approx(2e-3, rel=0.05)
