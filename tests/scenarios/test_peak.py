"""The peak search, driven by a fake server whose p99 meets the bound below a known QPS."""

from __future__ import annotations

import pytest

from harness.scenarios.peak import STEP, find_peak


def capacity(limit: float) -> tuple[list[float], object]:
    calls: list[float] = []

    def probe(qps: float) -> bool:
        calls.append(qps)
        return qps <= limit
    return calls, probe


@pytest.mark.parametrize(("start", "limit"), [(50.0, 240.0), (50.0, 20.0), (10.0, 10.0),
                                              (100.0, 1000.0)])
def test_ends_on_a_met_qps_and_a_missed_one_20_percent_above(start: float, limit: float) -> None:
    calls, probe = capacity(limit)
    found = find_peak(probe, start)  # type: ignore[arg-type]
    assert found.peak_qps is not None and found.above_qps is not None
    assert found.peak_qps <= limit < found.above_qps
    assert found.above_qps == pytest.approx(found.peak_qps * STEP)
    # Both were measured, and no QPS was run twice.
    assert found.peak_qps in calls and found.above_qps in calls
    assert len(calls) == len(set(calls)) == len(found.probes)
    assert found.note == ""


def test_no_qps_meets_the_bound() -> None:
    calls, probe = capacity(0.0)
    found = find_peak(probe, 10.0, max_probes=6)  # type: ignore[arg-type]
    assert found.peak_qps is None and len(calls) == 6
    assert "no QPS met the bound" in found.note


def test_runs_out_of_probes_while_still_meeting_the_bound() -> None:
    calls, probe = capacity(1e12)
    found = find_peak(probe, 10.0, max_probes=4)  # type: ignore[arg-type]
    assert found.above_qps is None and found.peak_qps == max(calls)
    assert "the peak is higher" in found.note
