"""MLPerf LoadGen's early-stopping rule: how many queries a tail-latency figure needs.

LoadGen (``loadgen/early_stopping.cc`` and ``loadgen/results.cc`` in mlcommons/inference,
with the rule stated in ``inference_rules.adoc``, "early stopping") asks, at confidence
``c = 0.99`` and tolerance ``d = 0``: given ``t`` queries over the latency target among
``h + t``, is it at least 99% certain that the true ``p``-percentile meets the target? The
number of over-target queries in ``n`` is ``Binomial(n, 1 - p)`` when the percentile is just
met, so the run passes when

    P(Binomial(h + t, 1 - p) <= t) < 1 - c

(LoadGen writes this probability as ``BetaRegularized[p - d, h, 1 + t]``; it is the same
binomial CDF, computed here exactly in log space, so no special-function library is needed).

Two uses, as in LoadGen:

- **single-stream and multi-stream** report an *estimate*: of ``n`` sorted latencies, the
  ``t``-th largest, where ``t`` is the largest count of discarded-as-over queries that still
  passes. With ``p = 0.9`` at least 64 queries are needed (``t = 1``), with ``p = 0.99`` 662;
  at 2048 queries LoadGen's p90 estimate discards the 172 highest (``t = 173``), as its
  published summaries show ("Processed at least 64 queries (2048). Would discard 172 highest
  latency queries.").
- **server** runs a *test*: with ``t`` queries over the latency bound among ``n``, early
  stopping is satisfied when ``P(Binomial(n, 1 - p) <= t) < 1 - c``; with no query over the
  bound that needs 459 queries at p99.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: LoadGen's early-stopping confidence and tolerance (``results.cc``: 0.99 and 0.0).
CONFIDENCE = 0.99
TOLERANCE = 0.0


def _log_pmf(k: int, n: int, q: float) -> float:
    """log P(Binomial(n, q) = k), exact through lgamma."""
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + (k * math.log(q) if k else 0.0) + ((n - k) * math.log1p(-q) if n - k else 0.0))


def binomial_cdf(k: int, n: int, q: float) -> float:
    """P(Binomial(n, q) <= k), summed term by term in log space (exact for any n)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    log_cdf = -math.inf
    for i in range(k + 1):
        log_cdf = _log_add(log_cdf, _log_pmf(i, n, q))
    return min(1.0, math.exp(log_cdf))


def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) without overflow or underflow."""
    if a < b:
        a, b = b, a
    return a if b == -math.inf else a + math.log1p(math.exp(b - a))


def passes(h: int, t: int, percentile: float, confidence: float = CONFIDENCE,
           tolerance: float = TOLERANCE) -> bool:
    """Whether ``h`` queries under the target and ``t`` over it show, at ``confidence``, that
    the true ``percentile`` meets the target (LoadGen's ``odds(h, t, p, d) < 1 - c``)."""
    if h <= 0:
        return False
    return binomial_cdf(t, h + t, 1.0 - (percentile - tolerance)) < 1.0 - confidence


def min_passing(t: int, percentile: float, confidence: float = CONFIDENCE) -> int:
    """The fewest queries under the target that pass alongside ``t`` over it (LoadGen's
    ``MinPassingQueriesFinder``): 459 for ``t = 0`` at p99, 63 for ``t = 1`` at p90."""
    low, high = 1, 16
    while not passes(high, t, percentile, confidence):
        low, high = high + 1, high * 2
    while low < high:  # the smallest passing h: passes() is monotone in h
        middle = (low + high) // 2
        if passes(middle, t, percentile, confidence):
            high = middle
        else:
            low = middle + 1
    return low


def min_queries(percentile: float, confidence: float = CONFIDENCE) -> int:
    """Queries needed before an early-stopping estimate exists: 64 at p90, 662 at p99."""
    return min_passing(1, percentile, confidence) + 1


def discard_count(n: int, percentile: float, confidence: float = CONFIDENCE) -> int:
    """LoadGen's ``t`` for ``n`` queries: the largest ``t`` with ``min_passing(t) + t <= n``;
    0 when ``n`` is below :func:`min_queries`.

    ``min_passing(t) + t <= n`` holds exactly when ``P(Binomial(n, 1 - p) <= t) < 1 - c``
    (the binomial CDF falls as queries under the target are added), so ``t`` comes from one
    pass over the CDF of ``Binomial(n, 1 - p)``.
    """
    q = 1.0 - percentile
    log_limit = math.log(1.0 - confidence)
    log_cdf = -math.inf
    t = -1
    for k in range(n + 1):
        log_cdf = _log_add(log_cdf, _log_pmf(k, n, q))
        if log_cdf >= log_limit:
            break
        t = k
    return max(t, 0)


def estimate(latencies: Sequence[float], percentile: float,
             confidence: float = CONFIDENCE) -> tuple[float | None, int]:
    """The early-stopping ``percentile`` estimate of ``latencies`` and LoadGen's ``t``: the
    ``t``-th largest latency; ``(None, 0)`` when there are too few queries for one."""
    n = len(latencies)
    t = discard_count(n, percentile, confidence)
    if t < 1:
        return None, 0
    return float(sorted(latencies)[n - t]), t


def server_satisfied(n: int, over: int, percentile: float,
                     confidence: float = CONFIDENCE) -> bool:
    """LoadGen's server test: ``n`` queries of which ``over`` exceeded the latency bound are
    enough to show, at ``confidence``, that the ``percentile`` meets the bound."""
    return passes(n - over, over, percentile, confidence)
