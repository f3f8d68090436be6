"""A/B runs: a baseline and a candidate version of the same workloads, timed interleaved.

On a shared machine the speed drifts by tens of percent within seconds, so two runs made one
after the other differ by more than a small regression. ``harness ab BASE CANDIDATE`` pairs the
cases of two versions of a suite (same workload names and parameters), prepares both in one
process and alternates their samples (:func:`harness.timer.measure_pair`): drift hits both
alike, and sample i of each side form a pair taken moments apart. The rows carry a ``variant``
column (``baseline`` or ``candidate``) and the candidate's case id, and
:func:`harness.paired.compare_paired` judges them from the paired ratios.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from harness import plugins
from harness.config import RunConfig, TimingOptions
from harness.execution.hooks import Hooks
from harness.execution.interleave import draw_order
from harness.execution.loop import NAN, check_outputs, measured_row
from harness.execution.rows import CASE_ERRORS, error_row, error_text, identity
from harness.execution.targets import rebuild_case
from harness.execution.workers import Limits, context, preload_for, run_in_worker
from harness.plan import AdapterSpec, Plan
from harness.roofline import row_figures
from harness.timer import Timer, measure_pair
from harness.workload import Case, Skip

if TYPE_CHECKING:
    from harness.adapters import Adapter
    from harness.results import RunWriter

VARIANTS = ("baseline", "candidate")


class PairingError(ValueError):
    """The two suites share no case to compare."""


def pair_cases(baseline: list[Case], candidate: list[Case]) -> list[tuple[Case, Case]]:
    """Cases of the two versions with the same workload name and parameters, in the candidate's
    order; a clear error when none match."""
    def key(case: Case) -> tuple[str, str]:
        return case.workload.name, json.dumps(case.params, sort_keys=True)

    base = {key(case): case for case in baseline}
    pairs = [(base[key(case)], case) for case in candidate if key(case) in base]
    if not pairs:
        raise PairingError("the baseline and the candidate share no workload with the same "
                           "parameters; nothing to compare")
    return pairs


def run_pair(config: RunConfig, spec: AdapterSpec, adapter: Adapter,
             pair: tuple[Case, Case], first: int | None = None) -> list[dict[str, Any]]:
    """Both versions of one case on one adapter, samples interleaved: two rows. ``first``: the
    side built, prepared and warmed up first (None: drawn from the case and repetition)."""
    if first is None:
        first = draw_order(2, pair[1].id, spec.label, config.repetition)[0]
    order = (first, 1 - first)
    header = identity(pair[1], spec, config.repetition, adapter_options=adapter.config,
                      device=adapter.device)
    rows: list[dict[str, Any]] = [{**header, "variant": variant,
                                   "meta": {"source_suite": case.suite}}
                                  for variant, case in zip(VARIANTS, pair, strict=True)]
    stage = "build"
    try:
        # Built and prepared in the drawn order: the one built first puts its data in other
        # memory than the second, and that placement alone moves a Python loop's speed.
        built = {i: pair[i].build() for i in order}
        tasks = [built[0], built[1]]
        stage = "supports"
        for task in tasks:
            ok, reason = adapter.supports(task)
            if not ok:
                return [{**row, "status": "skipped", "message": reason} for row in rows]
        stage = "prepare"
        prepared = {i: adapter.prepare(tasks[i]) for i in order}
        steps = (prepared[0], prepared[1])
        with adapter.running():
            stage = "timing"
            measured = measure_pair(Timer(config.timing), steps, adapter.synchronize,
                                    keep=adapter.keep_output, first=first)
            stage = "check"
            for row, task, measurement in zip(rows, tasks, measured, strict=True):
                values, missing = measured_row(task, measurement)
                row.update(values)
                row["correct"], row["message"] = check_outputs(task, adapter, measurement)
                row["meta"] = {**task.row_meta(), **row["meta"]}
                missing["energy_j"] = "not measured in an A/B run (timing only)"
                row["energy_source"] = "unavailable: not measured in an A/B run"
                row["peak_rss_bytes"] = NAN
                missing["peak_rss_bytes"] = "not measured in an A/B run (timing only)"
                # Achieved rates are measured; the peaks are not calibrated here, so the
                # fraction of peak is empty with that reason.
                roofline, roofline_missing = row_figures(
                    task.flops, task.bytes, row["latency_median_s"], None,
                    "peaks are not calibrated in an A/B run (timing only)")
                row.update(roofline)
                missing.update(roofline_missing)
                row["missing"] = missing
    except Skip as exc:
        return [{**row, "status": "skipped", "message": str(exc) or "skipped"} for row in rows]
    except CASE_ERRORS as exc:
        return [{**row, "status": "error", "message": f"{stage} failed: {error_text(exc)}"}
                for row in rows]
    return rows


PAIR_TARGET = "harness.execution.ab:pair_target"


def pair_target(payload: dict[str, Any]) -> dict[str, Any]:
    """A worker's side of :func:`run_pair`: ``{"rows": [baseline, candidate]}``."""
    cases = [rebuild_case(source, payload) for source in (payload["baseline"],
                                                           payload["candidate"])]
    spec = AdapterSpec(payload["adapter"], payload["adapter_options"])
    config = RunConfig(timing=TimingOptions(**payload["timing"]), collect=False,
                       repetition=payload["repetition"])
    adapter = plugins.adapter_class(spec.name)(**spec.options)
    try:
        return {"rows": run_pair(config, spec, adapter, (cases[0], cases[1]),
                                 payload.get("first"))}
    finally:
        adapter.close()


def run_ab(config: RunConfig, plans: tuple[Plan, Plan], writer: RunWriter, isolate: bool,
           limits: Limits, hooks: Hooks | None = None) -> list[dict[str, Any]]:
    """Every repetition of every paired case on every adapter; rows written as they come."""
    hooks = hooks or Hooks()
    if isolate:
        context(preload_for(*plans))  # the first call decides what the forkserver preloads
    pairs = pair_cases(plans[0].cases, plans[1].cases)
    sources = [plans[0].sources, plans[1].sources]
    total = len(pairs) * len(plans[1].adapters) * config.repeat
    rows: list[dict[str, Any]] = []
    index = 0
    for k in range(config.repeat):
        run = replace(config, repetition=k)
        for spec in plans[1].adapters:
            adapter = None if isolate else plugins.adapter_class(spec.name)(**spec.options)
            try:
                for pair in pairs:
                    index += 1
                    hooks.started(pair[1], spec, index, total)
                    if adapter is not None:
                        got = run_pair(run, spec, adapter, pair)
                    else:
                        result = run_in_worker(PAIR_TARGET, {
                            "baseline": sources[0][pair[0].suite],
                            "candidate": sources[1][pair[1].suite],
                            "workload": pair[1].workload.name, "params": pair[1].params,
                            "adapter": spec.name, "adapter_options": spec.options,
                            "timing": asdict(run.timing), "repetition": k}, limits)
                        got = result.get("rows") or [
                            {**error_row(pair[1], spec, k, result.get("error", "no result")),
                             "variant": variant} for variant in VARIANTS]
                    for row in got:
                        writer.append(row)
                    rows.extend(got)
                    hooks.arrived(got[-1], index, total)
            finally:
                if adapter is not None:
                    adapter.close()
    return rows
