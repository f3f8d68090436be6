"""Run a plan's cases under a load scenario: each run in its own worker process (or inline),
rows written as soon as they exist; ``--find-peak`` drives its search from the parent.

With isolation (the default), every server run of a peak search is a worker of its own: a
crash costs one row (an error row), the parent decides the next QPS from the row it got back,
and it only waits while a worker measures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from harness.execution.facts import AdapterFacts
from harness.execution.hooks import Hooks
from harness.execution.rows import RunOne, run_pending
from harness.execution.workers import Limits, run_in_worker
from harness.plan import AdapterSpec, Plan
from harness.scenarios.case import base_row, run_load_case
from harness.scenarios.options import LoadOptions
from harness.scenarios.peak import find_peak
from harness.workload import Case

if TYPE_CHECKING:
    from harness.adapters import Adapter
    from harness.config import RunConfig
    from harness.execution.rows import RowKey
    from harness.results import RunWriter

LOAD_TARGET = "harness.scenarios.case:load_target"
#: --find-peak without --qps starts here.
DEFAULT_START_QPS = 10.0


class LoadDriver:
    """Runs load rows for a plan and writes each one at once."""

    def __init__(self, config: RunConfig, plan: Plan, writer: RunWriter | None,
                 options: LoadOptions, isolate: bool, limits: Limits | None = None,
                 hooks: Hooks | None = None):
        self.config, self.plan, self.writer, self.options = config, plan, writer, options
        self.isolate, self.limits, self.hooks = isolate, limits, hooks or Hooks()
        self.rows: list[dict[str, Any]] = []
        #: adapters' info in the run's context, as isolated workers report it.
        self.facts: AdapterFacts | None = None

    def run(self, done: set[RowKey] | None = None,
            adapters: dict[str, Adapter] | None = None) -> list[dict[str, Any]]:
        """Every pending case on every adapter (``adapters`` by label when not isolated)."""

        @contextmanager
        def session(spec: AdapterSpec) -> Iterator[RunOne]:
            adapter = None if adapters is None else adapters[spec.label]
            # A peak search writes a row per probe itself: the plan loop writes none.
            yield lambda case: (self.search(case, spec, adapter) if self.options.find_peak
                                else self.probe(case, spec, adapter, self.options.qps))

        run_pending(self.plan, done or set(), self.config.repetition, None, self.hooks, session)
        return self.rows

    def _write(self, row: dict[str, Any]) -> None:
        if self.writer is not None:
            self.writer.append(row)
        self.rows.append(row)

    def probe(self, case: Case, spec: AdapterSpec, adapter: Adapter | None,
              qps: float | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """One scenario run → one row, written at once."""
        if adapter is not None:
            row = run_load_case(case, spec, adapter, self.options, qps, self.config.repetition)
        else:
            row = self._isolated(case, spec, qps)
        row.update(extra or {})
        self._write(row)
        return row

    def _isolated(self, case: Case, spec: AdapterSpec, qps: float | None) -> dict[str, Any]:
        result = run_in_worker(LOAD_TARGET, {
            "suite": self.plan.sources.get(case.suite, case.suite),
            "workload": case.workload.name, "params": case.params, "adapter": spec.name,
            "adapter_options": spec.options, "options": asdict(self.options), "qps": qps,
            "repetition": self.config.repetition}, self.limits)
        if self.writer is not None:
            self.facts = self.facts or AdapterFacts(self.writer.path)
            self.facts.record(spec.label, result.get("info"))
        if "row" in result:
            row: dict[str, Any] = result["row"]
            return row
        return {**base_row(case, spec, self.options, qps, self.config.repetition, spec.options,
                           spec.name),
                "status": "error", "message": str(result.get("error", "no result"))}

    def search(self, case: Case, spec: AdapterSpec, adapter: Adapter | None) -> dict[str, Any]:
        """``--find-peak``: server runs on the QPS grid (each one a probe row), then one
        ``result`` row naming the peak and the run 20% above it that missed the bound."""
        failures: list[str] = []
        why: dict[float, str] = {}

        def probe(qps: float) -> bool:
            row = self.probe(case, spec, adapter, qps, {"peak_search": "probe"})
            if row["status"] != "ok":
                failures.append(str(row.get("message") or row["status"]))
            why[qps] = _verdict(row)
            return bool(row.get("meets_bound"))

        start = self.options.qps or DEFAULT_START_QPS
        found = find_peak(probe, start)
        row = base_row(case, spec, self.options, found.peak_qps, self.config.repetition,
                       spec.options, spec.name)
        row.update(peak_search="result", peak_qps=found.peak_qps,
                   meta={"probes": [{"qps": q, "meets_bound": m, "why": why.get(q, "")}
                                    for q, m in found.probes],
                         "above_peak_qps": found.above_qps, "start_qps": start})
        if found.peak_qps is not None and found.above_qps is not None:
            row["message"] = (f"peak {found.peak_qps:.4g} QPS: the highest offered load whose "
                              f"p99 met {_bounds(self.options)} in a valid run; "
                              f"{found.above_qps:.4g} QPS (+20%) missed it: "
                              f"{why.get(found.above_qps, '')}")
        else:
            row["message"] = found.note
            if found.peak_qps is None:
                row["missing"] = {"peak_qps": found.note}
        if failures and found.peak_qps is None:
            row["status"] = "error"
            row["message"] = f"{found.note}; a run failed: {failures[0]}"
        self._write(row)
        return row


def _bounds(options: LoadOptions) -> str:
    """The bounds a peak search judges by, in words: ``the 50 ms latency bound``."""
    given = [f"{value * 1e3:g} ms {name}" for name, value in (
        ("latency", options.latency_bound_s), ("TTFT", options.ttft_bound_s),
        ("TPOT", options.tpot_bound_s)) if value is not None]
    return f"the {' and '.join(given)} bound{'s' if len(given) > 1 else ''}"


def _verdict(row: dict[str, Any]) -> str:
    """Why a probe met the bounds or not, in a few words."""
    if row.get("status") != "ok":
        return f"{row.get('status')}: {str(row.get('message') or '')[:120]}"
    figures = []
    for name, column in (("latency", "latency"), ("TTFT", "ttft"), ("TPOT", "tpot")):
        p99, bound = row.get(f"{column}_p99_s"), row.get(f"{column}_bound_s")
        if isinstance(bound, float) and bound == bound:
            shown = f"{p99 * 1e3:.3g} ms" if isinstance(p99, float) and p99 == p99 else "none"
            over = " (over)" if isinstance(p99, float) and p99 > bound else ""
            figures.append(f"p99 {name} {shown}{over}")
    figure = ", ".join(figures) or "no p99"
    if row.get("meets_bound"):
        return f"{figure}: within the bounds"
    if not row.get("load_valid"):
        reason = next((part for part in str(row.get("message") or "").split("; ")
                       if part.startswith("invalid:")), "the run was not valid")
        return f"{figure}, but {reason}"
    return f"{figure}: over a bound"
