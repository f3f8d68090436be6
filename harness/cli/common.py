"""What the commands share: the one-line usage error, the parser that raises it, value parsers
for sizes, fractions and parameters, and the selection flags of ``run`` and ``ab``."""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


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
