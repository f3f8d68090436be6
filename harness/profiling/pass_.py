"""The profiling pass: after a case is timed (and its collectors have run), profile a fixed
number of calls with the adapter's native profiler, and turn the profile into the row's trust
figures and the run's operator rows.

Never inside timed samples: the profiled calls are their own pass, so a profiled run's timing
figures are those of a plain run. A profiler that is missing or fails leaves the profile
columns empty with the reason; the row and the run go on.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from harness.profiling.categories import CATEGORIES
from harness.profiling.model import NAN, NativeProfile
from harness.profiling.ops import PROFILE_KEY, UNATTRIBUTED, pack_trace, trace_name

if TYPE_CHECKING:
    from harness.adapters import Adapter, Step
    from harness.workload import Task

#: profile about this much wall time of calls ...
TARGET_S = 0.5
#: ... but at least this many calls (a slow case still gets a profile of several calls) ...
MIN_CALLS = 5
#: ... and at most this many (a microsecond call would make millions of events: traces of
#: hundreds of megabytes, and ONNX Runtime stops recording at its event limit).
MAX_CALLS = 1000

#: The row columns the pass fills.
PROFILE_COLUMNS = ("profiler", "profile_calls", "profile_wall_s", "profile_overhead",
                   "profile_coverage", "device_busy_fraction", "profile_trace")


def profile_calls(median_s: float) -> int:
    """How many calls to profile for a case whose timed median is ``median_s``."""
    if not median_s > 0 or math.isinf(median_s):
        return MIN_CALLS
    return max(MIN_CALLS, min(MAX_CALLS, math.ceil(TARGET_S / median_s)))


def profile_pass(task: Task, step: Step, adapter: Adapter, row: dict[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """Profile ``step`` on ``adapter`` after the timing of ``row`` (its identity and
    ``latency_median_s`` are read): the profile columns, with :data:`PROFILE_KEY` holding the
    operator rows and packed trace for the writer; and the reasons for empty columns."""
    median = float(row.get("latency_median_s") or NAN)
    calls = profile_calls(median)
    notes: list[str] = []
    try:
        if task.generation is not None:
            task, step, notes = generation_step(task, adapter, step)
        native = adapter.profile(task, step, calls)
        native.notes[:0] = notes
    except Exception as exc:  # a profiler's failure empties the profile, never the row
        from harness.execution.rows import error_text

        reason = f"the profiler failed: {error_text(exc)}"
        return dict.fromkeys(PROFILE_COLUMNS, NAN), dict.fromkeys(PROFILE_COLUMNS, reason)
    return figures(native, row, median)


def generation_step(task: Task, adapter: Adapter, step: Step
                    ) -> tuple[Task, Step, list[str]]:
    """What to profile for a generation task: its timed variant, whose marks let the profiler
    cut each call into prefill and decode; where marks cannot be taken, the plain call, profiled
    as a task without phases, and the reason."""
    from harness.generation import why_not

    gen = task.generation
    assert gen is not None
    reason = why_not(adapter)
    if reason:
        return (dataclasses.replace(task, generation=None), step,
                [f"prefill and decode not told apart: {reason}"])
    return task, adapter.prepare(dataclasses.replace(task, fn=gen.timed)), []


def figures(native: NativeProfile, row: dict[str, Any], median: float
            ) -> tuple[dict[str, Any], dict[str, str]]:
    """Row columns and operator rows of a profile (see :func:`profile_pass`)."""
    missing: dict[str, str] = {}
    per_call = native.wall_s / native.calls
    covered = sum(op.time_s for op in native.ops)
    values: dict[str, Any] = {
        "profiler": native.profiler, "profile_calls": native.calls,
        "profile_wall_s": per_call,
        "profile_overhead": per_call / median if median > 0 else NAN,
        "profile_coverage": covered / native.wall_s,
        "device_busy_fraction": (NAN if native.device_busy_s is None
                                 else native.device_busy_s / native.wall_s),
        "profile_trace": None,
    }
    if not median > 0:
        missing["profile_overhead"] = "the case has no timed median to compare with"
    if native.device_busy_s is None:
        missing["device_busy_fraction"] = native.device_missing or "no device activity recorded"
    payload: dict[str, Any] = {"ops": operator_rows(native, row)}
    if native.trace is not None:
        values["profile_trace"] = trace_name(str(row.get("case_id")),
                                             str(row.get("adapter_label")),
                                             int(row.get("repetition") or 0))
        payload["trace"] = pack_trace(native.trace)
    else:
        missing["profile_trace"] = native.trace_missing or "the profiler wrote no trace"
    if native.notes:
        missing["profiler"] = "; ".join(native.notes)
    values[PROFILE_KEY] = payload
    return values, missing


def operator_rows(native: NativeProfile, row: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``ops.jsonl`` rows (without ``run_id``: the writer knows it) of a profile, per case
    call, largest first, the unattributed remainder (between calls: in no phase) last. A
    generation task's operators carry their phase, prefill or decode."""
    unknown = sorted({op.category for op in native.ops} - set(CATEGORIES))
    if unknown:
        raise ValueError(f"a profiler reported unknown categories: {', '.join(unknown)}")
    calls, wall = native.calls, native.wall_s
    head = {"case_id": row.get("case_id"), "adapter": row.get("adapter_label"),
            "repetition": int(row.get("repetition") or 0), "phase": ""}
    rows = [{**head, "phase": op.phase, "op": op.op, "category": op.category,
             "calls": op.count / calls, "self_time_s": op.time_s / calls, "share": op.time_s / wall,
             "flops": op.flops / calls, "flops_source": op.flops_source,
             "bytes": op.bytes / calls, "provider": op.provider}
            for op in sorted(native.ops, key=lambda op: -op.time_s)]
    rest = wall - sum(op.time_s for op in native.ops)
    rows.append({**head, "op": UNATTRIBUTED, "category": "unattributed", "calls": NAN,
                 "self_time_s": max(rest, 0.0) / calls, "share": max(rest, 0.0) / wall,
                 "flops": NAN, "flops_source": "", "bytes": NAN, "provider": ""})
    return rows
