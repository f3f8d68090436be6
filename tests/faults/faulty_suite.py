"""Purpose-built faulty workloads for the fault-injection tests (not a test module itself)."""

from __future__ import annotations

import os
import time
from typing import Any

from harness import Task, workload


def _checked_sum(x: Any) -> Any:
    return x.sum()


def must_equal(expected: float) -> Any:
    def check(out: Any) -> None:
        assert abs(float(out) - expected) < 1e-6, f"got {float(out)}, expected {expected}"
    return check


@workload(params={"n": [1000, 2000, 3000, 4000]})
def fine(n: int) -> Task:
    """A correct, quick workload."""
    import torch

    x = torch.arange(n, dtype=torch.float64)
    return Task(fn=_checked_sum, inputs=(x,), check=must_equal(n * (n - 1) / 2))


def _segfault(x: Any) -> None:
    import ctypes

    ctypes.string_at(0)  # reads address 0: SIGSEGV


def _abort(x: Any) -> None:
    os.abort()


def _killed(x: Any) -> None:
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's out-of-memory killer sends


def _raise(x: Any) -> None:
    raise RuntimeError("the workload failed on purpose")


@workload(params={"how": ["segfault", "abort", "killed", "exception"]})
def crash(how: str) -> Task:
    """Dies on its first call."""
    import torch

    fn = {"segfault": _segfault, "abort": _abort, "killed": _killed, "exception": _raise}[how]
    return Task(fn=fn, inputs=(torch.ones(4),), check=lambda out: None)


def _sleep_forever(x: Any) -> None:
    time.sleep(3600)


@workload(params={"n": [1]})
def hang(n: int) -> Task:
    """Never returns."""
    return Task(fn=_sleep_forever, inputs=(n,), check=lambda out: None)


def _exhaust(x: Any) -> None:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 2**20))  # 64 MiB at a time, touched (zero-filled)


@workload(params={"n": [1]})
def leak(n: int) -> Task:
    """Allocates until memory runs out."""
    return Task(fn=_exhaust, inputs=(n,), check=lambda out: None)


_CACHE: dict[str, Any] = {}


def _cached(x: Any) -> Any:
    # Returns the first answer forever: fast, "correct" for the first input, and a lie.
    if "answer" not in _CACHE:
        _CACHE["answer"] = x.sum()
    return _CACHE["answer"]


@workload(params={"n": [1000]})
def constant(n: int) -> Task:
    """Answers from a cache, whatever the input."""
    import torch

    x = torch.arange(n, dtype=torch.float64)
    return Task(fn=_cached, inputs=(x,), check=must_equal(n * (n - 1) / 2))


#: in the command line of the process :func:`spawn` starts, so that tests can find it.
CHILD_MARK = "faulty-suite-child"


def _spawn_and_hang(x: Any) -> None:
    import subprocess
    import sys

    subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(3600)  # {CHILD_MARK}"])
    time.sleep(3600)


@workload(params={"n": [1]})
def spawn(n: int) -> Task:
    """Starts a process of its own, then never returns."""
    return Task(fn=_spawn_and_hang, inputs=(n,), check=lambda out: None)


def _sys_exit(x: Any) -> None:
    import sys

    sys.exit(3)


def _os_exit(x: Any) -> None:
    os._exit(0)  # nothing in the process can catch this, nor tell it from success


@workload(params={"how": ["sys_exit", "os_exit"]})
def exits(how: str) -> Task:
    """Ends its process on its first call."""
    fn = {"sys_exit": _sys_exit, "os_exit": _os_exit}[how]
    return Task(fn=fn, inputs=(1,), check=lambda out: None)
