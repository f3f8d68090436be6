"""Persistent workers: a worker kept alive across a case's rounds and told, message by message,
what to do (when to take a sample, when to stop), so that several workers can take turns on one
machine and never time at once.

They follow the contract of :mod:`harness.execution.workers` (JSON in and out, errors as
``{"error": ...}``, the memory cap, death with their parent, a parent that only blocks), and
these rules:

1. A persistent target is a module-level function ``target(payload, port) -> dict``; it may
   exchange JSON messages with the parent through ``port`` (``send``, ``recv``) while it runs,
   and its return value is its result.
2. The parent reads, through :meth:`Channel.recv`, each message in order, then the result;
   a raise, a death or a timeout ends the channel with ``{"error": ...}`` as for
   :func:`run_in_worker`. :attr:`Channel.done` says the worker has ended.
3. ``Limits.timeout_s`` bounds each wait of the parent for the next message, not the worker's
   whole life: a worker told to wait is not hung, one that stops answering is killed.
4. A worker started for another interpreter or import path (:class:`Interpreter`) runs this
   harness's driver, loaded from this checkout by file location, with that path first on its
   import path for everything else (the code under test): the measurement is the same on both
   sides of a comparison, the code measured is each side's own. It dies with the process that
   started it, as forkserver workers do.
5. Messages travel over a private socket or pipe, never stdout: code under test may print.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from harness.execution.workers import (
    KILL_GRACE_S,
    Limits,
    context,
    death_cause,
    die_with_parent,
    launch,
    resolve,
    set_memory_cap,
)


@dataclass(frozen=True)
class Interpreter:
    """Where a worker of another environment runs: the Python executable, and the directory
    whose code is imported first (and is the working directory): a checkout of the code under
    test."""

    python: str
    root: str


#: Bootstraps a worker in another interpreter: the harness is this checkout's, loaded by file
#: location; everything else resolves from the code-under-test's root first.
BOOTSTRAP = """\
import importlib.util, sys
fd, harness_dir, root = sys.argv[1:4]
sys.path[:1] = [root]
spec = importlib.util.spec_from_file_location(
    "harness", harness_dir + "/__init__.py", submodule_search_locations=[harness_dir])
module = importlib.util.module_from_spec(spec)
sys.modules["harness"] = module
spec.loader.exec_module(module)
from harness.execution.channel import serve_fd
serve_fd(int(fd))
"""


class Port:
    """The worker's end of a channel (rule 1)."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def send(self, message: dict[str, Any]) -> None:
        self.conn.send_bytes(json.dumps({"message": message}, default=str).encode())

    def recv(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.conn.recv_bytes())
        return message


class Channel:
    """The parent's end of a persistent worker: send messages, receive messages, then the
    result (rules 2 and 3)."""

    def __init__(self, conn: Connection, sentinel: Any, kill: Callable[[], None],
                 exitcode: Callable[[], int | None], limits: Limits):
        self.conn, self.sentinel, self.limits = conn, sentinel, limits
        self._kill, self._exitcode = kill, exitcode
        self.done = False

    def send(self, message: dict[str, Any]) -> None:
        """Tell the worker something; a worker that has gone is noticed by the next recv."""
        if not self.done:
            with contextlib.suppress(OSError):
                self.conn.send_bytes(json.dumps(message).encode())

    def recv(self) -> dict[str, Any]:
        """The worker's next message, or its result (then :attr:`done`), or ``{"error": ...}``
        (then :attr:`done`) when it raised, died or did not answer within the timeout."""
        if self.done:
            return {"error": "the worker has already ended"}
        ready = wait([self.conn, self.sentinel], timeout=self.limits.timeout_s)
        if self.conn in ready:
            try:
                frame: dict[str, Any] = json.loads(self.conn.recv_bytes())
            except (EOFError, OSError):
                frame = {}
            if "message" in frame:
                message: dict[str, Any] = frame["message"]
                return message
            if frame:
                self.close()
                result: dict[str, Any] = frame.get("result") or {"error": frame.get("error")}
                return result
        self.close()
        if not ready:
            return {"error": f"timed out after {self.limits.timeout_s:g} s (--timeout): the "
                             "case hung or ran too long; its worker was killed"}
        return {"error": f"the worker {death_cause(self._exitcode())}"}

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send ``message`` and return the answer (:meth:`recv`)."""
        self.send(message)
        return self.recv()

    def close(self) -> None:
        """End the worker (killed if it is still running) and release the channel."""
        self.done = True
        self._kill()
        self.conn.close()


def open_worker(target: str, payload: dict[str, Any], limits: Limits | None = None,
                interpreter: Interpreter | None = None) -> Channel:
    """Start ``target(payload, port)`` in a persistent worker: forked from this process's
    forkserver, or, with ``interpreter``, a fresh process of that Python on that import path
    (rule 4). The worker runs until its target returns; talk to it through the channel."""
    limits = limits or Limits()
    job = json.dumps({"target": target, "payload": payload,
                      "max_memory_bytes": limits.max_memory_bytes}).encode()
    if interpreter is None:
        ctx = context()
        mine, theirs = ctx.Pipe(duplex=True)
        process = ctx.Process(target=channel_main, args=(job, theirs), daemon=True)
        launch(process)
        theirs.close()

        def kill() -> None:
            if process.is_alive():
                process.kill()
            process.join(KILL_GRACE_S)

        return Channel(mine, process.sentinel, kill, lambda: process.exitcode, limits)
    return _open_subprocess(job, interpreter, limits)


def _open_subprocess(job: bytes, interpreter: Interpreter, limits: Limits) -> Channel:
    import os
    import socket
    import subprocess
    from pathlib import Path

    ours, theirs = socket.socketpair()
    harness_dir = str(Path(__file__).resolve().parents[1])
    try:
        popen = subprocess.Popen(
            [interpreter.python, "-c", BOOTSTRAP, str(theirs.fileno()), harness_dir,
             interpreter.root],
            pass_fds=[theirs.fileno()], cwd=interpreter.root, stdin=subprocess.DEVNULL)
    finally:
        theirs.close()
    conn = Connection(ours.detach())
    # A pidfd is readable once the process exits: the sentinel to block on beside the socket.
    sentinel = os.pidfd_open(popen.pid) if hasattr(os, "pidfd_open") else conn

    def kill() -> None:
        if popen.poll() is None:
            popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(KILL_GRACE_S)
        if isinstance(sentinel, int):
            os.close(sentinel)

    channel = Channel(conn, sentinel, kill, popen.poll, limits)
    channel.send(json.loads(job))
    return channel


def channel_main(job: bytes, conn: Connection) -> None:
    """Entry point of a forkserver's persistent worker."""
    die_with_parent()
    _serve(json.loads(job), conn)


def serve_fd(fd: int) -> None:
    """Entry point of a persistent worker in another interpreter (:data:`BOOTSTRAP`): its job
    is the first message on the socket ``fd``."""
    die_with_parent()
    conn = Connection(fd)
    try:
        job = json.loads(conn.recv_bytes())
    except (EOFError, OSError):  # the parent has gone
        return
    _serve(job, conn)


def _serve(job: dict[str, Any], conn: Connection) -> None:
    from harness.execution.rows import error_text

    try:
        set_memory_cap(job.get("max_memory_bytes"))
        frame = {"result": resolve(job["target"])(job["payload"], Port(conn))}
    except BaseException as exc:  # anything at all must reach the parent
        frame = {"error": f"worker failed: {error_text(exc)}"}
    with contextlib.suppress(OSError):  # the parent may have gone
        conn.send_bytes(json.dumps(frame, default=str).encode())
    conn.close()
