"""Tests for harness.stats: median CI from order statistics, percentiles, flags, missing figures."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, fields

import numpy as np
import pytest
from scipy.stats import binom

from harness.stats import (
    EXACT_MAX_N,
    Summary,
    median_ci,
    median_ci_min_samples,
    median_ci_rank,
    summarize,
)


def _reference_rank(n: int, confidence: float) -> int | None:
    """Largest j with 1 - 2*P(B <= j-1) >= confidence, B ~ Binomial(n, 1/2), via SciPy."""
    ks = np.arange(1, n // 2 + 1)
    if ks.size == 0:
        return None
    coverage = 1.0 - 2.0 * binom.cdf(ks - 1, n, 0.5)
    ok = ks[coverage >= confidence]
    return int(ok.max()) if ok.size else None


def _coverage(n: int, j: int) -> float:
    return float(1.0 - 2.0 * binom.cdf(j - 1, n, 0.5))


# --- median_ci: hand-checked cases -------------------------------------------------------------


def test_n10_ci_is_x2_x9_with_hand_computed_coverage() -> None:
    # P(B <= 1) = (1 + 10) / 1024, so j = 2 covers 1 - 22/1024 = 0.978515625 >= 0.95,
    # while j = 3 covers 1 - 2*(1 + 10 + 45)/1024 = 0.890625 < 0.95.
    assert 1 - 2 * (math.comb(10, 0) + math.comb(10, 1)) / 2**10 == pytest.approx(0.978515625)
    assert 1 - 2 * sum(math.comb(10, i) for i in range(3)) / 2**10 < 0.95
    assert median_ci_rank(10) == 2
    assert median_ci(np.arange(1.0, 11.0)) == (2.0, 9.0)


def test_n6_is_full_range_and_n5_is_nan() -> None:
    # n=6: coverage of [x_(1), x_(6)] is 1 - 2/64 = 0.96875; n=5: 1 - 2/32 = 0.9375 < 0.95.
    assert median_ci([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]) == (1.0, 6.0)
    low, high = median_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert math.isnan(low) and math.isnan(high)
    assert median_ci_rank(5) is None
    assert all(math.isnan(v) for v in median_ci([]))


def test_unsorted_input_is_sorted_first() -> None:
    assert median_ci([9.0, 1.0, 10.0, 3.0, 2.0, 8.0, 4.0, 7.0, 6.0, 5.0]) == (2.0, 9.0)


def test_minimum_sample_counts() -> None:
    assert median_ci_min_samples(0.95) == 6
    assert median_ci_min_samples(0.99) == 8  # 1 - 2/128 = 0.984 < 0.99 <= 1 - 2/256
    assert median_ci_min_samples(0.90) == 5  # 1 - 2/16 = 0.875 < 0.90 <= 1 - 2/32
    # An exact tie (coverage of [x_(1), x_(2)] is exactly 0.5) counts as reaching it.
    assert median_ci_min_samples(0.5) == 2
    assert median_ci([1.0, 2.0], confidence=0.5) == (1.0, 2.0)


def test_confidence_changes_the_interval() -> None:
    x = np.arange(1.0, 101.0)
    # SciPy reference: j = 40 at 95%, 37 at 99%, 42 at 90% for n = 100.
    assert median_ci(x, 0.95) == (40.0, 61.0)
    assert median_ci(x, 0.99) == (37.0, 64.0)
    assert median_ci(x, 0.90) == (42.0, 59.0)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 1.5])
def test_bad_confidence_raises(bad: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        median_ci([1.0] * 10, bad)


def test_median_ci_rejects_nan() -> None:
    with pytest.raises(ValueError, match="finite"):
        median_ci([1.0, 2.0, float("nan"), 4.0, 5.0, 6.0])


# --- median_ci: against SciPy ------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.95, 0.99, 0.90])
def test_exact_rank_matches_scipy(confidence: float) -> None:
    for n in range(0, EXACT_MAX_N + 1):
        assert median_ci_rank(n, confidence) == _reference_rank(n, confidence), n


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_normal_approximation_within_one_index_of_exact(confidence: float) -> None:
    exact_matches = 0
    total = 0
    for n in range(EXACT_MAX_N + 1, 3001):
        j = median_ci_rank(n, confidence)
        ref = _reference_rank(n, confidence)
        assert j is not None and ref is not None
        assert abs(j - ref) <= 1, n
        # With the continuity correction the approximation errs, if at all, on the safe side
        # (one index wider) in this range, so the coverage still reaches the confidence.
        assert _coverage(n, j) >= confidence - 1e-4, n
        exact_matches += j == ref
        total += 1
    assert exact_matches / total >= 0.98


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_large_n_interval_values(n: int) -> None:
    ref = _reference_rank(n, 0.95)
    assert ref is not None
    low, high = median_ci(np.arange(1.0, n + 1.0))
    assert abs(low - ref) <= 1
    assert low + high == n + 1  # symmetric: k = n - j + 1
    if n == 10_000:
        assert (low, high) == (4902.0, 5099.0)


def test_ci_brackets_median_and_is_nested() -> None:
    rng = np.random.default_rng(1234)
    x = np.sort(rng.lognormal(mean=-6.0, sigma=0.3, size=500))
    lo95, hi95 = median_ci(x, 0.95)
    lo99, hi99 = median_ci(x, 0.99)
    med = float(np.median(x))
    assert lo95 < med < hi95
    assert lo99 < lo95 and hi95 < hi99


# --- summarize ---------------------------------------------------------------------------------


def test_summary_of_one_to_ten_hand_values() -> None:
    s = summarize(np.arange(1.0, 11.0))
    assert s.n == 10
    assert s.median == 5.5
    assert (s.ci_low, s.ci_high) == (2.0, 9.0)
    # Linear interpolation at position q*(n-1): p25 = 3.25, p75 = 7.75, p90 = 9.1, p99 = 9.91.
    assert s.iqr == pytest.approx(4.5)
    assert s.p90 == pytest.approx(9.1)
    assert s.p99 == pytest.approx(9.91)
    assert s.mean == pytest.approx(5.5)
    assert s.std == pytest.approx(math.sqrt(82.5 / 9))  # sum of squared deviations = 82.5
    assert (s.min, s.max) == (1.0, 10.0)
    assert s.p90_low_confidence and s.p99_low_confidence
    assert s.missing == {"throughput_items_per_s": "items not given"}


def test_summary_matches_numpy_on_fixed_array() -> None:
    x = np.array(
        [0.0123, 0.0101, 0.0150, 0.0099, 0.0210, 0.0104, 0.0111, 0.0135, 0.0098, 0.0502,
         0.0107, 0.0120, 0.0102, 0.0118, 0.0100, 0.0131, 0.0109, 0.0097, 0.0125, 0.0144]
    )
    s = summarize(list(x), items=4)
    p25, p50, p75, p90, p99 = np.percentile(x, [25, 50, 75, 90, 99])
    assert s.n == 20
    assert s.median == pytest.approx(p50, rel=1e-12)
    assert s.iqr == pytest.approx(p75 - p25, rel=1e-12)
    assert s.p90 == pytest.approx(p90, rel=1e-12)
    assert s.p99 == pytest.approx(p99, rel=1e-12)
    assert s.mean == pytest.approx(np.mean(x), rel=1e-12)
    assert s.std == pytest.approx(np.std(x, ddof=1), rel=1e-12)
    assert s.std != pytest.approx(np.std(x, ddof=0), rel=1e-6)  # ddof=1, not population std
    assert (s.min, s.max) == (0.0097, 0.0502)
    # n = 20 at 95%: j = 6 (SciPy), so the CI is the 6th and 15th smallest samples.
    xs = np.sort(x)
    assert _reference_rank(20, 0.95) == 6
    assert (s.ci_low, s.ci_high) == (xs[5], xs[14])
    assert s.throughput_items_per_s == pytest.approx(4 / p50, rel=1e-12)
    assert s.missing == {}


@pytest.mark.parametrize(
    ("n", "p90_low", "p99_low"),
    [(63, True, True), (64, False, True), (661, False, True), (662, False, False)],
)
def test_low_confidence_flags(n: int, p90_low: bool, p99_low: bool) -> None:
    s = summarize(np.linspace(1.0, 2.0, n))
    assert s.p90_low_confidence is p90_low
    assert s.p99_low_confidence is p99_low


def test_throughput() -> None:
    s = summarize([0.02, 0.01, 0.03], items=8)
    assert s.throughput_items_per_s == pytest.approx(400.0)  # 8 items / 0.02 s
    assert "throughput_items_per_s" not in s.missing

    zero = summarize([0.0, 0.0, 0.0], items=8)
    assert math.isnan(zero.throughput_items_per_s)
    assert zero.missing["throughput_items_per_s"] == "median is 0"

    none = summarize([0.02, 0.01, 0.03])
    assert math.isnan(none.throughput_items_per_s)
    assert none.missing["throughput_items_per_s"] == "items not given"

    with pytest.raises(ValueError, match="items"):
        summarize([0.02], items=-1)


def test_empty_input_is_all_nan_with_reasons() -> None:
    s = summarize([], items=4)
    assert s.n == 0
    nan_fields = [f.name for f in fields(Summary) if isinstance(getattr(s, f.name), float)]
    assert len(nan_fields) == 11
    for name in nan_fields:
        assert math.isnan(getattr(s, name)), name
        assert s.missing[name] == "no samples"
    assert s.p90_low_confidence and s.p99_low_confidence
    assert summarize(np.array([])).n == 0


def test_single_sample() -> None:
    s = summarize([0.5], items=1)
    assert (s.n, s.median, s.min, s.max, s.p90, s.p99, s.iqr) == (1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.0)
    assert s.mean == 0.5
    assert math.isnan(s.std) and s.missing["std"] == "fewer than 2 samples"
    assert math.isnan(s.ci_low) and math.isnan(s.ci_high)
    assert "fewer than 6 samples" in s.missing["ci_low"]
    assert s.missing["ci_high"] == s.missing["ci_low"]
    assert s.throughput_items_per_s == 2.0


@pytest.mark.parametrize("n", [0, 1, 2, 5, 6, 7, 100])
def test_missing_keys_are_exactly_the_nan_fields(n: int) -> None:
    s = summarize(np.linspace(0.001, 0.002, n))
    nan_fields = {
        f.name for f in fields(Summary)
        if isinstance(getattr(s, f.name), float) and math.isnan(getattr(s, f.name))
    }
    assert nan_fields == set(s.missing)


def test_ci_missing_reason_at_n5_and_present_at_n6() -> None:
    five = summarize([1.0, 2.0, 3.0, 4.0, 5.0])
    assert math.isnan(five.ci_low)
    assert five.missing["ci_low"] == "fewer than 6 samples for a 95% median CI"
    six = summarize([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    assert (six.ci_low, six.ci_high) == (1.0, 6.0)
    assert "ci_low" not in six.missing


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([1.0, float("nan"), 2.0], "finite.*index 1"),
        ([1.0, 2.0, float("inf")], "finite.*index 2"),
        ([1.0, -0.5, 2.0], "non-negative.*index 1"),
        ([[1.0, 2.0], [3.0, 4.0]], "one-dimensional"),
    ],
)
def test_invalid_samples_raise(bad: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        summarize(bad)


def test_summary_is_frozen() -> None:
    s = summarize([1.0, 2.0])
    with pytest.raises(FrozenInstanceError):
        s.median = 3.0  # type: ignore[misc]
