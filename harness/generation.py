"""Generation figures: time to first token, time per output token, decode tokens per second.

A generation task (``Task.generation``) produces ``new_tokens`` tokens per call: a prefill pass
over the prompt yields the first token, then one decode step per further token. The timing
loop times whole calls (end to end); this module's pass runs the task's *timed* variant, which
returns the tokens and a mark after each token, and turns the marks into per-phase figures.

How a step is marked (:func:`mark`) without a synchronisation per token distorting the
pipeline: on a CUDA device each mark is a CUDA event recorded on the stream, so the host keeps
queueing kernels and the events are read once, after the call's final synchronise; on the CPU
torch runs each operator to completion before returning, so a ``perf_counter`` read after a step
is already synchronised with its work.

Samples are calls: each call gives one TTFT (prefill and the first token), one TPOT (its decode
time divided by its decode steps, the per-request definition MLPerf bounds) and one end-to-end
time; calls are independent, so the median interval of :mod:`harness.stats` holds for them.
Every call's per-token times are kept (``token_samples_s``) for inter-token analyses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from harness.roofline import Ceiling, Peaks, row_figures
from harness.stats import summarize
from harness.workload import Generation

if TYPE_CHECKING:
    from harness.adapters import Adapter
    from harness.config import TimingOptions
    from harness.workload import Task

NAN = float("nan")
#: calls timed at least, whatever the time (a median interval at 95% needs 6).
MIN_CALLS = 6
#: result columns this pass fills (besides ``token_samples_s``), in schema order.
COLUMNS = (
    "ttft_s", "ttft_ci_low_s", "ttft_ci_high_s", "ttft_p90_s", "ttft_p99_s",
    "tpot_s", "tpot_ci_low_s", "tpot_ci_high_s", "tpot_p90_s", "tpot_p99_s",
    "decode_tokens_per_s", "e2e_s", "generate_calls", "token_agreement",
    "prefill_flops", "prefill_bytes", "decode_flops", "decode_bytes",
    "prefill_peak_fraction", "decode_peak_fraction",
)


#: called after every mark while set (:func:`marking`): a profiler stamps its trace there.
_listeners: list[Callable[[], None]] = []


@contextlib.contextmanager
def marking(listener: Callable[[], None]) -> Iterator[None]:
    """Call ``listener`` after every :func:`mark` inside the block (the profiling pass splits
    calls into prefill and decode with it); no cost to marks outside."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def mark(device: Any) -> Any:
    """A timestamp after the work queued so far on ``device`` (a ``torch.device``).

    CUDA: a recorded CUDA event, read after the call's synchronise (no host stall per token).
    CPU: ``perf_counter_ns`` (torch's CPU operators finish before they return). Other devices
    have no way here to time a step without stalling it: an error, not a wrong figure.
    """
    if device.type == "cuda":
        import torch

        event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        event.record()
        stamp: Any = event
    elif device.type == "cpu":
        stamp = time.perf_counter_ns()
    else:
        raise RuntimeError(f"no per-token clock for device {device.type!r}")
    for listener in _listeners:
        listener()
    return stamp


def intervals_s(marks: list[Any]) -> list[float]:
    """Seconds between successive marks (integer nanoseconds, or CUDA events already done)."""
    if all(isinstance(m, int) for m in marks):
        return [(b - a) * 1e-9 for a, b in itertools.pairwise(marks)]
    # CUDA events: elapsed_time is in milliseconds.
    return [a.elapsed_time(b) * 1e-3 for a, b in itertools.pairwise(marks)]


def why_not(adapter: Adapter) -> str:
    """Why per-token figures cannot be taken on this adapter as configured, or ""."""
    if adapter.config.get("graphs"):
        return ("per-token times need each step launched on its own; a CUDA graph replays the "
                "whole call as one (run without graphs=true)")
    return ""


def sample(task: Task, adapter: Adapter, options: TimingOptions,
           clock: Callable[[], float] = time.perf_counter) -> tuple[list[list[float]], Any]:
    """Per-call token times (seconds; the first entry of each call is its TTFT) and the last
    call's tokens. One untimed call first (lazy initialisation, compilation); then calls until
    the timing options' minimum time and count (at least :data:`MIN_CALLS`), or their cap."""
    gen = task.generation
    assert gen is not None
    step = adapter.prepare(dataclasses.replace(task, fn=gen.timed))
    step()
    adapter.synchronize()
    calls: list[list[float]] = []
    tokens = None
    start = clock()
    while True:
        tokens, marks = step()
        adapter.synchronize()  # the last mark's work is done before any mark is read
        calls.append(intervals_s(list(marks)))
        elapsed = clock() - start
        enough = len(calls) >= max(MIN_CALLS, options.min_samples) and elapsed >= options.min_time_s
        if enough or (len(calls) >= MIN_CALLS and elapsed >= options.max_time_s):
            return calls, tokens


def figures(gen: Generation, calls: list[list[float]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The generation columns from per-call token times, and the reason for each empty one."""
    ttft = [call[0] for call in calls]
    decode = [sum(call[1:]) for call in calls]
    steps = gen.new_tokens - 1
    values: dict[str, Any] = {"generate_calls": len(calls), "token_samples_s": calls,
                              "e2e_s": summarize([t + d for t, d in zip(ttft, decode,
                                                                        strict=True)]).median}
    missing: dict[str, str] = {}
    values.update(summary_columns("ttft", ttft, missing))
    if steps > 0:
        values.update(summary_columns("tpot", [d / steps for d in decode], missing))
        median_decode = summarize(decode).median
        values["decode_tokens_per_s"] = (gen.batch * steps / median_decode
                                         if median_decode > 0 else NAN)
        if not median_decode > 0:
            missing["decode_tokens_per_s"] = "the decode time measured as 0"
    else:
        reason = "new_tokens=1: the only token comes from prefill; there is no decode step"
        for column in ("tpot_s", "tpot_ci_low_s", "tpot_ci_high_s", "tpot_p90_s", "tpot_p99_s",
                       "decode_tokens_per_s", "decode_peak_fraction"):
            values[column] = NAN
            missing[column] = reason
    return values, missing


def summary_columns(name: str, samples: list[float], missing: dict[str, str]
                    ) -> dict[str, Any]:
    """``{name}_s`` (the median), its interval, p90 and p99 of ``samples``; reasons for empty
    interval ends go into ``missing``."""
    summary = summarize(samples)
    for field, why in summary.missing.items():
        if field in ("ci_low", "ci_high"):
            missing[f"{name}_{field}_s"] = why
    return {f"{name}_s": summary.median, f"{name}_ci_low_s": summary.ci_low,
            f"{name}_ci_high_s": summary.ci_high, f"{name}_p90_s": summary.p90,
            f"{name}_p99_s": summary.p99}


def measure(task: Task, adapter: Adapter, options: TimingOptions, missing: dict[str, str]
            ) -> dict[str, Any]:
    """The generation pass of one case: its columns; the reasons for empty ones go into
    ``missing``."""
    gen = task.generation
    assert gen is not None
    values: dict[str, Any] = {"prefill_flops": _num(gen.prefill.flops),
                              "prefill_bytes": _num(gen.prefill.bytes),
                              "decode_flops": _num(gen.decode.flops),
                              "decode_bytes": _num(gen.decode.bytes)}
    reason = why_not(adapter)
    if reason:
        missing.update({column: reason for column in COLUMNS})
        return values
    calls, tokens = sample(task, adapter, options)
    timing, timing_missing = figures(gen, calls)
    values.update(timing)
    missing.update(timing_missing)
    if gen.agreement is None or not adapter.checks_output:
        values["token_agreement"] = NAN
        missing["token_agreement"] = "no float32 reference generation for this task"
    else:
        values["token_agreement"] = gen.agreement(adapter.to_host(tokens))
    return values


def phase_roofline(gen: Generation, row: dict[str, Any], peaks: Peaks | str, ceiling: Ceiling,
                   missing: dict[str, str]) -> dict[str, Any]:
    """Each phase's fraction of the roofline bound of the hardware's ``ceiling`` (as the row's
    ``peak_fraction``; ``peaks``, or the reason there are none, fix the measured roof): prefill
    over the median TTFT, decode over the median decode time (TPOT × decode steps). Reasons for
    empty fractions go into ``missing``."""
    values: dict[str, Any] = {}
    reason = peaks if isinstance(peaks, str) else ""
    known = peaks if isinstance(peaks, Peaks) else None
    decode_s = row.get("tpot_s", NAN) * (gen.new_tokens - 1)
    for name, phase, seconds in (("prefill", gen.prefill, row.get("ttft_s", NAN)),
                                 ("decode", gen.decode, decode_s)):
        if seconds != seconds or (gen.new_tokens == 1 and name == "decode"):
            continue  # the reason is already given where the time is missing
        figures_, why = row_figures(phase.flops, phase.bytes, seconds, known, reason, ceiling)
        values[f"{name}_peak_fraction"] = figures_["peak_fraction"]
        if "peak_fraction" in why:
            missing[f"{name}_peak_fraction"] = why["peak_fraction"]
    return values


def _num(value: float | None) -> float:
    return NAN if value is None else float(value)
