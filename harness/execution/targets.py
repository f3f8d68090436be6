"""The worker side of an isolated run: what a worker is handed (:func:`case_payload`), how it
rebuilds the case (:func:`rebuild`), and the targets :mod:`harness.execution.workers` runs —
:func:`case_target` (one case through :class:`~harness.execution.loop.Runner`) and
:func:`peaks_target` (one adapter's peak calibration, in a worker of its own)."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from harness import plugins
from harness.adapters import Adapter
from harness.collectors import Collector
from harness.config import RunConfig, TimingOptions
from harness.execution.loop import Runner, close_all
from harness.execution.rows import device_out_of_memory, join, out_of_memory, worker_peak_rss
from harness.plan import AdapterSpec, Plan
from harness.roofline import Peaks
from harness.timer import Timer
from harness.workload import Case


def case_payload(config: RunConfig, plan: Plan, spec: AdapterSpec, case: Case,
                 max_memory_bytes: int | None = None) -> dict[str, Any]:
    """What a worker needs to rebuild and run one case, as plain JSON data (peaks come later)."""
    return {
        "suite": plan.sources.get(case.suite, case.suite), "workload": case.workload.name,
        "params": case.params, "adapter": spec.name, "adapter_options": spec.options,
        "timing": asdict(config.timing), "collect": config.collect,
        "repetition": config.repetition, "max_memory_bytes": max_memory_bytes,
        "recalibrate": config.recalibrate, "profile": config.profile,
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
        failure = close_all([adapter])
    if failure:  # the device failed after the calibration: its figures are not to be trusted
        runner.known_peaks = {key: f"peak calibration failed: {failure}"
                              for key in runner.known_peaks}
    return {"peaks": peaks_to_json(runner.known_peaks)}


def case_target(payload: dict[str, Any], timer: Timer | None = None) -> dict[str, Any]:
    """Run one case (a :func:`case_payload` with the ``peaks`` and collectors' ``baselines``
    known so far) in this worker: ``{"row": ..., "peaks": ..., "baselines": ..., "info": ...}``.

    The adapter's device counters are made and calibrated only once the case is built and the
    adapter takes it (a refused case pays for neither); idle baselines come from the payload
    where an earlier worker of the run measured them, and go back in the result where this one
    did. ``info`` is the adapter's, once it started its device for the case (else None).
    ``timer``: another timer than the payload's (an interleaved run's, which samples when
    told).
    """
    from harness.execution.facts import info_of
    from harness.execution.workers import set_env

    set_env(payload.get("env") or {})
    # From the payload's creation to here: forking the worker and loading the suite's module.
    arrived = time.time()
    started = arrived - payload.get("sent_at", arrived)
    case, spec, adapter = rebuild(payload)
    config = RunConfig(timing=TimingOptions(**payload["timing"]), collect=payload["collect"],
                       repetition=payload["repetition"],
                       recalibrate=payload.get("recalibrate", False),
                       profile=payload.get("profile", False))
    runner = Runner(config, Plan([case], [spec]), writer=None, timer=timer)
    for dtype, known in payload["peaks"].items():
        runner.known_peaks[(spec.label, dtype)] = (Peaks(**known) if isinstance(known, dict)
                                                   else known)
    given: dict[str, Any] = payload.get("baselines") or {}
    measured: dict[str, Any] = {}
    own: list[Collector] = []
    set_up = False

    def setup() -> list[Collector]:
        nonlocal set_up
        set_up = True
        own.extend(adapter.collectors() if config.collect else [])
        for collector in [*runner.collectors, *own]:
            if collector.name in given:
                collector.adopt(given[collector.name])
            elif collector.available()[0]:
                collector.calibrate()
                found = collector.baseline()
                if found is not None:
                    measured[collector.name] = found
        return own

    info = None
    setup_s = time.time() - arrived  # the suite's module and the adapter's construction
    try:
        row = runner.run_case(case, spec, adapter, runner.collectors, setup)
        if set_up:  # the adapter took the case: asking now starts no device needlessly
            info = info_of(adapter)
    finally:
        failure = close_all([*runner.collectors, *own, adapter])
    if failure:
        row = {**row, "status": "error", "message": join(row["message"], failure)}
    if isinstance(row.get("meta"), dict) and "phases_s" in row["meta"]:
        row["meta"]["phases_s"] = {"worker_start": round(started, 6),
                                   "worker_setup": round(setup_s, 6), **row["meta"]["phases_s"]}
    limit = payload.get("max_memory_bytes")
    if (limit and row["status"] == "error" and out_of_memory(row["message"])
            and not device_out_of_memory(row["message"])):
        row["message"] += f" (the worker's memory cap, --max-memory, is {limit / 2**30:.3g} GiB)"
    if config.collect:
        worker_peak_rss(row, "")
    return {"row": row, "peaks": peaks_to_json(runner.known_peaks), "baselines": measured,
            "info": info}
