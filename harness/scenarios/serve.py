"""The issuing and serving loops of the four scenarios; each returns a :class:`Trace`.

The loops only call ``serve(k)``: run one batch of ``k`` queries *and synchronise the device*
(the caller binds it to an adapter's prepared step), so a query is done when its result exists.
Times are integer nanoseconds from an injected clock.

Server: every query's arrival time is fixed by the schedule before the run. One loop serves
them: when the server is free it takes every query whose time has come (a query that finds the
bounded queue full is dropped and counted, never silently lost), serves up to ``max_batch`` of
them in one call (waiting at most ``batch_timeout`` past the oldest one's arrival for a batch to
fill), and when nothing is queued it sleeps until the next arrival. Every latency counts from
the *scheduled* arrival, so queueing behind a slow call is always in the figure (no coordinated
omission). The generator's lag is how late the loop noticed an arrival it was waiting for (its
sleep overshoots, or the machine was busy): measured per query and reported.

Why one loop and not an issuing thread beside a serving thread: the step under test is a
synchronous call, so a query arriving during a call cannot start before the call returns
either way, and the server's decisions (what is queued when it is free) are the same. A second
thread only adds its own costs to the figure: on this project's 2-core VM, handing a query from
an issuing thread to a waiting server thread took 0.2–1 ms (a futex wake-up and the GIL), 10%
of an M/D/1 queue's mean wait in our test; one loop takes 0.05 ms between calls.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from harness.scenarios.options import Minimums

Clock = Callable[[], int]
ServeBatch = Callable[[int], object]
Sleep = Callable[[float], None]
#: The schedule starts this long after the loop starts, so its first query is not late.
LEAD_S = 5e-3
#: Waits sleep in slices of at most this, and spin their last SPIN_S.
SLEEP_SLICE_S = 0.05
SPIN_S = 1e-3
NOT_DONE = -1


@dataclass
class Trace:
    """What happened to every query: when it was scheduled, issued, started and finished.

    Arrays are per query, in issue order, in clock nanoseconds; ``NOT_DONE`` (-1) where a query
    was dropped (``dropped``) or never served. Closed-loop scenarios have no schedule: a query
    is scheduled at the moment it is issued.
    """

    scheduled_ns: npt.NDArray[np.int64]
    issued_ns: npt.NDArray[np.int64]
    start_ns: npt.NDArray[np.int64]
    done_ns: npt.NDArray[np.int64]
    dropped: npt.NDArray[np.bool_]
    origin_ns: int
    end_ns: int
    #: the size of every batch served, in order.
    batches: list[int] = field(default_factory=list)
    #: multi-stream: each group's (issue, completion of its last query) in nanoseconds.
    groups: list[tuple[int, int]] = field(default_factory=list)
    #: a closed-loop run stopped at its maximum duration before its minimum count.
    hit_cap: bool = False
    #: the minimums a closed loop ran to (None for offline and server: fixed counts).
    minimums: Minimums | None = None
    #: server: how late each query was noticed after a wait (the generator's lag; 0 for a query
    #: that arrived while a call ran, which waited for the server whatever the generator did).
    lag_ns: npt.NDArray[np.int64] | None = None

    @property
    def completed(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.done_ns != NOT_DONE)


def _trace(scheduled: list[int], issued: list[int], start: list[int], done: list[int],
           origin: int, end: int, batches: list[int],
           groups: list[tuple[int, int]] | None = None, hit_cap: bool = False,
           minimums: Minimums | None = None) -> Trace:
    def array(values: list[int]) -> npt.NDArray[np.int64]:
        return np.asarray(values, dtype=np.int64)

    return Trace(array(scheduled), array(issued), array(start), array(done),
                 dropped=np.zeros(len(scheduled), dtype=bool), origin_ns=origin, end_ns=end,
                 batches=batches, groups=groups or [], hit_cap=hit_cap, minimums=minimums)


def _enough(count: int, elapsed_ns: int, minimums: Minimums) -> tuple[bool, bool]:
    """(stop, capped): both minimums reached, or the maximum duration passed first."""
    done = count >= minimums.queries and elapsed_ns >= minimums.duration_s * 1e9
    cap = minimums.max_duration_s
    capped = not done and cap is not None and elapsed_ns >= cap * 1e9
    return done or capped, capped


def single_stream(serve: ServeBatch, minimums: Minimums,
                  clock: Clock = time.perf_counter_ns) -> Trace:
    """One query at a time, the next issued as soon as the last returns (LoadGen's
    single-stream); each latency is one synchronised call."""
    issued: list[int] = []
    done: list[int] = []
    origin = clock()
    while True:
        t0 = clock()
        serve(1)
        t1 = clock()
        issued.append(t0)
        done.append(t1)
        stop, capped = _enough(len(done), t1 - origin, minimums)
        if stop:
            return _trace(issued, issued, issued, done, origin, t1, [1] * len(done),
                          hit_cap=capped, minimums=minimums)


def _serve_all(serve: ServeBatch, count: int, max_batch: int, clock: Clock,
               start: list[int], done: list[int], batches: list[int]) -> int:
    """Serve ``count`` queries issued together, in batches of at most ``max_batch``."""
    left = count
    t1 = clock()
    while left:
        k = min(left, max_batch)
        t0 = clock()
        serve(k)
        t1 = clock()
        start.extend([t0] * k)
        done.extend([t1] * k)
        batches.append(k)
        left -= k
    return t1


def multi_stream(serve: ServeBatch, group_size: int, max_batch: int, minimums: Minimums,
                 clock: Clock = time.perf_counter_ns) -> Trace:
    """Groups of ``group_size`` queries issued together, the next group when the last one's
    queries have all returned (LoadGen's multi-stream); a group's latency is its last query's."""
    issued: list[int] = []
    start: list[int] = []
    done: list[int] = []
    batches: list[int] = []
    groups: list[tuple[int, int]] = []
    origin = clock()
    while True:
        t0 = clock()
        t1 = _serve_all(serve, group_size, max_batch, clock, start, done, batches)
        issued.extend([t0] * group_size)
        groups.append((t0, t1))
        stop, capped = _enough(len(groups), t1 - origin, minimums)
        if stop:
            return _trace(issued, issued, start, done, origin, t1, batches, groups=groups,
                          hit_cap=capped, minimums=minimums)


def offline(serve: ServeBatch, count: int, max_batch: int,
            clock: Clock = time.perf_counter_ns) -> Trace:
    """All ``count`` queries issued at once, served in batches of ``max_batch`` (LoadGen's
    offline); the figure is the throughput over the whole run."""
    start: list[int] = []
    done: list[int] = []
    batches: list[int] = []
    origin = clock()
    end = _serve_all(serve, count, max_batch, clock, start, done, batches)
    return _trace([origin] * count, [origin] * count, start, done, origin, end, batches)


def sleep_until(target_ns: int, clock: Clock, sleep: Sleep) -> None:
    """Wait until ``target_ns``: sleep, then spin the last ``SPIN_S`` (a sleep overshoots by
    tens of microseconds, which would count as lateness)."""
    while True:
        remaining = target_ns - clock()
        if remaining <= 0:
            return
        if remaining > SPIN_S * 1e9:
            sleep(min(remaining * 1e-9 - SPIN_S, SLEEP_SLICE_S))


def server(serve: ServeBatch, offsets_s: npt.NDArray[np.float64], max_batch: int,
           batch_timeout_s: float, max_queue: int, clock: Clock = time.perf_counter_ns,
           sleep: Sleep = time.sleep) -> Trace:
    """Queries arriving at ``offsets_s`` (seconds from the start), served with dynamic batching
    from a bounded queue (LoadGen's server)."""
    n = len(offsets_s)
    # Plain lists in the loop: indexing them costs a fraction of numpy's per-element access,
    # and the loop's own time between calls is part of every query's wait.
    issued = [NOT_DONE] * n
    lag = [0] * n
    start = [NOT_DONE] * n
    done = [NOT_DONE] * n
    dropped = [False] * n
    queue: deque[int] = deque()
    batches: list[int] = []
    timeout_ns = int(batch_timeout_s * 1e9)
    origin = clock() + int(LEAD_S * 1e9)
    scheduled = (origin + np.round(np.asarray(offsets_s) * 1e9).astype(np.int64)).tolist()
    arrived = 0  # queries whose scheduled time has been seen

    def admit(waited: bool) -> None:
        """Take in every query whose time has come, in order; one that finds the queue full is
        dropped. After a wait, how late each was noticed is the generator's lag."""
        nonlocal arrived
        now = clock()
        while arrived < n and scheduled[arrived] <= now:
            issued[arrived] = now
            if waited:
                lag[arrived] = now - scheduled[arrived]
            if len(queue) >= max_queue:
                dropped[arrived] = True
            else:
                queue.append(arrived)
            arrived += 1

    waited = True
    while True:
        admit(waited)
        if queue:
            if timeout_ns and len(queue) < max_batch and arrived < n:
                # Dynamic batching: the oldest query waits at most the timeout for others.
                deadline = scheduled[queue[0]] + timeout_ns
                if clock() < deadline:
                    sleep_until(min(deadline, scheduled[arrived]), clock, sleep)
                    waited = True
                    continue
            k = min(len(queue), max_batch)
            taken = [queue.popleft() for _ in range(k)]
            t0 = clock()
            serve(k)
            t1 = clock()
            for i in taken:
                start[i] = t0
                done[i] = t1
            batches.append(k)
            waited = False  # queries that came during the call waited for the server, truly
            continue
        if arrived >= n:
            break
        sleep_until(scheduled[arrived], clock, sleep)
        waited = True
    finished = [t for t in done if t != NOT_DONE]
    end = max(finished) if finished else clock()

    def array(values: list[int]) -> npt.NDArray[np.int64]:
        return np.asarray(values, dtype=np.int64)

    return Trace(array(scheduled), array(issued), array(start), array(done),
                 np.asarray(dropped, dtype=bool), origin_ns=origin, end_ns=end,
                 batches=batches, lag_ns=array(lag))
