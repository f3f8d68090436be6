"""LoadGen's early-stopping rule against the values LoadGen itself prints and documents."""

from __future__ import annotations

import pytest
from scipy.stats import binom

from harness.scenarios import early_stopping as es


def test_minimum_query_counts_match_loadgen() -> None:
    # LoadGen: "Processed at least 64 queries" (p90); the p99 floor 662 (mlperf.conf
    # MultiStream.min_query_count); and h_min(t=0, p99) = 459 with no query over the target.
    assert es.min_queries(0.90) == 64
    assert es.min_queries(0.99) == 662
    assert es.min_passing(0, 0.99) == 459
    assert es.min_passing(1, 0.90) == 63


@pytest.mark.parametrize(("queries", "discarded"), [(2048, 172), (2116, 178), (2145, 181)])
def test_p90_estimate_discards_what_loadgen_printed(queries: int, discarded: int) -> None:
    # From LoadGen single-stream summaries: "Processed at least 64 queries (2048). Would
    # discard 172 highest latency queries." and the same for 2116 and 2145 queries.
    assert es.discard_count(queries, 0.90) - 1 == discarded


def test_estimate_is_the_t_th_largest_latency() -> None:
    latencies = [float(i) for i in range(2048)]  # 0 … 2047, in any order
    value, t = es.estimate(list(reversed(latencies)), 0.90)
    assert t == 173
    assert value == 2047 - 172  # the 173rd largest
    assert es.estimate(latencies[:63], 0.90) == (None, 0)  # below the 64-query floor


def test_discard_count_agrees_with_the_definition_by_search() -> None:
    # t is the largest t with min_passing(t) + t <= n: check the closed form by brute force.
    for n in (64, 100, 500, 1000):
        t = es.discard_count(n, 0.90)
        assert es.min_passing(t, 0.90) + t <= n
        assert es.min_passing(t + 1, 0.90) + t + 1 > n


def test_binomial_cdf_matches_scipy() -> None:
    for k, n, q in ((0, 10, 0.1), (30, 1000, 0.02), (2600, 270_336, 0.01), (5, 5, 0.5)):
        assert es.binomial_cdf(k, n, q) == pytest.approx(float(binom.cdf(k, n, q)), rel=1e-9)


def test_server_test_needs_459_clean_queries_at_p99() -> None:
    assert es.server_satisfied(459, 0, 0.99)
    assert not es.server_satisfied(458, 0, 0.99)
    # One query over the bound costs about 200 more queries.
    assert not es.server_satisfied(661, 1, 0.99)
    assert es.server_satisfied(662, 1, 0.99)
    assert not es.server_satisfied(1000, 100, 0.99)  # 10% over a p99 target never passes
