"""Worker processes: one place that starts them, runs a named target in them and reads back its
result. It knows no job kinds: a run mode hands it a target (``"module:function"``) and a JSON
payload, and gets the target's result or an error that says why there is none.

Workers are forked from a multiprocessing *forkserver* that has already imported torch,
transformers and the harness, so a fresh process per case costs tens of milliseconds rather than
the seconds a new interpreter takes. Nothing in the forkserver has touched a device, started a
thread pool or imported torchax, so every case starts from the same clean state, and adapter side
effects (CUDA contexts, torchax's changes to torch) die with the case's process.

The contract of a worker:

1. A target is a module-level function ``target(payload: dict) -> dict``, named as
   ``"package.module:function"``; the payload and the result are plain JSON data (NaN allowed).
2. Anything the target raises (``SystemExit`` included) comes back as ``{"error": ...}``; a
   worker that dies without a result comes back as ``{"error": ...}`` naming its signal or exit
   status; one that outlives ``Limits.timeout_s`` is killed and reported as hung.
3. ``Limits.max_memory_bytes`` caps the worker's address space (``RLIMIT_AS``), so an
   allocation beyond it fails inside the target (which can say so) instead of waking the
   kernel's out-of-memory killer.
4. A worker dies with the process that started it, however that process dies (SIGKILL
   included), and so do the processes its case started: the worker leads a process group of
   its own, and a thread blocked on its result pipe kills the group once the parent's end
   closes. An orphan would go on loading the machine while the next case is timed there.
5. The parent only waits while a worker runs: it blocks on the result pipe and the process
   sentinel (no polling: a polling parent competes with the worker for the cores it measures).
6. A worker starts without the parent's ``__main__`` (:func:`launch`), so that a script
   without an ``if __name__ == "__main__":`` guard does not run again in each worker.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from importlib import import_module
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext

    from harness.plan import Plan

#: imported once in the forkserver, so that each forked worker starts with them loaded, with
#: what the plan's adapters and workloads declare (:func:`preload_for`). Only modules that touch
#: no device and start no threads at import.
BASE_PRELOAD = ("numpy", "pandas", "psutil", "harness.execution.targets")
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
    """Per-job limits of a worker process."""

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


def resolve(target: str) -> Any:
    """The function named ``"package.module:function"``."""
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def run_in_worker(target: str, payload: dict[str, Any], limits: Limits | None = None
                  ) -> dict[str, Any]:
    """Run ``target(payload)`` in a fresh worker of this process's forkserver; its result, or
    ``{"error": ...}`` saying why there is none."""
    limits = limits or Limits()
    ctx = context()
    receive, send = ctx.Pipe(duplex=False)
    text = json.dumps({"target": target, "payload": payload,
                       "max_memory_bytes": limits.max_memory_bytes})
    process = ctx.Process(target=worker_main, args=(text, send), daemon=True)
    launch(process)
    send.close()  # the parent keeps only the reading end: EOF when the worker dies
    try:
        # Blocks in select() on the pipe and the process sentinel: the parent stays idle.
        ready = wait([receive, process.sentinel], timeout=limits.timeout_s)
        if receive in ready:
            try:
                raw = receive.recv_bytes()
            except EOFError:
                raw = b""
            if raw:
                process.join(KILL_GRACE_S)
                result: dict[str, Any] = json.loads(raw)
                return result
        if not ready:
            kill_group(process)
            process.join(KILL_GRACE_S)
            return {"error": f"timed out after {limits.timeout_s:g} s (--timeout): the case hung "
                             "or ran too long; its worker was killed"}
        process.join(KILL_GRACE_S)
        return {"error": f"the worker {death_cause(process.exitcode)}"}
    finally:
        # Also on an interrupt, and for processes the case left behind after its worker ended.
        kill_group(process)
        if process.is_alive():
            process.join(KILL_GRACE_S)
        receive.close()


def launch(process: multiprocessing.process.BaseProcess) -> None:
    """Start a worker without handing it the parent's ``__main__``.

    multiprocessing runs the parent's main script again in each forkserver child (as
    ``__mp_main__``), so that pickled references into ``__main__`` resolve there. A worker
    takes its target by name and its payload as JSON, and needs nothing of ``__main__``; and a
    script without an ``if __name__ == "__main__":`` guard (a notebook-style script calling
    ``harness.bench``) would run again, top to bottom, in every worker, which fails. So the
    main module's file and spec, whence multiprocessing reads it, are hidden while the worker
    starts."""
    main = sys.modules.get("__main__")
    names = ("__file__", "__spec__")
    hidden = {n: main.__dict__[n] for n in names if main is not None and n in main.__dict__}
    if main is not None:
        main.__dict__.pop("__file__", None)
        main.__dict__["__spec__"] = None  # read as main.__spec__: it must be there
    try:
        process.start()
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(hidden)


def kill_group(process: multiprocessing.process.BaseProcess) -> None:
    """Kill a worker and every process of its group (what its case started)."""
    assert process.pid is not None
    # The worker leads its group (:func:`watch_parent`), so the group's id is its pid. A group
    # id stays reserved while the group has members, so this cannot reach another group.
    with suppress(ProcessLookupError, PermissionError):  # no group left (or not formed yet)
        os.killpg(process.pid, signal.SIGKILL)
    if process.is_alive():
        process.kill()


def worker_main(text: str, conn: Connection) -> None:
    """Entry point of a worker process: run the target, send its result back as JSON text."""
    from harness.execution.rows import error_text

    die_with_parent()
    watch_parent(conn)
    try:
        job = json.loads(text)
        set_memory_cap(job.get("max_memory_bytes"))
        result = resolve(job["target"])(job["payload"])
    except BaseException as exc:  # anything at all must reach the parent
        result = {"error": f"worker failed: {error_text(exc)}"}
    # NaN is a valid figure here (missing); the parent reads it back as NaN.
    conn.send_bytes(json.dumps(result, default=str).encode())
    conn.close()


def set_env(env: dict[str, str | None]) -> None:
    """Set (or, for None, unset) variables the caller saw but the forkserver may not have: the
    forkserver's environment is the one it started with, and a Ray worker is told which GPU is
    its own (``CUDA_VISIBLE_DEVICES``) anew for every task."""
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def set_memory_cap(limit: int | None) -> None:
    """Cap this process's address space at ``limit`` bytes (None: no cap)."""
    if limit is None:
        return
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def watch_parent(conn: Connection) -> None:
    """Make this worker the leader of a process group of its own, and kill that group (this
    worker and whatever its case started) as soon as the parent's end of the result pipe
    closes: the parent died, however (SIGKILL included), or gave up on this worker.

    The kernel's parent-death signal (:func:`die_with_parent`) cannot do it alone: it watches
    the forkserver, and the forkserver outlives a killed parent while any worker lives, because
    each worker holds the forkserver's "parent alive" pipe. A thread blocked in ``poll`` costs
    no CPU while the case is timed."""
    import select
    import threading

    os.setsid()  # a group of its own, which the terminal's Ctrl-C does not reach either
    # A duplicate: the watch outlives this function's caller closing ``conn``.
    fd = os.dup(conn.fileno())

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLERR)  # a pipe's writing end reports it: no reader left
        poller.poll()
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, name="harness-watch-parent", daemon=True).start()


def die_with_parent() -> None:
    """Have the kernel kill this worker when the forkserver that forked it exits (Linux).

    A second guard beside :func:`watch_parent`, for a forkserver that dies on its own."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getppid()
        if libc.prctl(1, signal.SIGKILL) != 0:  # 1 = PR_SET_PDEATHSIG
            return
    except (OSError, AttributeError):  # not Linux: nothing to set
        return
    if os.getppid() != parent:  # the forkserver died before the request took effect
        os._exit(1)
