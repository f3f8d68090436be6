"""The parent side of an isolated run on this machine: each case in a fresh worker.

The parent writes each row itself, so rows are written by one process, in order; it only waits
while a worker measures (:mod:`harness.execution.workers`), and starts no device itself. Peaks
are calibrated in a worker of their own (their buffers would otherwise count in the case's peak
RSS), once per adapter and dtype, unless this machine's calibration is cached
(:mod:`harness.peak_cache`). Idle power is measured once per adapter too, in the worker of its
first case that runs, and handed to the later ones (:class:`Learnt`), as is the adapter's info,
which the parent records in the run's context (:mod:`harness.execution.facts`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from harness import peak_cache
from harness.execution.hooks import Hooks
from harness.execution.rows import RunOne, error_row, run_pending
from harness.execution.targets import case_payload
from harness.execution.workers import Limits, context, preload_for, run_in_worker
from harness.plan import AdapterSpec

if TYPE_CHECKING:
    from harness.config import RunConfig
    from harness.execution.rows import RowKey
    from harness.plan import Plan
    from harness.results import RunWriter
    from harness.workload import Case

CASE_TARGET = "harness.execution.targets:case_target"
PEAKS_TARGET = "harness.execution.targets:peaks_target"


@dataclass
class Learnt:
    """What an adapter's workers on this machine learnt, handed to its later workers."""

    #: dtype → peaks (as a dict) or the reason there are none.
    peaks: dict[str, Any] = field(default_factory=dict)
    #: collector name → its idle baseline (:meth:`harness.collectors.Collector.baseline`).
    baselines: dict[str, Any] = field(default_factory=dict)


def run_local(config: RunConfig, plan: Plan, writer: RunWriter, limits: Limits,
              hooks: Hooks | None = None, done: set[RowKey] | None = None,
              ) -> list[dict[str, Any]]:
    """Run every pending case of ``plan`` in its own worker; write and return the rows."""
    from harness.execution.facts import AdapterFacts

    context(preload_for(plan))  # the first call decides what the forkserver preloads
    facts = AdapterFacts(writer.path)

    @contextmanager
    def session(spec: AdapterSpec) -> Iterator[RunOne]:
        learnt = Learnt()  # from this adapter's workers

        def run_one(case: Case) -> dict[str, Any]:
            result = run_case(case_payload(config, plan, spec, case, limits.max_memory_bytes),
                              limits, learnt)
            facts.record(spec.label, result.get("info"))
            row: dict[str, Any] = result.get("row") or error_row(
                case, spec, config.repetition, result.get("error", "no result"))
            return row

        yield run_one

    return run_pending(plan, done or set(), config.repetition, writer, hooks or Hooks(), session)


def run_case(payload: dict[str, Any], limits: Limits, learnt: Learnt) -> dict[str, Any]:
    """Run one case (a :func:`~harness.execution.targets.case_payload`) in a fresh worker of this
    machine's forkserver: ``{"row": ..., "info": ...}`` or ``{"error": ...}`` when the worker
    died without a row.

    ``learnt`` is what this adapter's workers on this machine learnt so far, filled as they
    learn more. Peaks are calibrated first, for the dtype read from the parameters (a task
    whose dtype differs calibrates in its own worker instead).
    """
    learn_peaks(payload, limits, learnt.peaks)
    result = run_in_worker(CASE_TARGET, {**payload, "peaks": learnt.peaks,
                                         "baselines": learnt.baselines,
                                         "sent_at": time.time()}, limits)
    if "row" in result:
        learnt.peaks.update(result.get("peaks", {}))
        learnt.baselines.update(result.get("baselines") or {})
    return result


def learn_peaks(payload: dict[str, Any], limits: Limits, peaks: dict[str, Any]) -> None:
    """Put the peaks of the payload's adapter and dtype into ``peaks`` (see :func:`run_case`):
    this machine's cached calibration, else calibrated in a worker of their own."""
    dtype = str(payload["params"].get("dtype", "float32"))
    recalibrate = bool(payload.get("recalibrate"))
    if dtype not in peaks and not recalibrate:
        spec = AdapterSpec(payload["adapter"], payload["adapter_options"])
        cached = peak_cache.lookup(spec.label, spec.options, dtype)
        if cached is not None:  # this machine's calibration: no worker needed
            peaks[dtype] = asdict(cached)
    if dtype not in peaks:
        found = run_in_worker(PEAKS_TARGET, {
            "adapter": payload["adapter"], "adapter_options": payload["adapter_options"],
            "dtype": dtype, "env": payload.get("env"), "recalibrate": recalibrate}, limits)
        peaks[dtype] = found.get("peaks", {}).get(
            dtype, f"peak calibration failed: {found.get('error', 'no result')}")
