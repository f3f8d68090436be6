"""Named baselines: run folders kept under ``<results>/baselines/NAME/`` for comparisons.

The convention: a baseline is a complete run folder (``context.json`` and ``rows.jsonl``),
ideally a ``--repeat`` run so that its between-process noise is known, recorded on the same kind
of machine as the candidates it will judge. ``results/baselines/`` is the one part of
``results/`` that git tracks, so a baseline is committed and reviewed like code.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from harness.results import CONTEXT_FILE, ROWS_FILE, ResultsError

BASELINES = "baselines"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def folder(results: Path) -> Path:
    return Path(results) / BASELINES


def _check_name(name: str) -> str:
    # Names become folder names: no separators, no "..", nothing hidden.
    if not _NAME.fullmatch(name) or ".." in name:
        raise ResultsError(f"baseline name {name!r} must be 1-64 letters, digits, '.', '_' or "
                           f"'-', starting with a letter or digit")
    return name


def save(run: Path, name: str, results: Path, replace: bool = False) -> Path:
    """Copy the run folder ``run`` to ``<results>/baselines/<name>/``; returns that path."""
    run = Path(run)
    if not (run / ROWS_FILE).is_file() or not (run / CONTEXT_FILE).is_file():
        raise ResultsError(f"{run} is not a run folder (needs {CONTEXT_FILE} and {ROWS_FILE})")
    dest = folder(results) / _check_name(name)
    if dest.exists():
        if not replace:
            raise ResultsError(f"baseline {name!r} exists at {dest}; pass --force to replace it")
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for file in (CONTEXT_FILE, ROWS_FILE):
        shutil.copyfile(run / file, dest / file)
    return dest


def names(results: Path) -> dict[str, Path]:
    """Every saved baseline: name → folder."""
    root = folder(results)
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / ROWS_FILE).is_file()}


def resolve(spec: str, results: Path) -> Path:
    """A path that exists as given, else the baseline of that name; a clear error otherwise."""
    path = Path(spec)
    if path.exists():
        return path
    known = names(results)
    if _NAME.fullmatch(spec) and spec in known:
        return known[spec]
    choices = ", ".join(known) or "none saved"
    raise ResultsError(f"{spec!r} is neither a path nor a baseline in {folder(results)} "
                       f"(baselines: {choices})")
