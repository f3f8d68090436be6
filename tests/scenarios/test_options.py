"""Scenario settings: each bad value is refused with the flag's name; minimums by rule."""

from __future__ import annotations

import pytest

from harness.scenarios.options import LoadOptions, OptionsError


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"scenario": "offline", "qps": 5.0}, "--qps applies only to --scenario server"),
    ({"scenario": "server", "qps": -5.0}, "--qps must be a positive number"),
    ({"scenario": "server", "qps": float("nan")}, "--qps must be a positive number"),
    ({"scenario": "server"}, "needs --qps"),
    ({"scenario": "server", "find_peak": True}, "--find-peak needs --latency-bound-ms"),
    ({"scenario": "offline", "find_peak": True}, "--find-peak applies only to --scenario server"),
    ({"scenario": "server", "qps": 5.0, "max_batch": 0}, "--max-batch must be at least 1"),
    ({"scenario": "server", "qps": 5.0, "batch_timeout_s": -1.0}, "--batch-timeout-ms"),
    ({"scenario": "offline", "batch_timeout_s": 0.01}, "applies only to --scenario server"),
    ({"scenario": "server", "qps": 5.0, "latency_bound_s": 0.0}, "--latency-bound-ms must be"),
    ({"scenario": "offline", "latency_bound_s": 0.1}, "does not apply to --scenario offline"),
    ({"scenario": "server", "qps": 5.0, "max_queue": 0}, "--max-queue must be at least 1"),
    ({"scenario": "multi-stream", "group_size": 0}, "--group-size must be at least 1"),
    ({"scenario": "single-stream", "max_batch": 2}, "does not apply to --scenario single-stream"),
    ({"scenario": "single-stream", "duration_s": -1.0}, "--duration must be a positive"),
    ({"scenario": "server", "qps": 5.0, "ttft_bound_s": 0.0}, "--ttft-bound-ms must be a positive"),
    ({"scenario": "server", "qps": 5.0, "tpot_bound_s": float("inf")},
     "--tpot-bound-ms must be a positive"),
    ({"scenario": "single-stream", "ttft_bound_s": 0.1},
     "--ttft-bound-ms applies only to --scenario server"),
    ({"scenario": "single-stream", "rule": "loadgen", "duration_s": 60.0},
     "cannot shorten LoadGen's 600 s"),
])
def test_bad_settings_name_their_flag(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        LoadOptions(**kwargs)  # type: ignore[arg-type]


def test_minimums_by_rule_and_duration_override() -> None:
    assert LoadOptions("server", qps=1.0, rule="loadgen").minimums.queries == 270_336
    assert LoadOptions("offline", rule="loadgen").minimums.queries == 24_576
    assert LoadOptions("multi-stream", rule="loadgen").minimums.queries == 662
    assert LoadOptions("single-stream", rule="loadgen").minimums.duration_s == 600.0
    assert LoadOptions("server", qps=1.0).minimums.queries == 662  # the p99 floor
    assert LoadOptions("single-stream").minimums.queries == 64  # the p90 floor
    longer = LoadOptions("single-stream", duration_s=30.0).minimums
    assert longer.duration_s == 30.0 and longer.max_duration_s == 180.0
    assert "at least 1 s and 1 queries, at most 5 s" in LoadOptions(
        "single-stream", rule="quick").rule_text()


def test_lag_tolerance_follows_the_bound() -> None:
    assert LoadOptions("server", qps=1.0).lag_tolerance_s == 1e-3
    assert LoadOptions("server", qps=1.0, latency_bound_s=0.1).lag_tolerance_s == \
        pytest.approx(0.005)
    assert LoadOptions("server", qps=1.0, latency_bound_s=0.01).lag_tolerance_s == 1e-3
    # A time-to-first-token bound counts from the scheduled arrival too; TPOT's does not.
    assert LoadOptions("server", qps=1.0, latency_bound_s=1.0, ttft_bound_s=0.1,
                       tpot_bound_s=0.001).lag_tolerance_s == pytest.approx(0.005)


def test_a_peak_search_may_be_bounded_by_tokens_alone() -> None:
    assert LoadOptions("server", find_peak=True, tpot_bound_s=0.05).bounded
