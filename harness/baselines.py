"""Named baselines: run folders kept under ``<results>/baselines/NAME/`` for comparisons.

The convention: a baseline is a complete run folder (``context.json`` and ``rows.jsonl``),
ideally a ``--repeat`` run so that its between-process noise is known, recorded on the same kind
of machine as the candidates it will judge. ``results/baselines/`` is the one part of
``results/`` that git tracks, so a baseline is committed and reviewed like code.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from harness.results import CONTEXT_FILE, ROWS_FILE, ResultsError, read_context, read_rows

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
    """Copy the run folder ``run`` to ``<results>/baselines/<name>/``; returns that path.

    The run must load (a baseline that cannot be read is no use to the comparisons that come
    later). No symbolic link is followed to read or write: not a run file that is one (it would
    copy whatever it points at into the tracked folder), nor a ``baselines`` folder or baseline
    that is one (``--force`` would delete and write outside the results directory). The copy
    is made beside the old baseline and renamed over it, so a failure leaves the old one."""
    run = Path(run)
    for file in (CONTEXT_FILE, ROWS_FILE):
        if (run / file).is_symlink():
            raise ResultsError(f"{run / file} is a symbolic link: a baseline copies run files, "
                               "not what a link points at")
        if not (run / file).is_file():
            raise ResultsError(f"{run} is not a run folder (needs {CONTEXT_FILE} and {ROWS_FILE})")
    read_context(run)
    read_rows(run)
    root = folder(results)
    dest = root / _check_name(name)
    for path in (root, dest):
        if path.is_symlink():
            raise ResultsError(f"{path} is a symbolic link: refusing to write or delete through "
                               "it (make it a folder)")
    if dest.exists() and not replace:
        raise ResultsError(f"baseline {name!r} exists at {dest}; pass --force to replace it")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        for file in (CONTEXT_FILE, ROWS_FILE):
            shutil.copyfile(run / file, staging / file, follow_symlinks=False)
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def names(results: Path) -> dict[str, Path]:
    """Every saved baseline: name → folder."""
    root = folder(results)
    if not root.is_dir():
        return {}
    # Only names that save() could have made: anything else (a hidden staging folder, a name
    # carrying terminal escapes) cannot be asked for by name either.
    return {p.name: p for p in sorted(root.iterdir())
            if _NAME.fullmatch(p.name) and ".." not in p.name and (p / ROWS_FILE).is_file()}


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
