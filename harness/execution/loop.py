"""The timing loop: per adapter and case, time it, check it, collect side metrics, write a row.

:class:`Runner` runs cases in this process (``--no-isolate``, and inside every worker: see
:mod:`harness.execution.targets` for the worker side).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from harness import generation, plugins
from harness.adapters import Adapter, Step
from harness.adapters.tensors import primary_output
from harness.collectors import Collector, Figures
from harness.config import RunConfig
from harness.execution.hooks import Hooks
from harness.execution.rows import (
    CASE_ERRORS,
    RowKey,
    RunOne,
    error_text,
    identity,
    is_empty,
    join,
    run_pending,
)
from harness.plan import AdapterSpec, Plan
from harness.results import RunWriter
from harness.roofline import Ceiling, NoPeaks, Peaks, over_ceiling, row_figures
from harness.stats import summarize, summary_columns
from harness.timer import Measurement, Timer
from harness.workload import Case, Skip, Task

NAN = float("nan")
CONSTANT_OUTPUT = ("the output did not change when every input changed: a cached or constant "
                   "answer, so the timing may measure no real work")
#: The note on a row whose output is structured (a ModelOutput), naming the field used.
OUTPUT_FIELD = "used {field} as the output, its primary tensor"


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
        #: (adapter label, dtype) → the hardware's theoretical ceiling (read, not measured).
        self.known_ceilings: dict[tuple[str, str], Ceiling] = {}
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

    def ceiling(self, spec: AdapterSpec, adapter: Adapter, dtype: str) -> Ceiling:
        """The adapter's theoretical ceiling for ``dtype``, read once per adapter and dtype."""
        key = (spec.label, dtype)
        if key not in self.known_ceilings:
            try:
                self.known_ceilings[key] = adapter.ceiling(dtype)
            except Exception as exc:  # an unreadable ceiling empties the figures, not the run
                self.known_ceilings[key] = Ceiling.unknown(
                    f"the ceiling could not be read: {error_text(exc)}")
        return self.known_ceilings[key]

    def run_case(self, case: Case, spec: AdapterSpec, adapter: Adapter,
                 collectors: list[Collector] | None = None,
                 setup: Callable[[], list[Collector]] | None = None) -> dict[str, Any]:
        """One result row; any failure of the case becomes an error row, never an exception.

        ``setup``, when given, runs once the case is built and the adapter takes it, before
        ``prepare``: the set-up a refused case must not pay for (a worker's device counters and
        their idle calibration); the collectors it returns join ``collectors``.
        """
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
            if setup is not None:
                stage = "setup"
                collectors = [*collectors, *setup()]
                lap("setup")
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
                window_us = time.time_ns() // 1000  # NVML's sample clock: µs since the epoch
                measurement = self.timer.measure(step, adapter.synchronize,
                                                 keep=adapter.keep_output,
                                                 time_call=adapter.call_timer())
                lap("timing")
                row["nvml_utilization"], why = adapter.utilization(window_us)
                if why:
                    missing["nvml_utilization"] = why
                # The device's peak now: the check, the probe's second copy of the case and
                # the collector pass come after, and are not the case's own footprint.
                stage = "device memory"
                device_memory = adapter.memory_stats()
                stage = "check"
                timing, timing_missing = measured_row(task, measurement)
                missing.update(timing_missing)
                row.update(timing)
                row["correct"], row["message"] = check_outputs(task, adapter, measurement)
                lap("check")
                stage = "probe"
                row["output_varies"], why = output_varies(task, adapter, measurement.output)
                if why:
                    missing["output_varies"] = why
                lap("probe")
                if row["output_varies"] is False:
                    row["message"] = join(row["message"], CONSTANT_OUTPUT)
                if task.generation is not None:  # time to first token, per output token
                    stage = "generation"
                    row.update(generation.measure(task, adapter, self.config.timing, missing))
                    lap("generation")
                stage = "collectors"
                if collectors:
                    figures = collector_pass(step, adapter, collectors, task.items)
                    row.update(figures.values)
                    missing.update(figures.missing)
                    lap("collectors")
                if self.config.profile:
                    stage = "profile"
                    from harness.profiling.pass_ import profile_pass

                    profiled, profile_missing = profile_pass(task, step, adapter, row)
                    row.update(profiled)
                    missing.update(profile_missing)
                    lap("profile")
        except Skip as exc:
            return {**row, "status": "skipped", "message": str(exc) or "skipped by the workload"}
        except CASE_ERRORS as exc:
            return {**row, "status": "error", "correct": None,
                    "message": f"{stage} failed: {error_text(exc)}"}
        row.update(device_memory)
        peaks = self.peaks(spec, adapter, task.dtype or "float32")
        ceiling = self.ceiling(spec, adapter, task.dtype or "float32")
        roofline, roofline_missing = row_figures(
            task.flops, task.bytes, row["latency_median_s"],
            peaks if isinstance(peaks, Peaks) else None,
            peaks if isinstance(peaks, str) else "", ceiling)
        row.update(roofline)
        row["message"] = join(row["message"], over_ceiling(roofline))
        missing.update(roofline_missing)
        if task.generation is not None:
            row.update(generation.phase_roofline(task.generation, row, peaks, ceiling, missing))
        row["footprint_bytes"] = NAN if task.footprint_bytes is None else task.footprint_bytes
        if task.footprint_bytes is None:
            missing["footprint_bytes"] = "the workload reports no data-structure footprint"
        lap("peaks")
        facts = adapter.case_meta()
        # A structured output (a ModelOutput) stands for one tensor: the row says which field.
        field = facts.get("output_field") or primary_output(measurement.output)[1]
        if field:
            facts["output_field"] = field
            row["message"] = join(row["message"], OUTPUT_FIELD.format(field=field))
        row["meta"] = {**task.row_meta(), **facts, "phases_s": phases}
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

def output_varies(task: Task, adapter: Adapter, output: Any) -> tuple[bool | None, str]:
    """Whether the output changes when the inputs change; None, with the reason, when it
    cannot be tried.

    A constant or cached answer makes a case look fast while doing no work; the check
    against a reference cannot see it, because the reference used the same inputs. The
    probe's own failure says nothing of the case, unless it left the device broken: a sticky
    CUDA error (an illegal address, a device-side assert) fails every later call in the
    process, and is raised here so that the row fails with it.
    """
    from harness.checks import same_output
    from harness.probe import NOTHING, change

    if not adapter.checks_output:
        return None, f"the {adapter.name} adapter computes no output to compare"
    try:
        # The generic change says why it cannot decide (a type it cannot change); a task's
        # own change returns None for nothing to change.
        inputs, why = change(task.inputs) if task.vary is None else (task.vary(task.inputs),
                                                                     NOTHING)
        if inputs is None:
            return None, why
        other = adapter.prepare(dataclasses.replace(task, inputs=inputs))
        with adapter.running():
            changed = other()
            adapter.synchronize()
        return not same_output(adapter.to_host(output), adapter.to_host(changed)), ""
    except Exception as exc:
        try:
            adapter.synchronize()
        except Exception:
            raise exc from None  # the device is broken: the probe's error is the row's
        return None, f"the changed-input probe failed: {error_text(exc)}"


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


def close_all(things: list[Any]) -> str:
    """Close each of ``things`` (collectors, then the adapter), every one even when another
    fails; the first failure as one line (``close failed: ...``), or "" when none did.

    A failure here is not lost with the row: a sticky device error can first show when the
    adapter synchronises on closing, and the row then says so.
    """
    from harness.execution.rows import error_text

    failures = []
    for thing in things:
        try:
            thing.close()
        except Exception as exc:
            what = getattr(thing, "name", type(thing).__name__)
            failures.append(f"close failed ({what}): {error_text(exc)}")
    return failures[0] if failures else ""
