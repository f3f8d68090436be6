"""Execute a plan: per adapter and case, time it, check it, collect side metrics, write a row."""

from __future__ import annotations

import dataclasses
import math
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from harness import generation, plugins
from harness.adapters import Adapter, Step
from harness.collectors import Collector, Figures
from harness.config import RunConfig
from harness.plan import AdapterSpec, Plan
from harness.results import RunWriter
from harness.roofline import NoPeaks, Peaks, row_figures
from harness.stats import summarize, summary_columns
from harness.timer import Measurement, Timer
from harness.workload import Case, Skip, Task

NAN = float("nan")
CONSTANT_OUTPUT = ("the output did not change when every input changed: a cached or constant "
                   "answer, so the timing may measure no real work")
OnStart = Callable[[Case, AdapterSpec, int, int], None]
OnRow = Callable[[dict[str, Any], int, int], None]

@dataclass
class Hooks:
    """Progress callbacks for the CLI; both optional."""

    on_start: OnStart | None = None
    on_row: OnRow | None = None


def _error_text(exc: BaseException) -> str:
    """One line naming the exception and where it was raised (the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}{where}"


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
    if task.flops is None:
        missing["flops"] = "the workload defines no FLOP count"
    if task.bytes is None:
        missing["bytes"] = "the workload defines no byte count"
    return row, missing


RowKey = tuple[str, str, int]


def row_key(row: dict[str, Any]) -> RowKey:
    """What identifies a row within a run: case, adapter label and repetition."""
    label = row.get("adapter_label") or row.get("adapter") or ""
    return str(row.get("case_id")), str(label), int(row.get("repetition") or 0)


def pending(plan: Plan, done: set[RowKey], repetition: int = 0
            ) -> list[tuple[AdapterSpec, list[tuple[int, Case]]]]:
    """Per adapter, the (1-based position, case) pairs still to run, in plan order."""
    out = []
    index = 0
    for spec in plan.adapters:
        cases = []
        for case in plan.cases:
            index += 1
            if (case.id, spec.label, repetition) not in done:
                cases.append((index, case))
        out.append((spec, cases))
    return out


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
        #: (adapter label, dtype) → its peaks, or the reason there are none; measured once.
        self._peaks: dict[tuple[str, str], Peaks | str] = {}
        if config.collect:
            self.collectors = [cls() for cls in plugins.collector_classes().values()]

    def run(self, adapters: dict[str, Adapter]) -> list[dict[str, Any]]:
        """Run every case on every adapter (instances keyed by spec label); return the rows."""
        _calibrate(self.collectors)
        rows = []
        for spec, cases in pending(self.plan, self.done, self.config.repetition):
            if not cases:
                continue
            adapter = adapters[spec.label]
            # The adapter's own counters (device energy) measure alongside the host collectors.
            own = adapter.collectors() if self.config.collect else []
            _calibrate(own)
            for index, case in cases:
                if self.hooks.on_start:
                    self.hooks.on_start(case, spec, index, len(self.plan))
                row = self.run_case(case, spec, adapter, [*self.collectors, *own])
                if self.writer is not None:
                    self.writer.append(row)
                rows.append(row)
                if self.hooks.on_row:
                    self.hooks.on_row(row, index, len(self.plan))
            for collector in own:
                collector.close()
        for collector in self.collectors:
            collector.close()
        return rows

    def peaks(self, spec: AdapterSpec, adapter: Adapter, dtype: str) -> Peaks | str:
        """The adapter's peaks for ``dtype``: this machine's cached calibration, else calibrated
        on first use (and cached); else the reason why not."""
        from harness import peak_cache

        key = (spec.label, dtype)
        if key not in self._peaks and not self.config.recalibrate:
            cached = peak_cache.lookup(spec.label, spec.options, dtype)
            if cached is not None:
                self._peaks[key] = cached
        if key not in self._peaks:
            try:
                self._peaks[key] = peaks = adapter.peaks(dtype)
                peak_cache.store(spec.label, spec.options, dtype, peaks)
            except NoPeaks as exc:
                self._peaks[key] = str(exc)
            except Exception as exc:  # a failed calibration empties the figures, not the run
                self._peaks[key] = f"peak calibration failed: {_error_text(exc)}"
        return self._peaks[key]

    def run_case(self, case: Case, spec: AdapterSpec, adapter: Adapter,
                 collectors: list[Collector] | None = None) -> dict[str, Any]:
        """One result row; any failure of the case becomes an error row, never an exception."""
        collectors = self.collectors if collectors is None else collectors
        row: dict[str, Any] = {
            "suite": case.suite, "workload": case.workload.name, "case_id": case.id,
            "params": case.params, "adapter": spec.name, "adapter_label": spec.label,
            "adapter_options": dict(adapter.config),
            "device": adapter.device, "host": socket.gethostname(),
            "repetition": self.config.repetition,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": "ok", "message": "", "correct": None, "scenario": "loop",
        }
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
            too_big = _does_not_fit(case)
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
                measurement = self.timer.measure(step, adapter.synchronize)
                lap("timing")
                stage = "check"
                timing, timing_missing = measured_row(task, measurement)
                missing.update(timing_missing)
                row.update(timing)
                row["correct"], row["message"] = self._check(task, adapter, measurement)
                lap("check")
                row["output_varies"] = self._varies(task, adapter, measurement.output)
                lap("probe")
                if row["output_varies"] is False:
                    row["message"] = _join(row["message"], CONSTANT_OUTPUT)
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
            device_memory = adapter.memory_stats()
        except Skip as exc:
            return {**row, "status": "skipped", "message": str(exc) or "skipped by the workload"}
        except (Exception, MemoryError) as exc:
            return {**row, "status": "error", "correct": None,
                    "message": f"{stage} failed: {_error_text(exc)}"}
        row.update(device_memory)
        peaks = self.peaks(spec, adapter, str(task.meta.get("dtype", "float32")))
        roofline, roofline_missing = row_figures(
            task.flops, task.bytes, row["latency_median_s"],
            peaks if isinstance(peaks, Peaks) else None,
            peaks if isinstance(peaks, str) else "")
        row.update(roofline)
        missing.update(roofline_missing)
        if task.generation is not None:
            row.update(generation.phase_roofline(task.generation, row, peaks, missing))
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
            row["message"] = _join(row["message"], "warm-up never settled: figures may drift")
        if measurement.hit_time_cap:
            precision = self.config.timing.precision
            row["message"] = _join(row["message"], (
                f"hit the time cap before the median's CI reached ±{precision:.1%}"
                if precision is not None else "hit the time cap before the minimum samples"))
        row["missing"] = {k: v for k, v in missing.items() if _is_empty(row.get(k))}
        return row

    @staticmethod
    def _check(task: Task, adapter: Adapter, measurement: Measurement
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

    @staticmethod
    def _varies(task: Task, adapter: Adapter, output: Any) -> bool | None:
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


def _does_not_fit(case: Case) -> str:
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


def _calibrate(collectors: list[Collector]) -> None:
    for collector in collectors:
        if collector.available()[0]:
            collector.calibrate()


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
