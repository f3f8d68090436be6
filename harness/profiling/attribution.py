"""Wall-time attribution: which operator the profiled calls' wall time belongs to, instant by
instant.

Profilers report nested events (an ``aten::linear`` holds an ``aten::addmm``) on several
threads. Attribution gives each instant inside a call window to the innermost event running on
each thread at that instant (its self time), split evenly between threads when several run
operators at once, so that the operators' times add up to the time covered and never to more
than the wall time. Time inside a window that no event covers is returned apart (the caller
names it: Python, dispatch, a runtime's own overhead); time outside every window is not
attributed here.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """One event: ``key`` (the operator it counts for) ran on ``track`` from ``start`` to
    ``end`` (any time unit, the same for all spans and windows)."""

    key: str
    start: float
    end: float
    track: str = ""
    #: a figure to total per key over the spans that start inside a window (FLOPs).
    weight: float = 0.0


@dataclass(frozen=True)
class Attribution:
    """Per key: its attributed time, how many of its spans started inside a window and their
    total weight; and the
    window time no span covers (``uncovered``), the windows' total, and the union of all spans
    inside the windows (``busy``)."""

    time: dict[str, float]
    count: dict[str, int]
    weight: dict[str, float]
    uncovered: float
    windows: float
    busy: float


@dataclass
class _Open:
    """A span whose self time is still being cut: it accrues from ``cursor`` to ``end``."""

    span: Span
    cursor: float
    end: float


def self_segments(spans: list[Span]) -> list[Span]:
    """Each span's self time on its own track, as segments: nested spans are cut out of their
    parents; a child that outlives its parent is clipped to it (profilers' clocks jitter)."""
    out: list[Span] = []
    by_track: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        if span.end > span.start:
            by_track[span.track].append(span)
    for track, items in by_track.items():
        items.sort(key=lambda s: (s.start, -s.end))
        stack: list[_Open] = []

        def close_until(t: float, stack: list[_Open] = stack, track: str = track) -> None:
            while stack and stack[-1].end <= t:
                done = stack.pop()
                out.append(Span(done.span.key, done.cursor, done.end, track))
                if stack:
                    stack[-1].cursor = done.end

        for span in items:
            close_until(span.start)
            end = span.end
            if stack:
                parent = stack[-1]
                out.append(Span(parent.span.key, parent.cursor, span.start, track))
                end = min(end, parent.end)
                parent.cursor = end
            stack.append(_Open(span, span.start, end))
        close_until(float("inf"))
    return [s for s in out if s.end > s.start]


def merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The union of intervals as sorted, disjoint intervals."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def attribute(spans: list[Span], windows: list[tuple[float, float]]) -> Attribution:
    """Attribute the time inside ``windows`` to the self time of ``spans`` (see the module)."""
    windows = merge(windows)
    segments = self_segments(spans)
    points: list[tuple[float, int, int]] = []  # (time, order, index): ends sort before starts
    for index, (start, end) in enumerate(windows):
        points += [(start, 1, -1 - index), (end, 0, -1 - index)]
    for index, seg in enumerate(segments):
        points += [(seg.start, 1, index), (seg.end, 0, index)]
    points.sort()
    time: dict[str, float] = defaultdict(float)
    active: set[int] = set()
    inside = 0
    uncovered = busy = 0.0
    last = points[0][0] if points else 0.0
    for t, starts, index in points:
        dt = t - last
        if dt > 0 and inside:
            if active:
                busy += dt
                for i in active:
                    time[segments[i].key] += dt / len(active)
            else:
                uncovered += dt
        last = t
        if index < 0:
            inside += 1 if starts else -1
        elif starts:
            active.add(index)
        else:
            active.discard(index)
    count: dict[str, int] = defaultdict(int)
    weight: dict[str, float] = defaultdict(float)
    window_starts = [start for start, _ in windows]
    for span in spans:
        at = bisect.bisect_right(window_starts, span.start) - 1
        if at >= 0 and span.start < windows[at][1]:
            count[span.key] += 1
            if span.weight:
                weight[span.key] += span.weight
    return Attribution(dict(time), dict(count), dict(weight), uncovered,
                       sum(end - start for start, end in windows), busy)
