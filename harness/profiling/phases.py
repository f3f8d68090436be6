"""Prefill and decode inside profiled generation calls.

A generation task's timed variant takes a mark before prefill and after every token
(:func:`harness.generation.mark`). While a profiler runs, each mark also stamps the trace with a
:data:`TOKEN` annotation (:func:`harness.generation.marking`), so a profiled call's window splits
at its second mark, the first token's: prefill from the call's start to there, decode after.

On a GPU the host marks a token when it has queued the work, not when the device has done it:
the cut then moves to the end of the last device activity launched before the mark, so that
prefill's kernels count for prefill even when the host is already queueing decode.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

#: the annotation a mark leaves in a profiler's trace.
TOKEN = "harness.token"
PREFILL = "prefill"
DECODE = "decode"

Window = tuple[float, float]


def token_marks(events: Iterable[dict[str, Any]], category: str = "user_annotation"
                ) -> list[float]:
    """The start times of the :data:`TOKEN` annotations on the host (``category``: torch's
    host-side annotations; its device-side copies are left out), sorted."""
    return sorted(float(e["ts"]) for e in events
                  if e.get("name") == TOKEN and e.get("cat") == category)


def split(windows: list[Window], marks: list[float],
          launches: Iterable[Window] = ()) -> dict[str, list[Window]]:
    """The calls' ``windows`` cut into prefill and decode windows at each call's first-token
    mark, or later at the end of device work (``launches``: (launched, finished) pairs) launched
    before it. A call with fewer than two marks cannot be cut: a ValueError says so."""
    work = sorted(launches)
    launched = [start for start, _ in work]
    prefill: list[Window] = []
    decode: list[Window] = []
    for start, end in windows:
        first = bisect.bisect_left(marks, start)
        inside = [m for m in marks[first:first + 2] if m < end]
        if len(inside) < 2:
            raise ValueError(f"a profiled call holds {len(inside)} token marks, not the mark "
                             "before prefill and the first token's")
        token = inside[1]
        done = [finished for _, finished in
                work[bisect.bisect_left(launched, start):bisect.bisect_left(launched, token)]]
        cut = min(max([token, *done]), end)
        prefill.append((start, cut))
        decode.append((cut, end))
    return {PREFILL: prefill, DECODE: decode}
