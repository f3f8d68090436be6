"""Each case in its own worker process: a crash, a hang or memory exhaustion becomes an error row.

Workers are forked from a multiprocessing *forkserver* that has already imported torch,
transformers and the harness, so a fresh process per case costs tens of milliseconds rather than
the seconds a new interpreter takes. Nothing in the forkserver has touched a device, started a
thread pool or imported torchax, so every case starts from the same clean state, and adapter
side effects (CUDA contexts, torchax's changes to torch) die with the case's process.

The parent only waits while a worker measures: it blocks on the worker's result pipe and its
process sentinel (no polling, DESIGN §4.8), and writes each row itself, so rows are written by
one process, in order. A worker that dies without a result is named by its signal; one that
outlives ``timeout_s`` is killed and reported as hung. ``max_memory_bytes`` caps the worker's
address space (``RLIMIT_AS``), so an allocation beyond it fails inside the case (an error row
that names the cap) instead of waking the kernel's out-of-memory killer.

Peak RSS in a worker is the process's own high-water mark (``ru_maxrss``): the whole case,
build and first call included, in a process that ran nothing else.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from harness import peak_cache
from harness.plan import AdapterSpec, Plan

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext

    from harness.config import RunConfig
    from harness.results import RunWriter
    from harness.runner import Hooks, RowKey
    from harness.workload import Case

#: imported once in the forkserver, so that each forked worker starts with them loaded, with
#: what the plan's adapters and workloads declare (:func:`preload_for`). Only modules that touch
#: no device and start no threads at import.
BASE_PRELOAD = ("numpy", "pandas", "psutil", "harness.runner")
# Checked: importing jax, onnxruntime and the ONNX exporter starts no thread and initialises no
# backend, so forking after them is safe; torchax is left out (it changes torch's global state).

#: how long a worker may take beyond its timeout to exit once killed.
KILL_GRACE_S = 10.0

SIGNAL_CAUSES = {
    signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV)",
    signal.SIGABRT: "aborted (SIGABRT)",
    signal.SIGBUS: "crashed with a bus error (SIGBUS)",
    signal.SIGFPE: "crashed with a floating-point exception (SIGFPE)",
    signal.SIGILL: "crashed on an illegal instruction (SIGILL)",
    signal.SIGKILL: "was killed by SIGKILL: most likely the kernel's out-of-memory killer "
                    "(or another process)",
    signal.SIGTERM: "was terminated (SIGTERM)",
}


@dataclass(frozen=True)
class Limits:
    """Per-case limits of a worker process."""

    timeout_s: float | None = 600.0
    max_memory_bytes: int | None = None


_CONTEXT: ForkServerContext | None = None


def context(preload: Sequence[str] = ()) -> ForkServerContext:
    """The forkserver context; the first call sets what the server preloads (with
    :data:`BASE_PRELOAD`), as the server starts once per process."""
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        # Modules that fail to import are skipped by the server.
        ctx.set_forkserver_preload(list(dict.fromkeys([*BASE_PRELOAD, *preload])))
        _CONTEXT = ctx
    return _CONTEXT


def preload_for(*plans: Plan) -> list[str]:
    """What the plans' workers import: their adapters' and workloads' declared modules, and
    the workloads' own modules. Only these: a cpu run need not wait for jax and ONNX."""
    from harness import plugins

    modules: list[str] = []
    for plan in plans:
        for spec in plan.adapters:
            try:
                modules += plugins.adapter_class(spec.name).preload
            except ValueError:  # an unknown adapter fails later, with its own message
                continue
        for case in plan.cases:
            modules += [*case.workload.imports, case.workload.build.__module__]
    return list(dict.fromkeys(modules))


def start(*plans: Plan) -> None:
    """Start the forkserver now, preloading what ``plans`` need, so that its imports run while
    this process does its own set-up (building the run's context, opening the results)."""
    from multiprocessing import forkserver

    context(preload_for(*plans))
    forkserver.ensure_running()


def death_cause(exitcode: int | None) -> str:
    """Why a worker ended without a result, in words."""
    if exitcode is None:
        return "did not exit"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return f"was killed by signal {-exitcode}"
        return SIGNAL_CAUSES.get(sig, f"was killed by {sig.name}")
    return f"exited with status {exitcode} without a result"


def case_job(config: RunConfig, plan: Plan, spec: AdapterSpec, case: Case, limits: Limits
             ) -> dict[str, Any]:
    """What a worker needs to rebuild and run one case, as plain JSON data (peaks come later)."""
    return {
        "suite": plan.sources.get(case.suite, case.suite), "workload": case.workload.name,
        "params": case.params, "adapter": spec.name, "adapter_options": spec.options,
        "timing": asdict(config.timing), "collect": config.collect,
        "repetition": config.repetition, "max_memory_bytes": limits.max_memory_bytes,
        "recalibrate": config.recalibrate,
    }


def _set_env(env: dict[str, str | None]) -> None:
    """Set (or, for None, unset) variables the caller saw but the forkserver may not have: the
    forkserver's environment is the one it started with, and a Ray worker is told which GPU is
    its own (``CUDA_VISIBLE_DEVICES``) anew for every task."""
    import os

    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _set_memory_cap(limit: int | None) -> None:
    if limit is None:
        return
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _peaks_json(peaks: dict[tuple[str, str], Any]) -> dict[str, Any]:
    from harness.roofline import Peaks

    return {dtype: asdict(p) if isinstance(p, Peaks) else str(p) for (_, dtype), p in peaks.items()}


def run_peaks_job(job: dict[str, Any]) -> dict[str, Any]:
    """Calibrate one adapter's peaks for one dtype in this process: ``{"peaks": ...}``.

    A worker of its own, so that the calibration's large buffers never count in a case's
    peak RSS."""
    from harness import plugins
    from harness.config import RunConfig
    from harness.runner import Runner

    spec = AdapterSpec(job["adapter"], job["adapter_options"])
    runner = Runner(RunConfig(collect=False, recalibrate=job.get("recalibrate", False)),
                    Plan([], [spec]), writer=None)
    adapter = plugins.adapter_class(spec.name)(**spec.options)
    try:
        runner.peaks(spec, adapter, job["dtype"])
    finally:
        adapter.close()
    return {"peaks": _peaks_json(runner._peaks)}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one case on one adapter in this process: ``{"row": ..., "peaks": ...}``."""
    import resource

    from harness import plugins
    from harness.config import RunConfig, TimingOptions
    from harness.roofline import Peaks
    from harness.runner import Runner, _calibrate
    from harness.workload import Case

    if job.get("kind") == "peaks":
        return run_peaks_job(job)
    if job.get("kind") == "pair":
        from harness.ab import run_pair_job

        return run_pair_job(job)
    if job.get("kind") == "load":
        from harness.scenarios.case import run_load_job

        return run_load_job(job)
    suite = plugins.load_suite(job["suite"])
    case = Case(suite=suite.name, workload=suite.workloads[job["workload"]],
                params=job["params"])
    # From the job's creation to here: forking the worker and loading the suite's module.
    arrived = time.time()
    started = arrived - job.get("sent_at", arrived)
    spec = AdapterSpec(job["adapter"], job["adapter_options"])
    config = RunConfig(timing=TimingOptions(**job["timing"]), collect=job["collect"],
                       repetition=job["repetition"], recalibrate=job.get("recalibrate", False))
    runner = Runner(config, Plan([case], [spec]), writer=None)
    for dtype, known in job["peaks"].items():
        runner._peaks[(spec.label, dtype)] = Peaks(**known) if isinstance(known, dict) else known
    adapter = plugins.adapter_class(spec.name)(**spec.options)
    try:
        own = adapter.collectors() if config.collect else []
        _calibrate([*runner.collectors, *own])
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
    limit = job.get("max_memory_bytes")
    if limit and row["status"] == "error" and _out_of_memory(row["message"]):
        row["message"] += f" (the worker's memory cap, --max-memory, is {limit / 2**30:.3g} GiB)"
    if row["status"] == "ok" and config.collect:
        # Linux reports ru_maxrss in KiB: the high-water mark of this process, which ran only
        # this case.
        row["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        row["peak_rss_source"] = "ru_maxrss of the case's own worker process"
    return {"row": row, "peaks": _peaks_json(runner._peaks), "info": info}


def _out_of_memory(message: str) -> bool:
    text = message.lower()
    return any(s in text for s in ("memoryerror", "can't allocate memory", "out of memory",
                                   "cannot allocate memory", "std::bad_alloc"))


def _die_with_parent() -> None:
    """Have the kernel kill this worker when the forkserver that forked it exits (Linux).

    The forkserver exits when the process that owns it dies (the harness, or the Ray worker of
    a cluster run, killed mid-case). An orphaned case would go on loading the machine while
    the next case is timed there, so it must end with its owner."""
    import ctypes
    import os

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getppid()
        if libc.prctl(1, signal.SIGKILL) != 0:  # 1 = PR_SET_PDEATHSIG
            return
    except (OSError, AttributeError):  # not Linux: nothing to set
        return
    if os.getppid() != parent:  # the forkserver died before the request took effect
        os._exit(1)


def worker_main(job_text: str, conn: Connection) -> None:
    """Entry point of a worker process: run the job, send the result back as JSON text."""
    _die_with_parent()
    try:
        job = json.loads(job_text)
        _set_env(job.get("env") or {})
        _set_memory_cap(job.get("max_memory_bytes"))
        result = run_job(job)
    except BaseException as exc:  # anything at all must reach the parent as a row
        from harness.runner import _error_text

        result = {"error": f"worker failed: {_error_text(exc)}"}
    # NaN is a valid figure here (missing); the parent reads it back as NaN.
    conn.send_bytes(json.dumps(result, default=str).encode())
    conn.close()


def run_isolated(config: RunConfig, plan: Plan, writer: RunWriter, limits: Limits,
                 hooks: Hooks | None = None, done: set[RowKey] | None = None,
                 ) -> list[dict[str, Any]]:
    """Run every pending case of ``plan`` in its own worker; write and return the rows."""
    from harness.runner import Hooks, pending

    hooks = hooks or Hooks()
    context(preload_for(plan))  # the first call decides what the forkserver preloads
    rows = []
    for spec, cases in pending(plan, done or set(), config.repetition):
        peaks: dict[str, Any] = {}  # dtype → peaks or reason, learnt from this adapter's workers
        for index, case in cases:
            if hooks.on_start:
                hooks.on_start(case, spec, index, len(plan))
            result = run_case_job(case_job(config, plan, spec, case, limits), limits, peaks)
            row = result["row"] if "row" in result else _error_row(case, spec, config,
                                                                    result["error"])
            writer.append(row)
            rows.append(row)
            if hooks.on_row:
                hooks.on_row(row, index, len(plan))
    return rows


def run_case_job(job: dict[str, Any], limits: Limits, peaks: dict[str, Any]) -> dict[str, Any]:
    """Run one case (a :func:`case_job`) in a fresh worker of this machine's forkserver:
    ``{"row": ..., "info": ...}`` or ``{"error": ...}`` when the worker died without a row.

    ``peaks`` (dtype → peaks or the reason there are none) is this adapter's cache on this
    machine, filled as workers learn them. Peaks are calibrated in a worker of their own (their
    buffers would otherwise count in the case's peak RSS), once per adapter and dtype. The
    dtype is read from the parameters; a task whose dtype differs calibrates in its own worker
    instead.
    """
    ctx = context()
    dtype = str(job["params"].get("dtype", "float32"))
    recalibrate = bool(job.get("recalibrate"))
    if dtype not in peaks and not recalibrate:
        cached = peak_cache.lookup(AdapterSpec(job["adapter"], job["adapter_options"]).label,
                                   job["adapter_options"], dtype)
        if cached is not None:  # this machine's calibration: no worker needed
            peaks[dtype] = asdict(cached)
    if dtype not in peaks:
        probe = json.dumps({"kind": "peaks", "adapter": job["adapter"],
                            "adapter_options": job["adapter_options"], "dtype": dtype,
                            "env": job.get("env"), "recalibrate": recalibrate})
        found = _run_worker(ctx, probe, limits)
        peaks[dtype] = found.get("peaks", {}).get(
            dtype, f"peak calibration failed: {found.get('error', 'no result')}")
    result = _run_worker(ctx, json.dumps({**job, "peaks": peaks, "sent_at": time.time()}),
                         limits)
    if "row" in result:
        peaks.update(result.get("peaks", {}))
    return result


def _run_worker(ctx: ForkServerContext, job: str, limits: Limits) -> dict[str, Any]:
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=worker_main, args=(job, send), daemon=True)
    process.start()
    send.close()  # the parent keeps only the reading end: EOF when the worker dies
    try:
        # Blocks in select() on the pipe and the process sentinel: the parent stays idle.
        ready = wait([receive, process.sentinel], timeout=limits.timeout_s)
        if receive in ready:
            try:
                payload = receive.recv_bytes()
            except EOFError:
                payload = b""
            if payload:
                process.join(KILL_GRACE_S)
                result: dict[str, Any] = json.loads(payload)
                return result
        if not ready:
            process.kill()
            process.join(KILL_GRACE_S)
            return {"error": f"timed out after {limits.timeout_s:g} s (--timeout): the case hung "
                             "or ran too long; its worker was killed"}
        process.join(KILL_GRACE_S)
        return {"error": f"the worker {death_cause(process.exitcode)}"}
    finally:
        receive.close()
        if process.is_alive():
            process.kill()
            process.join(KILL_GRACE_S)


def _error_row(case: Any, spec: AdapterSpec, config: RunConfig, message: str,
               host: str | None = None) -> dict[str, Any]:
    """The row of a case whose worker ended without one; ``host``: where it ran (this one)."""
    import socket
    from datetime import UTC, datetime

    return {"suite": case.suite, "workload": case.workload.name, "case_id": case.id,
            "params": case.params, "adapter": spec.name, "adapter_label": spec.label,
            "adapter_options": spec.options, "host": host or socket.gethostname(),
            "repetition": config.repetition,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": "error", "correct": None, "message": message, "scenario": "loop"}
