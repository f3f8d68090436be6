"""Summary statistics of timing samples (docs/architecture.md, "Timing").

A run is summarised by its median with a distribution-free confidence interval, the IQR, mean,
standard deviation, min, max, p90 and p99.  Nothing here assumes the samples are normally
distributed: latency distributions are skewed and often multi-modal.

Median confidence interval
    The interval is a pair of order statistics ``[x_(j), x_(n-j+1)]`` (1-based).  For any
    continuous distribution the number ``B`` of samples below the true median is
    ``Binomial(n, 1/2)``, so the interval covers the median with probability
    ``P(j <= B < n-j+1) = 1 - 2 * P(B <= j-1)``, whatever the distribution.  The largest ``j``
    whose coverage still reaches the requested confidence gives the narrowest such interval.
    For ``n <= 2000`` that ``j`` is found from the exact binomial CDF, summed in log space with
    :func:`math.lgamma`; beyond that a normal approximation with continuity correction is used
    (see :func:`median_ci_rank`).  Too few samples (fewer than 6 at 95%) cannot reach the
    confidence with any interval, and the bounds are then NaN, never a made-up number.

Tail percentiles
    p90 and p99 need many samples to mean anything.  Following MLPerf's early-stopping
    minimums, a p90 from fewer than 64 samples and a p99 from fewer than 662 samples is flagged
    as low-confidence (it is still reported).

Missing figures
    A figure that cannot be computed is NaN, never 0, and :attr:`Summary.missing` says why.

Percentiles use numpy's default linear interpolation.  Samples are normally seconds per call
(``Measurement.samples_s``); any unit works, and throughput is then items per that unit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "EXACT_MAX_N",
    "P90_MIN_SAMPLES",
    "P99_MIN_SAMPLES",
    "Summary",
    "median_ci",
    "median_ci_min_samples",
    "median_ci_rank",
    "summarize",
]

#: Largest sample count for which the median CI uses the exact binomial CDF.
EXACT_MAX_N = 2000
#: MLPerf early-stopping minimum sample count for a p90 figure.
P90_MIN_SAMPLES = 64
#: MLPerf early-stopping minimum sample count for a p99 figure.
P99_MIN_SAMPLES = 662

# Slack on the coverage comparison so that float round-off in the CDF sum cannot flip a
# comparison that is an exact tie in real arithmetic (coverages are dyadic rationals).
_TIE_EPS = 1e-12

_NAN = float("nan")


def _check_confidence(confidence: float) -> None:
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _as_samples(samples: Sequence[float] | npt.NDArray[np.floating] | npt.NDArray[np.integer],
                ) -> npt.NDArray[np.float64]:
    """Return ``samples`` as a 1-D float64 array, raising ValueError if it is not 1-D."""
    try:
        arr = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"samples must be real numbers: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"samples must be one-dimensional, got shape {arr.shape}")
    return arr


def median_ci_min_samples(confidence: float = 0.95) -> int:
    """Return the smallest sample count for which a median CI at ``confidence`` exists.

    The widest possible interval, ``[x_(1), x_(n)]``, covers the median with probability
    ``1 - 2**(1-n)``; this is the smallest ``n`` for which that reaches ``confidence``
    (6 for 95%, 8 for 99%).

    Raises:
        ValueError: if ``confidence`` is not strictly between 0 and 1.
    """
    _check_confidence(confidence)
    n = max(1, math.ceil(1.0 - math.log2(1.0 - confidence)))
    # Guard against round-off in log2 either way.
    while n > 1 and 1.0 - 2.0 ** (2 - n) >= confidence - _TIE_EPS:
        n -= 1
    while 1.0 - 2.0 ** (1 - n) < confidence - _TIE_EPS:
        n += 1
    return n


def _exact_rank(n: int, confidence: float) -> int | None:
    """Largest ``j`` with ``1 - 2 * P(B <= j-1) >= confidence``, B ~ Binomial(n, 1/2)."""
    alpha_half = (1.0 - confidence) / 2.0
    log_norm = math.lgamma(n + 1) - n * math.log(2.0)
    cdf = 0.0  # P(B <= i - 1) at the top of iteration i
    best: int | None = None
    # j runs over 1..floor(n/2), so that the upper index n-j+1 stays above j.
    for j in range(1, n // 2 + 1):
        # Add P(B = j-1) to get P(B <= j-1).  Terms below ~1e-308 underflow to 0, which only
        # affects ranks whose coverage is 1 to double precision anyway.
        i = j - 1
        cdf += math.exp(log_norm - math.lgamma(i + 1) - math.lgamma(n - i + 1))
        if cdf <= alpha_half + _TIE_EPS:
            best = j
        else:
            break
    return best


def _normal_rank(n: int, confidence: float) -> int:
    """Normal-approximation ``j`` for large ``n`` (see :func:`median_ci_rank`)."""
    z = NormalDist().inv_cdf((1.0 + confidence) / 2.0)
    j = math.floor(n / 2.0 + 0.5 - z * math.sqrt(n) / 2.0)
    return min(max(j, 1), n // 2)


@lru_cache(maxsize=256)
def median_ci_rank(n: int, confidence: float = 0.95) -> int | None:
    """Return the 1-based lower order-statistic index ``j`` of the median CI, or None.

    The interval is ``[x_(j), x_(n-j+1)]`` with the largest ``j`` such that
    ``1 - 2 * P(B <= j-1) >= confidence`` for ``B ~ Binomial(n, 1/2)``.

    For ``n <= EXACT_MAX_N`` (2000) the binomial CDF is summed exactly in log space
    (:func:`math.lgamma`).  Above that, the normal approximation with continuity correction is
    used: ``P(B <= j-1) ≈ Φ((j - 1/2 - n/2) / (√n/2))``, which gives
    ``j = floor(n/2 + 1/2 - z·√n/2)`` with ``z = Φ⁻¹((1 + confidence)/2)``, clamped to
    ``[1, n // 2]``.  For n > 2000 this matches the exact index to within one (checked against
    SciPy in the tests); one index is a shift of about ``1/√n`` of the interval's width.

    Args:
        n: number of samples.
        confidence: two-sided coverage, strictly between 0 and 1.

    Returns:
        ``j``, or None when no interval reaches ``confidence`` (``n`` below
        :func:`median_ci_min_samples`, e.g. ``n < 6`` at 95%).

    Raises:
        ValueError: if ``n`` is negative or ``confidence`` is not strictly between 0 and 1.
    """
    _check_confidence(confidence)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if n < median_ci_min_samples(confidence):
        return None
    if n <= EXACT_MAX_N:
        return _exact_rank(n, confidence)
    return _normal_rank(n, confidence)


def median_ci(
    sorted_samples: Sequence[float] | npt.NDArray[np.floating] | npt.NDArray[np.integer],
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Return a distribution-free confidence interval for the median.

    The interval is ``(x_(j), x_(n-j+1))`` (1-based order statistics) with ``j`` from
    :func:`median_ci_rank`: the narrowest symmetric pair of order statistics whose coverage
    ``1 - 2 * P(B <= j-1)``, ``B ~ Binomial(n, 1/2)``, is at least ``confidence``.  It holds for
    any continuous distribution; no normality is assumed.

    Args:
        sorted_samples: the samples in ascending order.  They are sorted again defensively
            (cheap on sorted input), so unsorted input still gives the right answer.
        confidence: two-sided coverage, strictly between 0 and 1 (default 0.95).

    Returns:
        ``(low, high)``; ``(nan, nan)`` when there are too few samples for any interval to
        reach ``confidence`` (fewer than 6 at 95%).

    Raises:
        ValueError: if a sample is not finite, the input is not one-dimensional, or
            ``confidence`` is out of range.
    """
    _check_confidence(confidence)
    arr = _as_samples(sorted_samples)
    if not np.all(np.isfinite(arr)):
        raise ValueError("median_ci: samples must be finite (found NaN or infinity)")
    n = int(arr.size)
    j = median_ci_rank(n, confidence)
    if j is None:
        return (_NAN, _NAN)
    x = np.sort(arr)
    return (float(x[j - 1]), float(x[n - j]))


@dataclass(frozen=True)
class Summary:
    """Summary statistics of one set of samples.

    All figures are in the samples' unit (normally seconds), except ``throughput_items_per_s``
    (items per that unit) and the count and flags.  A figure that cannot be computed is NaN,
    never 0, and ``missing`` maps its field name to the reason.

    Attributes:
        n: number of samples.
        median: sample median.
        ci_low: lower bound of the distribution-free 95% CI of the median.
        ci_high: upper bound of that CI.
        iqr: interquartile range, p75 - p25 (numpy linear interpolation).
        mean: arithmetic mean.
        std: sample standard deviation (ddof=1); NaN when n < 2.
        min: smallest sample.
        max: largest sample.
        p90: 90th percentile (linear interpolation).
        p99: 99th percentile (linear interpolation).
        p90_low_confidence: True when n < 64 (MLPerf early-stopping minimum for p90).
        p99_low_confidence: True when n < 662 (MLPerf early-stopping minimum for p99).
        throughput_items_per_s: items / median, when ``items`` was given and median > 0.
        missing: for each NaN field, the reason it is missing.
    """

    n: int
    median: float
    ci_low: float
    ci_high: float
    iqr: float
    mean: float
    std: float
    min: float
    max: float
    p90: float
    p99: float
    p90_low_confidence: bool
    p99_low_confidence: bool
    throughput_items_per_s: float
    missing: dict[str, str] = field(default_factory=dict)


_FIGURES = ("median", "ci_low", "ci_high", "iqr", "mean", "std", "min", "max", "p90", "p99")


def summarize(
    samples: Sequence[float] | npt.NDArray[np.floating] | npt.NDArray[np.integer],
    items: int | None = None,
    *,
    confidence: float = 0.95,
) -> Summary:
    """Summarise timing samples.

    Args:
        samples: non-negative, finite samples (normally seconds per call), in any order.
        items: items processed per sample (e.g. batch size); when given, the throughput is
            ``items / median``.
        confidence: coverage of the median CI (default 0.95, as docs/architecture.md states).

    Returns:
        A :class:`Summary`.  Empty input gives ``n == 0`` with every figure NaN and a reason
        for each in ``missing``; it never raises and never reports 0.

    Raises:
        ValueError: if a sample is NaN, infinite or negative, the input is not
            one-dimensional, or ``items`` is negative.
    """
    _check_confidence(confidence)
    if items is not None and items < 0:
        raise ValueError(f"items must be non-negative, got {items}")
    x = _as_samples(samples)
    finite = np.isfinite(x)
    if not np.all(finite):
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"samples must be finite: {bad.size} NaN/infinite value(s), first at index "
            f"{int(bad[0])} ({x[bad[0]]!r})"
        )
    if np.any(x < 0):
        bad = np.flatnonzero(x < 0)
        raise ValueError(
            f"samples must be non-negative: {bad.size} negative value(s), first at index "
            f"{int(bad[0])} ({float(x[bad[0]])!r})"
        )
    n = int(x.size)
    missing: dict[str, str] = {}

    if n == 0:
        for name in _FIGURES:
            missing[name] = "no samples"
        missing["throughput_items_per_s"] = "no samples"
        return Summary(
            n=0, median=_NAN, ci_low=_NAN, ci_high=_NAN, iqr=_NAN, mean=_NAN, std=_NAN,
            min=_NAN, max=_NAN, p90=_NAN, p99=_NAN, p90_low_confidence=True,
            p99_low_confidence=True, throughput_items_per_s=_NAN, missing=missing,
        )

    x = np.sort(x)
    p25, p50, p75, p90, p99 = (float(v) for v in np.percentile(x, [25, 50, 75, 90, 99]))
    ci_low, ci_high = median_ci(x, confidence)
    if math.isnan(ci_low):
        need = median_ci_min_samples(confidence)
        reason = f"fewer than {need} samples for a {confidence:.0%} median CI"
        missing["ci_low"] = reason
        missing["ci_high"] = reason
    if n >= 2:
        std = float(np.std(x, ddof=1))
    else:
        std = _NAN
        missing["std"] = "fewer than 2 samples"

    if items is None:
        throughput = _NAN
        missing["throughput_items_per_s"] = "items not given"
    elif p50 <= 0.0:
        throughput = _NAN
        missing["throughput_items_per_s"] = "median is 0"
    else:
        throughput = items / p50

    return Summary(
        n=n,
        median=p50,
        ci_low=ci_low,
        ci_high=ci_high,
        iqr=p75 - p25,
        mean=float(np.mean(x)),
        std=std,
        min=float(x[0]),
        max=float(x[-1]),
        p90=p90,
        p99=p99,
        p90_low_confidence=n < P90_MIN_SAMPLES,
        p99_low_confidence=n < P99_MIN_SAMPLES,
        throughput_items_per_s=throughput,
        missing=missing,
    )


#: Summary field → result column.
SUMMARY_COLUMNS = {
    "median": "latency_median_s", "ci_low": "latency_ci_low_s", "ci_high": "latency_ci_high_s",
    "iqr": "latency_iqr_s", "mean": "latency_mean_s", "std": "latency_std_s",
    "min": "latency_min_s", "max": "latency_max_s", "p90": "latency_p90_s",
    "p99": "latency_p99_s", "throughput_items_per_s": "throughput_items_per_s",
}


def summary_columns(summary: Summary) -> tuple[dict[str, Any], dict[str, str]]:
    """A summary as result columns (with the n and tail-confidence flags), and the reason for
    each empty one."""
    values: dict[str, Any] = {column: getattr(summary, field)
                              for field, column in SUMMARY_COLUMNS.items()}
    values.update(n_samples=summary.n, p90_low_confidence=summary.p90_low_confidence,
                  p99_low_confidence=summary.p99_low_confidence)
    missing = {SUMMARY_COLUMNS[f]: why for f, why in summary.missing.items()
               if f in SUMMARY_COLUMNS}
    return values, missing
