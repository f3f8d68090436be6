"""The issuing and serving loops: closed loops on a fake clock (exact), the server on real time
with fake services whose timing is known."""

from __future__ import annotations

import time

import numpy as np
import pytest

from harness.scenarios import serve
from harness.scenarios.figures import figures, latencies
from harness.scenarios.options import LoadOptions, Minimums
from harness.scenarios.schedule import poisson_offsets
from tests.fakes import FakeClock
from tests.scenarios.service import hold

MS = 1e-3


def fake_service(clock: FakeClock, per_call_s: float, per_query_s: float = 0.0
                 ) -> tuple[list[int], serve.ServeBatch]:
    sizes: list[int] = []

    def run(k: int) -> None:
        sizes.append(k)
        clock.advance(per_call_s + per_query_s * k)
    return sizes, run


def test_single_stream_issues_one_at_a_time_until_both_minimums() -> None:
    clock = FakeClock()
    sizes, run = fake_service(clock, 2 * MS)
    trace = serve.single_stream(run, Minimums(1.0, 64, None), clock)
    assert set(sizes) == {1} and len(sizes) == 500  # 1 s of 2 ms calls
    assert latencies(trace, "single-stream") == pytest.approx([2 * MS] * 500)
    # The next query is issued when the last returns.
    assert np.array_equal(trace.issued_ns[1:], trace.done_ns[:-1])


def test_single_stream_stops_at_its_cap_and_says_so() -> None:
    clock = FakeClock()
    _, run = fake_service(clock, 0.5)
    trace = serve.single_stream(run, Minimums(1.0, 64, 5.0), clock)
    assert len(trace.done_ns) == 10 and trace.hit_cap
    row, _, notes = figures(trace, LoadOptions("single-stream"), items=1)
    assert row["load_valid"] is False
    assert any("stopped at the 5 s cap before the minimum of 64 queries" in n for n in notes)


def test_multi_stream_group_latency_is_its_last_query() -> None:
    clock = FakeClock()
    sizes, run = fake_service(clock, 1 * MS, 0.5 * MS)
    trace = serve.multi_stream(run, group_size=8, max_batch=3, minimums=Minimums(0.0, 10, None),
                               clock=clock)
    assert sizes[:3] == [3, 3, 2] and len(trace.groups) == 10
    # 3 batches: (1 + 1.5) + (1 + 1.5) + (1 + 1) ms
    assert latencies(trace, "multi-stream") == pytest.approx([7 * MS] * 10)


def test_offline_serves_everything_issued_at_the_start() -> None:
    clock = FakeClock()
    sizes, run = fake_service(clock, 4 * MS)
    trace = serve.offline(run, count=100, max_batch=8, clock=clock)
    assert sizes == [8] * 12 + [4]
    assert (trace.scheduled_ns == trace.origin_ns).all()
    row, missing, _ = figures(trace, LoadOptions("offline", max_batch=8), items=1)
    assert row["throughput_items_per_s"] == pytest.approx(100 / (13 * 4 * MS))
    assert row["samples_s"] == pytest.approx([4 * MS] * 13)  # one per batch
    assert "throughput only" in missing["latency_p99_s"]


def test_a_stalled_server_cannot_hide_the_queueing_it_caused() -> None:
    # The first call stalls 300 ms; later calls take 1 ms. Queries scheduled during the stall
    # waited for it: their latency counts from their scheduled time (no coordinated omission),
    # though each of their own calls took 1 ms.
    calls = [0]

    def run(k: int) -> None:
        calls[0] += 1
        hold(0.3 if calls[0] == 1 else 1 * MS)

    offsets = poisson_offsets(100.0, 60, seed=5)
    trace = serve.server(run, offsets, max_batch=1, batch_timeout_s=0.0, max_queue=1000)
    lat = np.asarray(latencies(trace, "server"))
    stall_end = (trace.start_ns[0] + 0.3e9 - trace.origin_ns) * 1e-9
    during = offsets < stall_end
    assert during.sum() >= 10
    # Each query caught behind the stall waited at least until it ended.
    assert (lat[during] >= stall_end - offsets[during] - 1e-4).all()
    assert lat[1] > 0.15  # its own call took about 1 ms
    service = (trace.done_ns - trace.start_ns)[1:] * 1e-9
    assert np.median(service) < 5 * MS


def test_a_late_generator_is_measured_and_the_run_flagged_invalid() -> None:
    def late_sleep(seconds: float) -> None:
        time.sleep(seconds + 4 * MS)  # oversleeps every time, by 4 ms
    # 0.2 ms calls at 100 QPS: the server is nearly always idle, waiting for the next arrival,
    # so each late wake-up delays a query.

    offsets = poisson_offsets(100.0, 80, seed=1)
    run = lambda k: hold(0.2 * MS)  # noqa: E731
    late = serve.server(run, offsets, 1, 0.0, 1000, sleep=late_sleep)
    options = LoadOptions("server", qps=100.0)
    row, _, notes = figures(late, options, items=1)
    assert row["generator_lag_s"] > 3 * MS
    assert row["load_valid"] is False
    assert any("the load generator fell behind" in note for note in notes)
    on_time = serve.server(run, offsets, 1, 0.0, 1000)
    assert figures(on_time, options, 1)[0]["generator_lag_s"] < row["generator_lag_s"]


def test_a_full_queue_drops_and_counts_queries() -> None:
    offsets = np.linspace(0.001, 0.05, 50)  # 50 queries in 50 ms; each call takes 20 ms
    trace = serve.server(lambda k: hold(20 * MS), offsets, 1, 0.0, max_queue=2)
    dropped = int(trace.dropped.sum())
    assert dropped > 30
    assert int(trace.completed.sum()) + dropped == 50
    options = LoadOptions("server", qps=1000.0, latency_bound_s=1.0)
    row, _, notes = figures(trace, options, items=1)
    assert row["dropped_queries"] == dropped and row["load_valid"] is False
    # Dropped queries never met the bound: they count over it.
    assert row["over_bound_fraction"] >= dropped / 50
    assert any("dropped" in note for note in notes)


def test_dynamic_batching_fills_batches_under_load_and_never_exceeds_the_maximum() -> None:
    offsets = poisson_offsets(600.0, 300, seed=2)
    trace = serve.server(lambda k: hold(8 * MS), offsets, max_batch=4, batch_timeout_s=0.0,
                         max_queue=1000)
    assert max(trace.batches) == 4 and sum(trace.batches) == 300
    assert np.mean(trace.batches) > 2  # 600 QPS against 125 calls/s: batching must help


def test_batch_timeout_waits_for_a_batch_to_fill() -> None:
    # Queries 2 ms apart with a 10 ms timeout: batches of up to 4 form, each waiting for its
    # fourth query; without the timeout the idle server takes each query alone.
    offsets = np.arange(1, 41) * 2 * MS
    waiting = serve.server(lambda k: hold(0.5 * MS), offsets, 4, 10 * MS, 1000)
    eager = serve.server(lambda k: hold(0.5 * MS), offsets, 4, 0.0, 1000)
    assert np.mean(waiting.batches) > 2.5
    assert np.mean(eager.batches) < 1.5
    assert np.mean(latencies(waiting, "server")) > np.mean(latencies(eager, "server"))


def test_a_failing_service_raises_at_once() -> None:
    def boom(k: int) -> None:
        raise RuntimeError("device lost")

    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="device lost"):
        serve.server(boom, poisson_offsets(1.0, 100, seed=0), 1, 0.0, 10)
    assert time.perf_counter() - started < 5  # not the 100 s schedule
