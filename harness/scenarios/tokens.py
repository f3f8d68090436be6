"""Generation requests under load: each served query's time to first token and time per output
token, and their figures against the bounds MLPerf's LLM server rules set.

A generation task's prepared step is its *timed* variant (``Generation.timed``): every call
returns its tokens and a mark before prefill and after every token. The serving loop keeps each
call's marks and reads them only after the run (reading a CUDA event costs host time, which
inside the loop would delay the next query). Queries map to calls in the order they were
served: the server's queue is first in, first out, so the i-th batch holds the next
``batches[i]`` served queries.

Per query, as LoadGen defines them for LLMs:

- **TTFT**: when the first token existed, minus the query's *scheduled* arrival, so queueing
  behind earlier calls is in it. The first token's time on the serving loop's clock is the
  call's completion minus the device-timed span from the first token's mark to the last: it
  includes the call's final synchronisation and return (microseconds on the CPU), so it never
  understates the figure, and it needs no common clock between host and device.
- **TPOT**: the call's decode time (first token's mark to the last) over its ``new_tokens - 1``
  decode steps. Every sequence of a batch decodes together, so the queries of one call share
  it.

Batching is static: a batch runs prefill and every decode step together, and a query arriving
meanwhile waits for the whole call (no continuous batching, which would let it join between
decode steps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness import generation
from harness.scenarios import early_stopping
from harness.scenarios.options import LoadOptions
from harness.scenarios.serve import Trace

NAN = float("nan")
#: why a task that generates no tokens has no token figures.
NOT_GENERATION = "not a generation task: it produces no tokens to time"
#: a run's token columns, besides the bounds' (``ttft_bound_s``, ``tpot_bound_s``).
TTFT = ("ttft_s", "ttft_ci_low_s", "ttft_ci_high_s", "ttft_p90_s", "ttft_p99_s")
TPOT = ("tpot_s", "tpot_ci_low_s", "tpot_ci_high_s", "tpot_p90_s", "tpot_p99_s")
#: timing-loop generation figures a load row leaves empty, with the reason.
LOOP_ONLY = {
    "decode_tokens_per_s": "a load row gives throughput_items_per_s (sequences per second) and "
                           "per-query time per output token",
    "e2e_s": "a load row gives each query's end-to-end latency in the latency columns",
    "token_agreement": "a load run checks each batch size's first output (correct); the "
                       "timing loop measures the share of agreeing tokens",
}


@dataclass(frozen=True)
class TokenTimes:
    """Per served query, in the order served: time to first token and time per output token
    (empty with ``new_tokens = 1``: no decode step); per call, its per-token times."""

    ttft_s: list[float]
    tpot_s: list[float]
    calls_s: list[list[float]]
    new_tokens: int


def per_query(trace: Trace, marks: Sequence[Sequence[Any]], new_tokens: int) -> TokenTimes:
    """Each served query's TTFT and TPOT from ``marks`` (per call served, in order: the
    ``new_tokens + 1`` marks its timed step returned)."""
    if len(marks) != len(trace.batches):
        raise ValueError(f"{len(marks)} calls' marks for {len(trace.batches)} batches served")
    served = np.flatnonzero(trace.completed)
    if sum(trace.batches) != len(served):
        raise ValueError(f"{len(served)} queries served, but the batches hold "
                         f"{sum(trace.batches)}")
    calls = [generation.intervals_s(list(m)) for m in marks]
    ttft: list[float] = []
    tpot: list[float] = []
    first = 0
    for k, call in zip(trace.batches, calls, strict=True):
        if len(call) != new_tokens:
            raise ValueError(f"a call returned {len(call) + 1} marks; {new_tokens} tokens "
                             f"need {new_tokens + 1}")
        decode = sum(call[1:])  # the first token's mark to the last
        for query in served[first:first + k]:
            ttft.append(float(trace.done_ns[query] - trace.scheduled_ns[query]) * 1e-9 - decode)
            if new_tokens > 1:
                tpot.append(decode / (new_tokens - 1))
        first += k
    return TokenTimes(ttft, tpot, calls, new_tokens)


@dataclass(frozen=True)
class Bound:
    """One bound a server run is judged by: its name in words, the bound, the p99 measured and
    how many queries missed it (dropped ones included)."""

    name: str
    bound_s: float
    p99_s: float
    over: int


def columns(tokens: TokenTimes, trace: Trace, options: LoadOptions
            ) -> tuple[dict[str, Any], dict[str, str], list[Bound]]:
    """The token columns of a load row, reasons for the empty ones, and the token bounds to
    judge the run by."""
    missing: dict[str, str] = dict(LOOP_ONLY)
    row: dict[str, Any] = {column: NAN for column in LOOP_ONLY}
    row.update(generate_calls=len(tokens.calls_s), token_samples_s=tokens.calls_s,
               ttft_samples_s=tokens.ttft_s, tpot_samples_s=tokens.tpot_s)
    row.update(generation.summary_columns("ttft", tokens.ttft_s, missing))
    if tokens.new_tokens > 1:
        row.update(generation.summary_columns("tpot", tokens.tpot_s, missing))
    else:
        row.update(dict.fromkeys(TPOT, NAN))
        missing.update(dict.fromkeys(TPOT, "new_tokens=1: the only token comes from prefill; "
                                            "there is no decode step"))
    dropped = int(trace.dropped.sum())
    bounds: list[Bound] = []
    for name, samples, bound in (("ttft", tokens.ttft_s, options.ttft_bound_s),
                                 ("tpot", tokens.tpot_s, options.tpot_bound_s)):
        flag = f"--{name}-bound-ms"
        row[f"{name}_bound_s"] = NAN if bound is None else bound
        if bound is None or not samples:
            row[f"{name}_over_bound_fraction"] = NAN
            why = f"no {flag} given" if bound is None else missing[f"{name}_s"]
            missing[f"{name}_over_bound_fraction"] = why
            if bound is None:
                missing[f"{name}_bound_s"] = why
            continue
        # A dropped query never produced a token: it missed both bounds.
        over = sum(v > bound for v in samples) + dropped
        row[f"{name}_over_bound_fraction"] = over / (len(samples) + dropped)
        bounds.append(Bound(name.upper(), bound, row[f"{name}_p99_s"], over))
    return row, missing, bounds


def not_measured(options: LoadOptions, why: str, generation_task: bool
                 ) -> tuple[dict[str, Any], dict[str, str]]:
    """A load row without token figures: the bounds given are recorded, and the token figures
    (a generation task's all, another task's those the bounds ask for) say ``why``."""
    row: dict[str, Any] = {}
    missing: dict[str, str] = {}
    if generation_task:
        row.update(dict.fromkeys((*TTFT, *TPOT, *LOOP_ONLY), NAN))
        missing.update(dict.fromkeys((*TTFT, *TPOT), why))
        missing.update(LOOP_ONLY)
    for name in ("ttft", "tpot"):
        bound = getattr(options, f"{name}_bound_s")
        if bound is None:
            continue
        row.update({f"{name}_bound_s": bound, f"{name}_over_bound_fraction": NAN,
                    f"{name}_p99_s": NAN})
        missing.update({f"{name}_over_bound_fraction": why, f"{name}_p99_s": why})
    return row, missing


def judge(bound: Bound, count: int) -> list[str]:
    """Why LoadGen would not accept the run against ``bound`` with ``count`` queries issued
    (empty: it would): its early-stopping test at p99, and the p99 itself within the bound."""
    reasons = []
    if not early_stopping.server_satisfied(count, bound.over, 0.99):
        reasons.append(f"{bound.name} early stopping not satisfied ({bound.over} of {count} "
                       "over the bound)")
    if not bound.p99_s <= bound.bound_s:  # a NaN p99 fails too
        reasons.append(f"p99 {bound.name} over its bound")
    return reasons
