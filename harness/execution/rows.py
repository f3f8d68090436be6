"""What every run mode writes into a row the same way: the identity header, error rows, message
joins, the worker's own peak RSS, and which rows a run folder already holds."""

from __future__ import annotations

import math
import socket
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.execution.hooks import Hooks
    from harness.plan import AdapterSpec, Plan
    from harness.results import RunWriter
    from harness.workload import Case

#: one case → its row.
RunOne = Callable[["Case"], dict[str, Any]]
#: an adapter → a context (its set-up and tear-down) that gives how to run one case on it.
Session = Callable[["AdapterSpec"], AbstractContextManager[RunOne]]

#: (case id, adapter label, repetition): what identifies a row within a run.
RowKey = tuple[str, str, int]


def identity(case: Case, spec: AdapterSpec, repetition: int, *,
             adapter_options: dict[str, Any] | None = None, device: str | None = None,
             host: str | None = None, scenario: str = "loop") -> dict[str, Any]:
    """The columns that say which case ran where, and an ``ok`` status to be overwritten.

    ``adapter_options`` are the adapter's resolved options (its defaults filled in) when an
    adapter instance exists, else the spec's; ``host``: where it ran (default: this machine).
    """
    row: dict[str, Any] = {
        "suite": case.suite, "workload": case.workload.name, "case_id": case.id,
        "params": case.params, "adapter": spec.name, "adapter_label": spec.label,
        "adapter_options": dict(spec.options if adapter_options is None else adapter_options),
        "host": host or socket.gethostname(), "repetition": repetition,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": "ok", "message": "", "correct": None, "scenario": scenario,
    }
    if device is not None:
        row["device"] = device
    return row


def error_row(case: Case, spec: AdapterSpec, repetition: int, message: str,
              host: str | None = None) -> dict[str, Any]:
    """The row of a case that ended without one of its own (its worker died, say)."""
    return {**identity(case, spec, repetition, host=host), "status": "error", "message": message}


#: what a case may raise that becomes its error row: any exception, and ``SystemExit`` too (a
#: case calling ``sys.exit`` must not end a run that runs it in-process, ``--no-isolate``).
#: ``KeyboardInterrupt`` (Ctrl-C, SIGTERM) is left to stop the run.
CASE_ERRORS = (Exception, SystemExit)


def error_text(exc: BaseException) -> str:
    """One line naming the exception and where it was raised (the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}{where}"


def join(first: str, second: str) -> str:
    """Two messages as one, ``; ``-separated; either may be empty."""
    return f"{first}; {second}" if first and second else first or second


def is_empty(value: Any) -> bool:
    """Whether a figure is missing (None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def worker_peak_rss(row: dict[str, Any], what: str) -> None:
    """Put this process's high-water RSS into an ok row: a worker that ran only this case.

    Linux reports ``ru_maxrss`` in KiB. ``what`` says what the process ran besides the timing
    (the build and first call always count)."""
    import resource

    if row.get("status") != "ok":
        return
    row["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    row["peak_rss_source"] = f"ru_maxrss of the case's own worker process{what}"
    if isinstance(row.get("missing"), dict):
        row["missing"].pop("peak_rss_bytes", None)


def out_of_memory(message: str) -> bool:
    """Whether an error message says an allocation failed."""
    text = message.lower()
    return any(s in text for s in ("memoryerror", "can't allocate memory", "out of memory",
                                   "cannot allocate memory", "std::bad_alloc"))


def device_out_of_memory(message: str) -> bool:
    """Whether an error message says a device's own memory ran out (an accelerator's
    allocator, not the host's: an address-space cap has no part in it)."""
    text = message.lower()
    return any(s in text for s in ("cuda out of memory", "outofmemoryerror", "hip out of memory",
                                   "cudaerrormemoryallocation", "cublas_status_alloc_failed",
                                   "mps backend out of memory"))


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


def write(writer: RunWriter, row: dict[str, Any]) -> None:
    """Write a row, and the operators and trace of its profile (which travel in the row from
    wherever it ran) beside it in the run folder."""
    from harness.profiling.ops import store

    store(row, writer.path, writer.run_id)
    writer.append(row)


def run_pending(plan: Plan, done: set[RowKey], repetition: int, writer: RunWriter | None,
                hooks: Hooks, session: Session) -> list[dict[str, Any]]:
    """The plan loop every sequential mode shares: per adapter with cases still to run, open
    its ``session``, run each case, write its row at once (``writer``: None when the mode
    writes rows itself), and tell the hooks."""
    rows = []
    for spec, cases in pending(plan, done, repetition):
        if not cases:
            continue
        with session(spec) as run_one:
            for index, case in cases:
                hooks.started(case, spec, index, len(plan))
                row = run_one(case)
                if writer is not None:
                    write(writer, row)
                rows.append(row)
                hooks.arrived(row, index, len(plan))
    return rows
