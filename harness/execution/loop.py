"""The timing loop: per adapter and case, time it, check it, collect side metrics, write a row.

:class:`Runner` runs cases in this process (``--no-isolate``, and inside every worker);
:func:`case_target` and :func:`peaks_target` are the worker targets of an isolated run
(:mod:`harness.execution.workers` runs them), and :func:`rebuild` turns a worker's payload back
into the case it names.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from harness import plugins
from harness.adapters import Adapter, Step
from harness.collectors import Collector, Figures
from harness.config import RunConfig, TimingOptions
from harness.execution.hooks import Hooks
from harness.execution.rows import (
    RowKey,
    RunOne,
    error_text,
    identity,
    is_empty,
    join,
    out_of_memory,
    run_pending,
    worker_peak_rss,
)
from harness.plan import AdapterSpec, Plan
from harness.results import RunWriter
from harness.roofline import NoPeaks, Peaks, row_figures
from harness.stats import summarize, summary_columns
from harness.timer import Measurement, Timer
from harness.workload import Case, Skip, Task

NAN = float("nan")
CONSTANT_OUTPUT = ("the output did not change when every input changed: a cached or constant "
                   "answer, so the timing may measure no real work")
def collector_pass(step: Step, adapter: Adapter, collectors: list[Collector], items: int,
                   clock: Callable[[], float] = time.perf_counter) -> Figures:
    """Run the case for the collectors' window, apart from timing (polling threads perturb it)."""
    active = [c for c in collectors if c.available()[0]]
    window = max((c.min_window_s for c in active), default=0.0)
    for collector in collectors:
        collector.start()
    calls = 0
    start = clock()
    while True:
        step()
        calls += 1
        if clock() - start >= window:
            break
    adapter.synchronize()
    merged = Figures()
    for collector in collectors:
        figures = collector.stop(calls, items)
        merged.values.update(figures.values)
        merged.missing.update(figures.missing)
    return merged


def measured_row(task: Task, measurement: Measurement) -> tuple[dict[str, Any], dict[str, str]]:
    """Timing columns of a row and the reasons for any empty ones."""
    summary = summarize(measurement.samples_s, items=task.items)
    row: dict[str, Any] = {
        "loops": measurement.loops,
        "first_call_s": measurement.first_call_s,
        "warmup_s": measurement.warmup_s,
        "warmup_steady": measurement.steady,
        "sampling_s": measurement.sampling_s,
        "items": task.items,
        "flops": NAN if task.flops is None else float(task.flops),
        "bytes": NAN if task.bytes is None else float(task.bytes),
        "samples_s": measurement.samples_s,
    }
    values, missing = summary_columns(summary)
    row.update(values)
    # Say which figure latency_* is: with several calls per sample, an asynchronous device
    # overlaps them, so it is time per call at full pipeline, not one call's latency.
    row["latency_kind"] = ("one call per sample" if measurement.loops == 1 else
                           f"mean of {measurement.loops} back-to-back calls per sample")
    row.update(_call_latency(measurement.call_samples_s, missing))
    if task.flops is None:
        missing["flops"] = "the workload defines no FLOP count"
    if task.bytes is None:
        missing["bytes"] = "the workload defines no byte count"
    return row, missing


def _call_latency(samples_s: list[float], missing: dict[str, str]) -> dict[str, Any]:
    """The call_latency_* columns: single calls on the device's own clock (CUDA events)."""
    columns = ("call_latency_median_s", "call_latency_ci_low_s", "call_latency_ci_high_s",
               "call_latency_p99_s")
    if not samples_s:
        missing.update(dict.fromkeys(columns, "the adapter has no device clock to time single "
                                              "calls on; latency_* is this row's figure"))
        return dict.fromkeys(columns, NAN)
    summary = summarize(samples_s)
    values = dict(zip(columns, (summary.median, summary.ci_low, summary.ci_high, summary.p99),
                      strict=True))
    missing.update({column: f"{len(samples_s)} single calls are too few for it"
                    for column, value in values.items() if is_empty(value)})
    return values


class Runner:
    """Runs a plan and writes each result as soon as it exists."""

    def __init__(self, config: RunConfig, plan: Plan, writer: RunWriter | None,
                 hooks: Hooks | None = None, timer: Timer | None = None,
                 done: set[RowKey] | None = None):
        self.config = config
        self.plan = plan
        self.writer = writer
        self.hooks = hooks or Hooks()
        #: rows the run folder already holds (a resumed run): these cases are not run again.
        self.done = done or set()
        self.timer = timer or Timer(config.timing)
        self.collectors: list[Collector] = []
        #: (adapter label, dtype) → its peaks, or the reason there are none; measured once
        #: (a worker is handed those its parent learnt: :func:`case_target`).
        self.known_peaks: dict[tuple[str, str], Peaks | str] = {}
        if config.collect:
            self.collectors = [cls() for cls in plugins.collector_classes().values()]

    def run(self, adapters: dict[str, Adapter]) -> list[dict[str, Any]]:
        """Run every case on every adapter (instances keyed by spec label); return the rows."""

        @contextmanager
        def session(spec: AdapterSpec) -> Iterator[RunOne]:
            adapter = adapters[spec.label]
            # The adapter's own counters (device energy) measure alongside the host collectors.
            own = adapter.collectors() if self.config.collect else []
            calibrate(own)
            try:
                yield lambda case: self.run_case(case, spec, adapter, [*self.collectors, *own])
            finally:
                for collector in own:
                    collector.close()

        calibrate(self.collectors)
        try:
            return run_pending(self.plan, self.done, self.config.repetition, self.writer,
                               self.hooks, session)
        finally:
            for collector in self.collectors:
                collector.close()

    def peaks(self, spec: AdapterSpec, adapter: Adapter, dtype: str) -> Peaks | str:
        """The adapter's peaks for ``dtype``: this machine's cached calibration, else calibrated
        on first use (and cached); else the reason why not."""
        from harness import peak_cache

        key = (spec.label, dtype)
        if key not in self.known_peaks and not self.config.recalibrate:
            cached = peak_cache.lookup(spec.label, spec.options, dtype)
            if cached is not None:
                self.known_peaks[key] = cached
        if key not in self.known_peaks:
            try:
                self.known_peaks[key] = peaks = adapter.peaks(dtype)
                peak_cache.store(spec.label, spec.options, dtype, peaks)
            except NoPeaks as exc:
                self.known_peaks[key] = str(exc)
            except Exception as exc:  # a failed calibration empties the figures, not the run
                self.known_peaks[key] = f"peak calibration failed: {error_text(exc)}"
        return self.known_peaks[key]

    def run_case(self, case: Case, spec: AdapterSpec, adapter: Adapter,
                 collectors: list[Collector] | None = None) -> dict[str, Any]:
        """One result row; any failure of the case becomes an error row, never an exception."""
        collectors = self.collectors if collectors is None else collectors
        row = identity(case, spec, self.config.repetition, adapter_options=adapter.config,
                       device=adapter.device)
        missing: dict[str, str] = {}
        # Wall seconds of each stage of the case: where a run's time goes besides sampling.
        phases: dict[str, float] = {}
        last = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal last
            now = time.perf_counter()
            phases[name] = round(now - last, 6)
            last = now

        stage = "build"
        try:
            too_big = does_not_fit(case)
            if too_big:
                return {**row, "status": "skipped", "message": too_big}
            task = case.build()
            lap("build")
            stage = "supports"
            ok, reason = adapter.supports(task)
            if not ok:
                return {**row, "status": "skipped", "message": reason}
            stage = "prepare"
            adapter.compile_s, adapter.compile_missing = None, Adapter.compile_missing
            step = adapter.prepare(task)
            lap("prepare")
            row["compile_s"] = NAN if adapter.compile_s is None else adapter.compile_s
            if adapter.compile_s is None:
                missing["compile_s"] = adapter.compile_missing
            adapter.reset_memory_stats()
            with adapter.running():
                stage = "timing"
                measurement = self.timer.measure(step, adapter.synchronize,
                                                 keep=adapter.keep_output,
                                                 time_call=adapter.call_timer())
                lap("timing")
                stage = "check"
                timing, timing_missing = measured_row(task, measurement)
                missing.update(timing_missing)
                row.update(timing)
                row["correct"], row["message"] = check_outputs(task, adapter, measurement)
                lap("check")
                row["output_varies"] = output_varies(task, adapter, measurement.output)
                lap("probe")
                if row["output_varies"] is False:
                    row["message"] = join(row["message"], CONSTANT_OUTPUT)
                stage = "collectors"
                if collectors:
                    figures = collector_pass(step, adapter, collectors, task.items)
                    row.update(figures.values)
                    missing.update(figures.missing)
                    lap("collectors")
            device_memory = adapter.memory_stats()
        except Skip as exc:
            return {**row, "status": "skipped", "message": str(exc) or "skipped by the workload"}
        except (Exception, MemoryError) as exc:
            return {**row, "status": "error", "correct": None,
                    "message": f"{stage} failed: {error_text(exc)}"}
        row.update(device_memory)
        peaks = self.peaks(spec, adapter, str(task.meta.get("dtype", "float32")))
        roofline, roofline_missing = row_figures(
            task.flops, task.bytes, row["latency_median_s"],
            peaks if isinstance(peaks, Peaks) else None,
            peaks if isinstance(peaks, str) else "")
        row.update(roofline)
        missing.update(roofline_missing)
        row["footprint_bytes"] = task.meta.get("footprint_bytes", NAN)
        if "footprint_bytes" not in task.meta:
            missing["footprint_bytes"] = "the workload reports no data-structure footprint"
        lap("peaks")
        row["meta"] = {**task.meta, **adapter.case_meta(), "phases_s": phases}
        if "peak_device_bytes" not in device_memory:
            missing["peak_device_bytes"] = f"the {spec.name} adapter has no device memory"
        if not self.config.collect:
            missing.update({c: "collectors were turned off for this run"
                            for c in ("peak_rss_bytes", "energy_j")})
        elif "energy_source" not in row:
            reason = f"the {spec.name} adapter has no energy counter"
            row["energy_source"] = f"unavailable: {reason}"
            missing["energy_j"] = reason
        if not measurement.steady:
            row["message"] = join(row["message"], "warm-up never settled: figures may drift")
        if measurement.hit_time_cap:
            precision = self.config.timing.precision
            row["message"] = join(row["message"], (
                f"hit the time cap before the median's CI reached ±{precision:.1%}"
                if precision is not None else "hit the time cap before the minimum samples"))
        row["missing"] = {k: v for k, v in missing.items() if is_empty(row.get(k))}
        return row

def check_outputs(task: Task, adapter: Adapter, measurement: Measurement
           ) -> tuple[bool | None, str]:
    """Check the first call's output and those of a few timed samples (a case must stay
    right under load, not only once before timing)."""
    if not adapter.checks_output:
        return None, ""
    if task.check is None:
        return None, "no correctness check defined"
    outputs = [("the first call", measurement.output)]
    outputs += [(f"timed sample {i + 1}", out) for i, out in measurement.sampled_outputs]
    for where, output in outputs:
        try:
            task.check(adapter.to_host(output))
        except AssertionError as exc:
            lines = str(exc).strip().splitlines() or ["output differs from the reference"]
            suffix = "" if where == "the first call" else f" (on {where})"
            return False, f"check failed: {lines[0]}{suffix}"
    return True, ""

def output_varies(task: Task, adapter: Adapter, output: Any) -> bool | None:
    """Whether the output changes when the inputs change; None when it cannot be tried.

    A constant or cached answer makes a case look fast while doing no work; the check
    against a reference cannot see it, because the reference used the same inputs.
    """
    from harness.checks import same_output, vary

    if not adapter.checks_output:
        return None
    try:
        inputs = (task.vary or vary)(task.inputs)
        if inputs is None:
            return None
        other = adapter.prepare(dataclasses.replace(task, inputs=inputs))
        with adapter.running():
            changed = other()
            adapter.synchronize()
        return not same_output(adapter.to_host(output), adapter.to_host(changed))
    except Exception:  # the probe is a safeguard: its own failure says nothing of the case
        return None


def instantiate(plan: Plan) -> dict[str, Adapter]:
    """One adapter instance per spec of ``plan``, keyed by label, for running cases in this
    process; a :class:`~harness.plan.PlanError` when one refuses its options."""
    from harness.plan import PlanError

    adapters: dict[str, Adapter] = {}
    try:
        for spec in plan.adapters:
            adapters[spec.label] = plugins.adapter_class(spec.name)(**spec.options)
    except ValueError as exc:
        for adapter in adapters.values():
            adapter.close()
        raise PlanError(str(exc)) from None
    return adapters


def available_memory() -> tuple[float, str]:
    """Bytes this process may still allocate, and what limits it: free memory, or the
    address-space cap (``--max-memory``) when that is tighter."""
    import psutil

    free, what = float(psutil.virtual_memory().available), "available on this machine"
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            room = float(soft - psutil.Process().memory_info().vms)
            if room < free:
                free, what = room, "left under the worker's memory cap"
    except (ImportError, OSError):
        pass
    return max(free, 0.0), what


def does_not_fit(case: Case) -> str:
    """Why a case is predicted not to fit in memory, or "" (unknown or fits)."""
    predict = case.workload.memory
    if predict is None:
        return ""
    needed = float(predict(**case.params))
    free, what = available_memory()
    if needed <= free:
        return ""
    return (f"needs about {needed / 2**30:.3g} GiB (predicted from its parameters), more than "
            f"the {free / 2**30:.3g} GiB {what}: skipped before it was tried")


def calibrate(collectors: list[Collector]) -> None:
    for collector in collectors:
        if collector.available()[0]:
            collector.calibrate()


# --- the worker side of an isolated run ---------------------------------------------------------


def case_payload(config: RunConfig, plan: Plan, spec: AdapterSpec, case: Case,
                 max_memory_bytes: int | None = None) -> dict[str, Any]:
    """What a worker needs to rebuild and run one case, as plain JSON data (peaks come later)."""
    return {
        "suite": plan.sources.get(case.suite, case.suite), "workload": case.workload.name,
        "params": case.params, "adapter": spec.name, "adapter_options": spec.options,
        "timing": asdict(config.timing), "collect": config.collect,
        "repetition": config.repetition, "max_memory_bytes": max_memory_bytes,
        "recalibrate": config.recalibrate,
    }


def rebuild(payload: dict[str, Any]) -> tuple[Case, AdapterSpec, Adapter]:
    """The case, adapter spec and a fresh adapter instance a worker's payload names (``suite``,
    ``workload``, ``params``, ``adapter``, ``adapter_options``)."""
    case = rebuild_case(payload["suite"], payload)
    spec = AdapterSpec(payload["adapter"], payload["adapter_options"])
    return case, spec, plugins.adapter_class(spec.name)(**spec.options)


def rebuild_case(source: str, payload: dict[str, Any]) -> Case:
    """The case of suite ``source`` with the payload's workload name and parameters."""
    suite = plugins.load_suite(source)
    return Case(suite=suite.name, workload=suite.workloads[payload["workload"]],
                params=payload["params"])


def peaks_to_json(known: dict[tuple[str, str], Peaks | str]) -> dict[str, Any]:
    """dtype → peaks as a dict, or the reason there are none."""
    return {dtype: asdict(p) if isinstance(p, Peaks) else str(p) for (_, dtype), p in known.items()}


def peaks_target(payload: dict[str, Any]) -> dict[str, Any]:
    """Calibrate one adapter's peaks for one dtype: ``{"peaks": ...}``.

    A worker of its own, so that the calibration's large buffers never count in a case's
    peak RSS."""
    from harness.execution.workers import set_env

    set_env(payload.get("env") or {})
    spec = AdapterSpec(payload["adapter"], payload["adapter_options"])
    runner = Runner(RunConfig(collect=False, recalibrate=payload.get("recalibrate", False)),
                    Plan([], [spec]), writer=None)
    adapter = plugins.adapter_class(spec.name)(**spec.options)
    try:
        runner.peaks(spec, adapter, payload["dtype"])
    finally:
        adapter.close()
    return {"peaks": peaks_to_json(runner.known_peaks)}


def case_target(payload: dict[str, Any], timer: Timer | None = None) -> dict[str, Any]:
    """Run one case (a :func:`case_payload` with the ``peaks`` known so far) in this worker:
    ``{"row": ..., "peaks": ..., "info": ...}``. ``timer``: another timer than the payload's
    (an interleaved run's, which samples when told)."""
    from harness.execution.workers import set_env

    set_env(payload.get("env") or {})
    # From the payload's creation to here: forking the worker and loading the suite's module.
    arrived = time.time()
    started = arrived - payload.get("sent_at", arrived)
    case, spec, adapter = rebuild(payload)
    config = RunConfig(timing=TimingOptions(**payload["timing"]), collect=payload["collect"],
                       repetition=payload["repetition"],
                       recalibrate=payload.get("recalibrate", False))
    runner = Runner(config, Plan([case], [spec]), writer=None, timer=timer)
    for dtype, known in payload["peaks"].items():
        runner.known_peaks[(spec.label, dtype)] = (Peaks(**known) if isinstance(known, dict)
                                                   else known)
    try:
        own = adapter.collectors() if config.collect else []
        calibrate([*runner.collectors, *own])
        # The adapter's start and the collectors' idle baselines.
        setup = time.time() - arrived
        row = runner.run_case(case, spec, adapter, [*runner.collectors, *own])
        for collector in [*runner.collectors, *own]:
            collector.close()
        info = adapter.info()
    finally:
        adapter.close()
    if isinstance(row.get("meta"), dict) and "phases_s" in row["meta"]:
        row["meta"]["phases_s"] = {"worker_start": round(started, 6),
                                   "worker_setup": round(setup, 6), **row["meta"]["phases_s"]}
    limit = payload.get("max_memory_bytes")
    if limit and row["status"] == "error" and out_of_memory(row["message"]):
        row["message"] += f" (the worker's memory cap, --max-memory, is {limit / 2**30:.3g} GiB)"
    if config.collect:
        worker_peak_rss(row, "")
    return {"row": row, "peaks": peaks_to_json(runner.known_peaks), "info": info}
