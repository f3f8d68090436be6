"""What the commands share: the one-line usage error, the parser that raises it, value parsers
for sizes, fractions, seconds and parameters, the selection flags of ``run`` and ``ab``, and
SIGTERM handled like Ctrl-C."""

from __future__ import annotations

import argparse
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

EXIT_USAGE = 2
#: the exit statuses of a command stopped by Ctrl-C (SIGINT) and by SIGTERM: 128 + the
#: signal's number, what a shell reports for a process the signal killed.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the process is, so that it stops exactly as cleanly as on
    Ctrl-C: workers killed, finished rows kept."""


def interrupted_status(exc: KeyboardInterrupt) -> int:
    """The exit status for an interrupt: :data:`EXIT_TERMINATED` for SIGTERM."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` (once: a second one kills at once)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error; we print one line that names the valid choices."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def add_selection(parser: argparse.ArgumentParser) -> None:
    """``-w``, ``-a`` and ``-p``: which workloads, adapters and parameter values run."""
    parser.add_argument("-w", "--workload", action="append", default=[], metavar="NAME",
                        help="only this workload (repeatable)")
    parser.add_argument("-a", "--adapter", action="append", default=[],
                        metavar="NAME[:k=v,...]",
                        help="run on this adapter, e.g. cpu:threads=1 (repeatable; default: "
                             "every available adapter except null)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="K=V1,V2",
                        help="override a parameter's values (repeatable)")


def size(text: str) -> int:
    """``8G``, ``512M``, ``1.5GiB`` or a byte count → bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size such as 8G or 512M, got {text!r}")
    scale = 1024 ** " KMGT".index(match.group(2).upper() or " ")
    value = int(float(match.group(1)) * scale)
    if value < 64 * 2**20:
        raise argparse.ArgumentTypeError(f"a worker needs at least 64M, got {text!r}")
    return value


def fraction(text: str) -> float:
    """``5%`` or ``0.05`` → 0.05."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 5% or 0.05, "
                                         f"got {text!r}") from None
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0% to 1000%, got {text!r}")
    return value


def parse_params(items: list[str]) -> dict[str, tuple[str, ...]]:
    """``-p key=v1,v2`` items → key → values (raw strings, typed later against the grid)."""
    params: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        parts = tuple(v.strip() for v in values.split(","))
        if not sep or not key.strip() or not all(parts):
            raise UsageError(f"-p/--param takes key=value[,value...], got {item!r}")
        params[key.strip()] = parts
    return params
