"""Reading JSON that may be hostile: bounded size, bounded nesting, and no NaN or Infinity.

Results files, baselines and imported files arrive from other machines and from pull requests.
Python's parser recurses once per level of nesting (a line nested 100,000 deep raises
``RecursionError``), reads a line of any length whole, and accepts ``NaN`` and ``Infinity``,
which are not JSON. Every reader of such files goes through this module, and each problem is
a :class:`JSONProblem` whose message the caller prefixes with the file and line.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: the environment variable that overrides :data:`DEFAULT_MAX_BYTES` (``512M``, ``2G``, bytes).
MAX_BYTES_ENV = "HARNESS_MAX_ROW_BYTES"
#: the longest line (and the largest whole JSON file) read: far above any row the harness
#: writes (millions of raw samples), far below what would exhaust a machine's memory.
DEFAULT_MAX_BYTES = 128 * 2**20
#: rows are three levels deep; parameters and context facts a few more.
MAX_DEPTH = 64


class JSONProblem(ValueError):
    """What is wrong with a piece of JSON, without saying where: the caller knows that."""


def max_bytes() -> int:
    """The size limit: ``$HARNESS_MAX_ROW_BYTES`` when set, else :data:`DEFAULT_MAX_BYTES`."""
    raw = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", raw, re.IGNORECASE)
    size = int(float(match.group(1)) * 1024 ** " KMGT".index(match.group(2).upper() or " ")
               ) if match else 0
    if size < 1:
        raise JSONProblem(f"${MAX_BYTES_ENV} must be a size such as 512M or 2G, got {raw!r}")
    return size


def _too_long(limit: int) -> str:
    return (f"is longer than {limit:,} bytes (set ${MAX_BYTES_ENV}, e.g. to 2G, to read it "
            "anyway)")


def _constant(name: str) -> Any:
    raise JSONProblem(f"holds {name}, which is not JSON (a missing figure is null)")


def _depth_at_most(value: Any, limit: int) -> bool:
    """True when ``value`` nests no deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            stack.extend((child, depth + 1)
                         for child in (item.values() if isinstance(item, dict) else item))
    return True


def loads(text: str | bytes) -> Any:
    """Parse one JSON document; a :class:`JSONProblem` when it is not JSON, holds NaN or
    Infinity, or nests deeper than :data:`MAX_DEPTH`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONProblem(f"is not UTF-8 text (byte {exc.start + 1})") from None
    try:
        value = json.loads(text, parse_constant=_constant)
    except RecursionError:
        raise JSONProblem(f"nests deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise JSONProblem(f"is not JSON ({exc.msg}, column {exc.colno})") from None
    except JSONProblem:
        raise
    except ValueError as exc:  # an integer of more digits than Python converts
        raise JSONProblem(f"is not usable JSON ({exc})") from None
    if not _depth_at_most(value, MAX_DEPTH):
        raise JSONProblem(f"nests deeper than {MAX_DEPTH} levels")
    return value


def read(path: Path) -> Any:
    """A whole JSON file, parsed by :func:`loads`; larger than :func:`max_bytes` is a problem.
    ``OSError`` propagates: the caller says what could not be read."""
    limit = max_bytes()
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise JSONProblem(_too_long(limit).replace("is longer", "is larger"))
    return loads(data)


def lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(number, line, ended)`` for each line of ``path``, numbered from 1, without its newline;
    ``ended`` is False for a last line that has none (a write cut short). A line longer than
    :func:`max_bytes` raises a :class:`JSONProblem` whose message starts ``line N``."""
    limit = max_bytes()
    with open(path, "rb") as fh:
        number = 0
        while line := fh.readline(limit + 1):
            number += 1
            ended = line.endswith(b"\n")
            if not ended and len(line) > limit:
                raise JSONProblem(f"line {number} {_too_long(limit)}")
            yield number, line.rstrip(b"\r\n") if ended else line, ended
