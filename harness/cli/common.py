"""What the commands share: the one-line usage error, the parser that raises it, value parsers
for sizes, fractions, seconds and parameters, the selection flags of ``run`` and ``ab``, and
SIGTERM handled like Ctrl-C."""

from __future__ import annotations

import argparse
import math
import re
import signal
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

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


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """An ``OSError`` inside (a read-only folder, a full disk) becomes a one-line
    :class:`UsageError` naming the file that could not be written."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
        raise UsageError(f"cannot write {path}{where}: {exc.strerror or exc}") from None


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help, wrapped without breaking a flag at its hyphen (``--max-`` / ``time``)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return textwrap.fill(" ".join(text.split()), width, initial_indent=indent,
                             subsequent_indent=indent, break_on_hyphens=False)


class Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error; we print one line that names the valid choices.
    Help is wrapped by :class:`HelpFormatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

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


def join_dash_values(argv: list[str]) -> list[str]:
    """``--max-memory -5G`` → ``--max-memory=-5G``: argparse takes a value that starts with a
    dash for an option (only plain negative numbers pass) and says "expected one argument";
    joined, the value reaches the option's own check, which says what is wrong with it."""
    joined: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--":
            joined += [arg, *rest]
            break
        following = next(rest, None) if arg.startswith("--") and "=" not in arg else None
        if following is not None and re.match(r"-\.?\d", following):
            joined.append(f"{arg}={following}")
        else:
            joined += [arg] if following is None else [arg, following]
    return joined


#: the largest address-space cap the kernel takes (``RLIMIT_AS`` is a signed 64-bit count).
MAX_SIZE = 2**63 - 1


def size(text: str) -> int:
    """``8G``, ``512M``, ``1.5GiB`` or a byte count → bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        what = "a size cannot be negative" if text.strip().startswith("-") else \
            "expected a size such as 8G or 512M"
        raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
    scale = 1024 ** " KMGT".index(match.group(2).upper() or " ")
    value = int(float(match.group(1)) * scale)
    if value < 64 * 2**20:
        raise argparse.ArgumentTypeError(f"a worker needs at least 64M, got {text!r}")
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"{text!r} is larger than any address space (at most "
                                         f"{MAX_SIZE // 2**40}T)")
    return value


def seconds(text: str) -> float:
    """A finite number of seconds, 0 or more."""
    return _seconds(text, positive=False)


def positive_seconds(text: str) -> float:
    """A finite number of seconds, more than 0."""
    return _seconds(text, positive=True)


def _seconds(text: str, positive: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and (value > 0 if positive else value >= 0)):
        wanted = "above 0" if positive else "0 or more"
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, {wanted}, got "
                                         f"{text!r}")
    return value


def fraction(text: str) -> float:
    """``5``, ``5%`` or ``0.05`` → 0.05: thresholds and allowances, read by the rule of
    ``--precision`` (a bare number of 1 or more is a percent, below 1 a fraction; above 100%
    is written with ``%``)."""
    raw = text.strip()
    rule = (f"expected a percentage such as 5, 5% or 0.05 (a number of 1 or more is a percent, "
            f"below 1 a fraction), from 0% to 1000%, got {text!r}")
    try:
        number = float(raw[:-1] if raw.endswith("%") else raw)
    except ValueError:
        raise argparse.ArgumentTypeError(rule) from None
    value = number / 100 if raw.endswith("%") or number >= 1 else number
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(rule)
    return value


def precision(text: str) -> float:
    """``--precision``: ``2``, ``2%`` or ``0.02`` → 0.02 (:func:`harness.config.parse_precision`:
    a number of 1 or more is a percent, below 1 a fraction)."""
    from harness.config import ConfigError, parse_precision

    try:
        return parse_precision(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
