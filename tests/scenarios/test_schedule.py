"""Issue schedules: fixed by the seed, Poisson at the asked rate."""

from __future__ import annotations

import numpy as np
import pytest

from harness.scenarios.schedule import poisson_offsets, server_count


def test_same_seed_same_schedule_other_seed_other_schedule() -> None:
    a = poisson_offsets(50.0, 1000, seed=3)
    assert np.array_equal(a, poisson_offsets(50.0, 1000, seed=3))
    assert not np.array_equal(a, poisson_offsets(50.0, 1000, seed=4))
    assert np.all(np.diff(a) > 0) and a[0] > 0


def test_gaps_are_exponential_at_the_rate() -> None:
    gaps = np.diff(poisson_offsets(200.0, 200_000, seed=1), prepend=0.0)
    assert gaps.mean() == pytest.approx(1 / 200.0, rel=0.01)
    # Exponential: the standard deviation equals the mean, and P(gap > mean) = e^-1.
    assert gaps.std() == pytest.approx(gaps.mean(), rel=0.02)
    assert (gaps > 1 / 200.0).mean() == pytest.approx(np.exp(-1), abs=0.005)


def test_count_covers_both_minimums() -> None:
    assert server_count(50.0, 10.0, 662) == 662
    assert server_count(500.0, 10.0, 662) == 5000
    assert server_count(0.01, 1.0, 1) == 1


def test_bad_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        poisson_offsets(0.0, 10, seed=0)
