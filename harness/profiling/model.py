"""What a native profiler hands back (:class:`NativeProfile`), and the loop of profiled calls
every profiler shares (:func:`run_calls`).

Each profiler module turns its own events into :class:`OpTime` totals over all profiled calls;
:mod:`harness.profiling.pass_` divides them per call. A profile keeps its Chrome trace with the
harness's own facts under the trace's ``harness`` key (the calls' wall times, and what a parser
needs besides the events), so that a stored trace can be parsed again, as the tests do with
recorded ones.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from harness.profiling.attribution import Attribution

NAN = float("nan")
#: the annotation around each profiled call, and around the untimed warm-up calls.
CALL = "harness.call"
WARMUP = "harness.warmup"
#: calls run under the profiler before the counted ones: a profiler's start (buffers, threads,
#: a fresh session's first runs) lands in them, not in the profile.
WARMUP_CALLS = 2

Annotate = Callable[[str], AbstractContextManager[Any]]


@dataclass
class OpTime:
    """One operator's totals over all profiled calls."""

    op: str
    category: str
    count: int
    time_s: float
    flops: float = NAN
    flops_source: str = ""
    bytes: float = NAN
    provider: str = ""
    #: "prefill"/"decode" for a generation task's phases (harness.profiling.phases), else "".
    phase: str = ""


@dataclass
class NativeProfile:
    """A profile of ``calls`` calls whose loop lasted ``wall_s``: operators (and the host's
    share, as operators of category ``host``) with totals; the Chrome trace or why there is
    none; the time a device was busy, or why that is unknown."""

    profiler: str
    calls: int
    wall_s: float
    ops: list[OpTime]
    trace: dict[str, Any] | None = None
    trace_missing: str = ""
    device_busy_s: float | None = None
    device_missing: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CallTimes:
    """Wall seconds of the profiled loop, and of each call in it (perf_counter)."""

    wall_s: float
    call_s: tuple[float, ...]

    def facts(self) -> dict[str, Any]:
        """As stored under a trace's ``harness`` key."""
        return {"calls": len(self.call_s), "wall_s": self.wall_s, "call_s": list(self.call_s)}


def run_calls(step: Callable[[], Any], synchronize: Callable[[], None], calls: int,
              annotate: Annotate | None = None,
              clock: Callable[[], float] = time.perf_counter) -> CallTimes:
    """Run :data:`WARMUP_CALLS` then ``calls`` calls of ``step``, each synchronised and inside
    ``annotate(name)`` (the profiler's own annotation, so that the trace shows each call's
    window); the counted calls' wall times."""
    around = annotate or (lambda _name: contextlib.nullcontext())
    for _ in range(WARMUP_CALLS):
        with around(WARMUP):
            step()
            synchronize()
    durations = []
    start = clock()
    for _ in range(calls):
        began = clock()
        with around(CALL):
            step()
            synchronize()
        durations.append(clock() - began)
    return CallTimes(clock() - start, tuple(durations))


def times_of(trace: dict[str, Any]) -> CallTimes:
    """The call times a trace's ``harness`` key recorded."""
    facts = trace.get("harness") or {}
    return CallTimes(float(facts["wall_s"]), tuple(float(t) for t in facts["call_s"]))


def host_ops(attribution: Attribution, times: CallTimes, unit_s: float, inside: str,
             outside: str, provider: str = "") -> list[OpTime]:
    """The host's share as operators: window time no event covers (``inside``, e.g. Python
    between operators), and call time outside the profiler's windows (``outside``, e.g. a
    binding's conversions); both measured, neither guessed."""
    return phase_host_ops({"": attribution}, times, unit_s, inside, outside, provider)


def phase_host_ops(parts: dict[str, Attribution], times: CallTimes, unit_s: float,
                   inside: str, outside: str, provider: str = "") -> list[OpTime]:
    """:func:`host_ops` of calls whose windows were attributed in parts, one per phase: the
    uncovered time of each part in its phase; the time outside every window in none ("")."""
    calls = len(times.call_s)
    rows = [OpTime(inside, "host", calls, found.uncovered * unit_s, provider=provider,
                   phase=phase) for phase, found in parts.items()]
    rest = sum(times.call_s) - sum(found.windows for found in parts.values()) * unit_s
    if rest > 0:
        rows.append(OpTime(outside, "host", calls, rest, provider=provider))
    return [row for row in rows if row.time_s > 0]


def window_events(events: list[dict[str, Any]], name: str = CALL) -> list[tuple[float, float]]:
    """The (start, end) of each complete event called ``name``, in the trace's unit."""
    return [(float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0))) for e in events
            if e.get("ph") == "X" and e.get("name") == name]


def check_windows(windows: list[tuple[float, float]], calls: int, what: str) -> None:
    """Refuse a trace that lost calls' windows: without them, every call's time would read as
    the host's (a profiler that dropped events, or hit its event limit)."""
    if len(windows) != calls:
        raise ValueError(f"the trace holds {len(windows)} {what} for {calls} profiled calls: "
                         "the profiler lost events, so its profile would misattribute time")
