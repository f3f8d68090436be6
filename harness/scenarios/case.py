"""One case under one scenario on one adapter → one result row (an error row if it fails).

Batching: a query is one call of the case as given (its ``items``, e.g. one sequence for
``bert`` at ``batch=1``). To serve ``k`` queries in one call the case is rebuilt with its
``batch`` parameter multiplied by ``k``, and prepared by the adapter like any case (compilation
stays outside the clock). Steps are built for batch sizes 1, 2, 4 … up to ``--max-batch`` (and
``--max-batch`` itself); a batch of another size runs on the next larger step, padded, as
servers with fixed batch profiles do, and the row counts the padded batches. A workload without
a ``batch`` parameter cannot batch: it is served one query per call and the row says so.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import statistics
import time
from typing import Any

from harness import generation
from harness.adapters import Adapter, Step
from harness.config import TimingOptions
from harness.execution.loop import close_all, does_not_fit
from harness.execution.rows import (
    CASE_ERRORS,
    error_text,
    identity,
    is_empty,
    join,
    worker_peak_rss,
)
from harness.execution.targets import rebuild
from harness.plan import AdapterSpec
from harness.scenarios import serve
from harness.scenarios.figures import NAN, figures
from harness.scenarios.options import LoadOptions, Minimums
from harness.scenarios.schedule import poisson_offsets, server_count
from harness.scenarios.serve import Trace
from harness.scenarios.tokens import TokenTimes, per_query
from harness.timer import Timer
from harness.workload import Case, Skip, Task

#: Offline sizes its one query from the measured rate, with LoadGen's 10% slack (``kSlack``).
OFFLINE_SLACK = 1.1
NOT_MEASURED = "not measured in a load scenario (it times queries under load only)"


def batch_sizes(max_batch: int) -> list[int]:
    """The batch sizes prepared: powers of two below ``max_batch``, and ``max_batch``."""
    sizes = [1]
    while sizes[-1] * 2 < max_batch:
        sizes.append(sizes[-1] * 2)
    if sizes[-1] != max_batch:
        sizes.append(max_batch)
    return sizes


def base_row(case: Case, spec: AdapterSpec, options: LoadOptions, qps: float | None,
             repetition: int, adapter_options: dict[str, Any], device: str) -> dict[str, Any]:
    """The identifying columns of a load row (also used for its error row)."""
    return {
        **identity(case, spec, repetition, adapter_options=adapter_options, device=device,
                   scenario=options.scenario),
        "load_rule": options.rule, "qps": qps if qps is not None else NAN,
        "max_batch": options.max_batch,
        "latency_bound_s": NAN if options.latency_bound_s is None else options.latency_bound_s,
        **{f"{name}_bound_s": bound for name, bound in (("ttft", options.ttft_bound_s),
                                                        ("tpot", options.tpot_bound_s))
           if bound is not None},
    }


class Batches:
    """Prepared steps per batch size, and ``serve(k)``: one synchronised call for k queries.

    With ``new_tokens`` the steps are a generation task's timed variant, returning ``(tokens,
    marks)``: each call's marks are kept, in the order served, and read after the run.
    """

    def __init__(self, adapter: Adapter, steps: dict[int, Step], new_tokens: int | None = None):
        self.adapter = adapter
        self.steps = steps
        self.sizes = sorted(steps)
        self.padded = 0
        self.new_tokens = new_tokens
        self.marks: list[Any] = []

    def step_for(self, k: int) -> tuple[int, Step]:
        size = next(s for s in self.sizes if s >= k)
        return size, self.steps[size]

    def serve(self, k: int) -> None:
        size, step = self.step_for(k)
        if size != k:
            self.padded += 1
        output = step()
        self.adapter.synchronize()  # a query is done when its result exists: inside the clock
        if self.new_tokens is not None:
            self.marks.append(output[1])  # the tokens are dropped: only the marks are kept

    def tokens(self, trace: Trace) -> TokenTimes | None:
        """The served queries' token times (None unless the steps are timed generation)."""
        if self.new_tokens is None:
            return None
        return per_query(trace, self.marks, self.new_tokens)


def _build(case: Case, adapter: Adapter, options: LoadOptions, row: dict[str, Any],
           missing: dict[str, str]) -> tuple[Batches, Task, LoadOptions]:
    """Build, check and prepare one step per batch size; fills the row's build figures. A
    generation task's steps are its timed variant (per-token marks), unless the adapter has no
    per-token clock as configured: then its plain step, and the reason goes into the row."""
    batched = "batch" in case.workload.params
    if options.max_batch > 1 and not batched:
        row["message"] = (f"the workload has no batch parameter: served one query per call "
                          f"(--max-batch {options.max_batch} ignored)")
        options = dataclasses.replace(options, max_batch=1)
        row["max_batch"] = 1
    base_batch = int(case.params.get("batch", 1)) if batched else 1
    steps: dict[int, Step] = {}
    compile_s: list[float] = []
    base: Task | None = None
    new_tokens: int | None = None
    for size in batch_sizes(options.max_batch):
        params = dict(case.params)
        if batched:
            params["batch"] = base_batch * size
            case.workload.check_params(params)
        task = Case(case.suite, case.workload, params).build()
        ok, reason = adapter.supports(task)
        if not ok:
            raise Skip(reason)
        adapter.compile_s, adapter.compile_missing = None, Adapter.compile_missing
        gen = task.generation
        timed = gen is not None and not generation.why_not(adapter)
        step = adapter.prepare(dataclasses.replace(task, fn=gen.timed) if gen and timed
                               else task)
        if gen is not None and timed:
            new_tokens = gen.new_tokens
        if adapter.compile_s is not None:
            compile_s.append(adapter.compile_s)
        with adapter.running():
            t0 = time.perf_counter()
            output = step()
            adapter.synchronize()
            first = time.perf_counter() - t0
        if size == 1:
            base = dataclasses.replace(task, check=None, vary=None)
            row["first_call_s"] = first
        _check(task, adapter, output[0] if new_tokens else output, size, row)
        steps[size] = step
    assert base is not None
    row["compile_s"] = sum(compile_s) if compile_s else NAN
    if not compile_s:
        missing["compile_s"] = adapter.compile_missing
    return Batches(adapter, steps, new_tokens), base, options


def _check(task: Task, adapter: Adapter, output: Any, size: int, row: dict[str, Any]) -> None:
    """Each batch size's first output against the task's reference (the load run's own outputs
    are not kept: holding thousands would change the memory the run measures)."""
    if not adapter.checks_output or row.get("correct") is False:
        return
    if task.check is None:
        row["correct"] = None
        return
    try:
        task.check(adapter.to_host(output))
        row["correct"] = True
    except AssertionError as exc:
        lines = str(exc).strip().splitlines() or ["output differs from the reference"]
        row["correct"] = False
        row["message"] = join(row["message"], f"check failed at batch {size}: {lines[0]}")


def _warm(batches: Batches, options: LoadOptions) -> tuple[float, bool]:
    """Warm every step until steady (the timer's rule, a shorter cap): (seconds, steady)."""
    cap = 0.2 if options.rule == "quick" else 1.0
    timer = Timer(TimingOptions(max_warmup_s=cap))
    total, steady = 0.0, True
    with batches.adapter.running():
        for step in batches.steps.values():
            ok, _, elapsed_ns = timer.warm_up(step, batches.adapter.synchronize, 1)
            total += elapsed_ns * 1e-9
            steady = steady and ok
    return total, steady


def _offline_count(batches: Batches, options: LoadOptions) -> int:
    """Offline's sample count: enough for the minimum duration at the measured rate of the
    largest batch (plus 10%, as LoadGen sizes its query from the expected QPS), at least the
    rule's minimum."""
    size = batches.sizes[-1]
    times = []
    with batches.adapter.running():
        for _ in range(5):
            t0 = time.perf_counter()
            batches.serve(size)
            times.append(time.perf_counter() - t0)
    rate = size / max(statistics.median(times), 1e-9)
    m = options.minimums
    return max(m.queries, math.ceil(OFFLINE_SLACK * m.duration_s * rate), 1)


def run_scenario(batches: Batches, options: LoadOptions, qps: float | None,
                 clock: serve.Clock = time.perf_counter_ns, sleep: serve.Sleep = time.sleep
                 ) -> serve.Trace:
    """Run the scenario on prepared steps and return its trace."""
    m = options.minimums
    if options.scenario == "offline":
        count = _offline_count(batches, options)
    # A full collection now, and everything built so far (the model's many objects) moved out
    # of the collector's reach: otherwise a full collection can land inside the run, scanning
    # the whole model for milliseconds, in a call or while an arrival waits.
    gc.collect()
    gc.freeze()
    batches.marks.clear()  # offline's sizing calls are not queries
    try:
        return _scenario(batches, options, qps, m, count if options.scenario == "offline" else 0,
                         clock, sleep)
    finally:
        gc.unfreeze()


def _scenario(batches: Batches, options: LoadOptions, qps: float | None, m: Minimums,
              count: int, clock: serve.Clock, sleep: serve.Sleep) -> serve.Trace:
    with batches.adapter.running():
        if options.scenario == "single-stream":
            return serve.single_stream(batches.serve, m, clock)
        if options.scenario == "multi-stream":
            return serve.multi_stream(batches.serve, options.group_size, options.max_batch, m,
                                      clock)
        if options.scenario == "offline":
            return serve.offline(batches.serve, count, options.max_batch, clock)
        assert qps is not None
        offsets = poisson_offsets(qps, server_count(qps, m.duration_s, m.queries), options.seed)
        return serve.server(batches.serve, offsets, options.max_batch, options.batch_timeout_s,
                            options.max_queue, clock, sleep)


def run_load_case(case: Case, spec: AdapterSpec, adapter: Adapter, options: LoadOptions,
                  qps: float | None = None, repetition: int = 0,
                  sleep: serve.Sleep = time.sleep) -> dict[str, Any]:
    """One row for ``case`` under ``options.scenario`` (at ``qps`` for server); any failure
    becomes an error row, never an exception."""
    qps = options.qps if qps is None else qps
    row = base_row(case, spec, options, qps, repetition, dict(adapter.config), adapter.device)
    missing: dict[str, str] = {}
    stage = "build"
    try:
        too_big = does_not_fit(case)
        if too_big:
            return {**row, "status": "skipped", "message": too_big}
        batches, task, options = _build(case, adapter, options, row, missing)
        stage = "warm-up"
        row["warmup_s"], row["warmup_steady"] = _warm(batches, options)
        stage = "load"
        trace = run_scenario(batches, options, qps, sleep=sleep)
        stage = "figures"
        tokens: TokenTimes | str | None = batches.tokens(trace)
        if task.generation is not None and tokens is None:
            tokens = generation.why_not(adapter)
        values, found_missing, notes = figures(trace, options, task.items, tokens)
    except Skip as exc:
        return {**row, "status": "skipped", "message": str(exc) or "skipped by the workload"}
    except CASE_ERRORS as exc:
        return {**row, "status": "error", "correct": None,
                "message": f"{stage} failed: {error_text(exc)}"}
    meta = values.pop("meta")
    row.update(values)  # the offered qps stays the one this run was given (a peak probe's)
    missing.update(found_missing)
    row.update(items=task.items,
               flops=NAN if task.flops is None else float(task.flops),
               bytes=NAN if task.bytes is None else float(task.bytes))
    meta.update(batch_sizes=batches.sizes, padded_batches=batches.padded)
    row["meta"] = {**task.row_meta(), **adapter.case_meta(), **meta}
    row["meets_bound"] = _meets(row, options, task.generation is not None)
    for column in ("peak_rss_bytes", "energy_j", "peak_fraction"):
        missing[column] = NOT_MEASURED
    row["energy_source"] = f"unavailable: {NOT_MEASURED}"
    if not row["warmup_steady"]:
        notes.append("warm-up never settled: figures may drift")
    row["message"] = "; ".join(filter(None, [row["message"], *notes,
                                             f"followed {options.rule_text()}"]))
    row["missing"] = {k: v for k, v in missing.items() if is_empty(row.get(k))}
    return row


def _meets(row: dict[str, Any], options: LoadOptions, generation_task: bool) -> bool | None:
    """Whether the run met every bound given at the scenario's percentile and was valid; None
    without a bound to judge. Latency: server's p99, single- and multi-stream's early-stopping
    estimate. Time to first token and per output token (server, generation): their p99s, as
    MLPerf's LLM server rules judge them (a task that generates no tokens is not held to
    those)."""
    if options.scenario == "offline":
        return None
    judged: list[tuple[Any, float]] = []
    if options.latency_bound_s is not None:
        figure = "latency_p99_s" if options.scenario == "server" else "early_stop_latency_s"
        judged.append((row.get(figure), options.latency_bound_s))
    for name in ("ttft", "tpot") if generation_task else ():
        bound = getattr(options, f"{name}_bound_s")
        if bound is not None:
            judged.append((row.get(f"{name}_p99_s"), bound))
    if not judged or any(figure is None or is_empty(figure) for figure, _ in judged):
        return None
    return bool(all(float(figure) <= bound for figure, bound in judged) and row.get("load_valid"))


def load_target(payload: dict[str, Any]) -> dict[str, Any]:
    """A worker's side of :func:`run_load_case`: ``{"row": ..., "info": ...}``, with the
    worker's own peak RSS (it ran only this case: every batch size built) and the adapter's
    info for the run's context."""
    from harness.execution.facts import info_of

    case, spec, adapter = rebuild(payload)
    options = LoadOptions(**payload["options"])
    try:
        row = run_load_case(case, spec, adapter, options, payload.get("qps"),
                            payload["repetition"])
        info = info_of(adapter)
    finally:
        failure = close_all([adapter])
    if failure:
        row = {**row, "status": "error", "message": join(row.get("message") or "", failure)}
    worker_peak_rss(row, " (all batch sizes)")
    return {"row": row, "info": info}
