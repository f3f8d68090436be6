"""A scenario's trace → the row's figures: latency percentiles (queueing included), achieved
rate, fraction over the bound, the generator's lag, early stopping, and whether the run is valid
by its own rule and by LoadGen's."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.scenarios import early_stopping
from harness.scenarios.options import MINIMUMS, LoadOptions
from harness.scenarios.serve import Trace
from harness.scenarios.tokens import (
    NOT_GENERATION,
    Bound,
    TokenTimes,
    judge,
    not_measured,
)
from harness.scenarios.tokens import columns as token_columns
from harness.stats import summarize, summary_columns

NAN = float("nan")
NS = 1e-9


def _seconds(values: npt.NDArray[np.int64]) -> list[float]:
    return [float(v) * NS for v in values]


def latencies(trace: Trace, scenario: str) -> list[float]:
    """Each query's latency (each group's, for multi-stream) in seconds, counted from its
    scheduled issue time; dropped queries have none."""
    if scenario == "multi-stream":
        return [(end - begin) * NS for begin, end in trace.groups]
    served = trace.completed
    return _seconds(trace.done_ns[served] - trace.scheduled_ns[served])


def figures(trace: Trace, options: LoadOptions, items: int,
            tokens: TokenTimes | str | None = None
            ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Row columns, reasons for the empty ones, and notes for the row's message (why a run is
    not valid, which rule it followed). ``tokens``: a generation task's per-query token times,
    or why it has none; None for a task that generates no tokens."""
    scenario = options.scenario
    bound = options.latency_bound_s
    served = trace.completed
    issued = len(trace.scheduled_ns)
    completed = int(served.sum())
    duration = (trace.end_ns - trace.origin_ns) * NS
    missing: dict[str, str] = {}
    notes: list[str] = []
    row: dict[str, Any] = {
        "scenario": scenario, "load_rule": options.rule, "queries": issued,
        "dropped_queries": int(trace.dropped.sum()), "max_batch": options.max_batch,
        "mean_batch": float(np.mean(trace.batches)) if trace.batches else NAN,
        "sampling_s": duration, "loops": 1,
        "batch_timeout_s": options.batch_timeout_s if scenario == "server" else NAN,
        "latency_bound_s": NAN if bound is None else bound,
        "achieved_qps": completed / duration if duration > 0 else NAN,
    }
    row["throughput_items_per_s"] = (completed * items / duration) if duration > 0 else NAN
    if scenario != "server":
        missing["qps"] = f"{scenario} has no offered rate (queries are not issued on a schedule)"
        missing["batch_timeout_s"] = "only the server scenario waits for a batch to fill"
    if bound is None:
        missing["latency_bound_s"] = "no --latency-bound-ms given"
    meta: dict[str, Any] = {"scenario_percentile": options.percentile,
                            "schedule_seed": options.seed if scenario == "server" else None,
                            "rule": options.rule_text()}

    if scenario == "offline":
        # One value per batch (its wall time), not per query: every query was issued at the
        # start, so a per-query latency would only say where in the line it stood.
        samples, first = [], 0
        for k in trace.batches:
            samples.append(float(trace.done_ns[first] - trace.start_ns[first]) * NS)
            first += k
        row["samples_s"] = samples
        row["n_samples"] = len(samples)
        why = "offline reports throughput only: every query was issued at the start"
        for column in ("latency_median_s", "latency_p90_s", "latency_p99_s",
                       "early_stop_latency_s", "over_bound_fraction"):
            missing[column] = why
    else:
        values = latencies(trace, scenario)
        summary, summary_missing = summary_columns(summarize(values, items=items))
        summary.pop("throughput_items_per_s")
        summary_missing.pop("throughput_items_per_s", None)
        row.update(summary)
        missing.update(summary_missing)
        row["samples_s"] = values
        _tail(row, missing, meta, values, trace, options)
    _lag(row, missing, notes, trace, options, meta)
    if scenario in ("server", "offline"):
        waits = trace.start_ns[served] - trace.scheduled_ns[served]
        meta["queue_wait_mean_s"] = float(np.mean(waits)) * NS if completed else None
    service = trace.done_ns[served] - trace.start_ns[served]
    meta["service_mean_s"] = float(np.mean(service)) * NS if completed else None
    if scenario == "multi-stream":
        meta.update(groups=len(trace.groups), group_size=options.group_size)
    row["meta"] = meta
    bounds = _token_columns(row, missing, trace, options, tokens)
    _validity(row, notes, trace, options)
    _loadgen(row, notes, trace, options, meta, items, bounds)
    return row, missing, notes


def _token_columns(row: dict[str, Any], missing: dict[str, str], trace: Trace,
                   options: LoadOptions, tokens: TokenTimes | str | None) -> list[Bound]:
    """A generation task's TTFT and TPOT columns; the token bounds the run is judged by."""
    if isinstance(tokens, TokenTimes) and options.scenario == "offline":
        tokens = ("offline issues every query at the start: a time to first token would only "
                  "say where in the line it stood")
    if not isinstance(tokens, TokenTimes):
        values, why = not_measured(options, tokens or NOT_GENERATION, tokens is not None)
        row.update(values)
        missing.update(why)
        return []
    values, why, bounds = token_columns(tokens, trace, options)
    row.update(values)
    missing.update(why)
    return bounds


def _tail(row: dict[str, Any], missing: dict[str, str], meta: dict[str, Any],
          values: list[float], trace: Trace, options: LoadOptions) -> None:
    """Early-stopping estimate (single- and multi-stream) and the fraction over the bound."""
    percentile = options.percentile
    bound = options.latency_bound_s
    if options.scenario == "server" or percentile is None:
        row["early_stop_latency_s"] = NAN
        missing["early_stop_latency_s"] = ("server's early stopping is a test of the bound, "
                                           "not an estimate: see loadgen_valid")
    else:
        found, t = early_stopping.estimate(values, percentile)
        row["early_stop_latency_s"] = NAN if found is None else found
        meta["early_stop_discarded"] = max(t - 1, 0)
        if found is None:
            need = early_stopping.min_queries(percentile)
            unit = "groups" if options.scenario == "multi-stream" else "queries"
            missing["early_stop_latency_s"] = (f"{len(values)} {unit}: the early-stopping "
                                               f"p{percentile * 100:g} estimate needs {need}")
    if bound is None:
        row["over_bound_fraction"] = NAN
        missing["over_bound_fraction"] = "no --latency-bound-ms given"
        return
    over = sum(v > bound for v in values) + int(trace.dropped.sum())
    total = len(values) + int(trace.dropped.sum())
    row["over_bound_fraction"] = over / total if total else NAN
    meta["over_bound"] = over


def _lag(row: dict[str, Any], missing: dict[str, str], notes: list[str], trace: Trace,
         options: LoadOptions, meta: dict[str, Any]) -> None:
    if options.scenario != "server":
        row["generator_lag_s"] = NAN
        missing["generator_lag_s"] = (f"{options.scenario} issues each query when the last "
                                      "returns: there is no schedule to fall behind")
        return
    lag = (trace.lag_ns if trace.lag_ns is not None else np.zeros(0)) * NS
    if not lag.size:
        row["generator_lag_s"] = NAN
        missing["generator_lag_s"] = "no query was issued"
        return
    p99 = float(np.percentile(lag, 99))
    row["generator_lag_s"] = p99
    meta.update(generator_lag_mean_s=float(lag.mean()), generator_lag_max_s=float(lag.max()),
                generator_lag_tolerance_s=options.lag_tolerance_s)
    if p99 > options.lag_tolerance_s:
        notes.append(f"invalid: the load generator fell behind (p99 lag {p99 * 1e3:.2f} ms, "
                     f"tolerance {options.lag_tolerance_s * 1e3:.2f} ms): the offered load was "
                     "not the Poisson schedule asked for")


def _validity(row: dict[str, Any], notes: list[str], trace: Trace, options: LoadOptions) -> None:
    """Valid by the run's own rule: the generator kept to its schedule, nothing was dropped,
    and a closed loop reached its minimum count before its time cap."""
    dropped = int(trace.dropped.sum())
    if dropped:
        notes.append(f"invalid: {dropped} of {len(trace.dropped)} queries found the queue full "
                     f"(--max-queue {options.max_queue}) and were dropped (counted over the bound)")
    if trace.hit_cap:
        m = trace.minimums or options.minimums
        unit = "groups" if options.scenario == "multi-stream" else "queries"
        notes.append(f"invalid: stopped at the {m.max_duration_s:g} s cap before the minimum "
                     f"of {m.queries} {unit}")
    row["load_valid"] = not any(note.startswith("invalid:") for note in notes)


def _loadgen(row: dict[str, Any], notes: list[str], trace: Trace, options: LoadOptions,
             meta: dict[str, Any], items: int, token_bounds: list[Bound]) -> None:
    """Whether the run would be VALID by LoadGen's rules (its minimums, early stopping and, for
    server, the bound at p99); the first reason it is not goes to the notes."""
    scenario = options.scenario
    need = MINIMUMS[("loadgen", scenario)]
    reasons = []
    if scenario == "server":
        span = (int(trace.scheduled_ns[-1]) - trace.origin_ns) * NS if len(trace.scheduled_ns) \
            else 0.0
    elif scenario == "offline":
        span = (trace.end_ns - trace.origin_ns) * NS
    else:
        span = (int(trace.issued_ns[-1]) - trace.origin_ns) * NS if len(trace.issued_ns) else 0.0
    if span < need.duration_s:
        reasons.append(f"ran {span:.3g} s of LoadGen's {need.duration_s:g} s minimum")
    count = len(trace.groups) if scenario == "multi-stream" else len(trace.scheduled_ns)
    if scenario == "offline":
        count *= items  # LoadGen counts offline samples; a query here is `items` of them
    if count < need.queries:
        unit = {"offline": "samples", "multi-stream": "groups"}.get(scenario, "queries")
        reasons.append(f"{count} {unit} of its {need.queries} minimum")
    if scenario in ("single-stream", "multi-stream") and _empty(row.get("early_stop_latency_s")):
        reasons.append("too few queries for early stopping")
    if scenario == "server":
        bounds = list(token_bounds)  # an LLM server is judged by p99 TTFT and p99 TPOT
        if options.latency_bound_s is not None:
            p99 = row.get("latency_p99_s")
            bounds.insert(0, Bound("latency", options.latency_bound_s,
                                   NAN if p99 is None else float(p99),
                                   int(meta.get("over_bound") or 0)))
        if not bounds:
            reasons.append("no latency bound to test")
        for bound in bounds:
            reasons.extend(judge(bound, count))
    if not row["load_valid"]:
        reasons.append("not valid by its own rule")
    row["loadgen_valid"] = not reasons
    if reasons:
        notes.append("not valid by LoadGen's rules: " + "; ".join(reasons))


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
