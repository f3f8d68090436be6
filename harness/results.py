"""Run folders: ``context.json`` written once, ``rows.jsonl`` appended per result; and loading."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
import stat
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from harness import safe_json
from harness.schema import (
    COLUMNS,
    JSON_COLUMNS,
    SAMPLE_COLUMNS,
    SCHEMA,
    column_kind,
    row_problem,
    value_problem,
)

if TYPE_CHECKING:
    import pandas as pd

CONTEXT_FILE = "context.json"
ROWS_FILE = "rows.jsonl"
#: rows of cases that never returned (``lost``), moved aside when a run is resumed.
LOST_FILE = "lost.jsonl"
#: locked by the run that writes the folder (:func:`lock_run`).
LOCK_FILE = ".lock"

RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class ResultsError(ValueError):
    """A results path does not exist or does not hold a run."""


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC time to the second plus random bits."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _jsonable(value: Any) -> Any:
    """NaN is not JSON: missing figures are stored as null and read back as NaN. A numpy or
    torch scalar becomes its Python number (JSON would store it as a string, which the loader
    refuses in a numeric column)."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        value = item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def stored(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as :meth:`RunWriter.append` stores it: every column (then any extra ones), this
    schema version, NaN and numpy scalars as JSON has them."""
    full = {column: row.get(column) for column in COLUMNS}
    full.update({k: v for k, v in row.items() if k not in full}, schema=SCHEMA)
    return dict(_jsonable(full))


class RunWriter:
    """Creates ``<results>/<run_id>/`` and appends rows durably as they are produced."""

    def __init__(self, results_dir: Path, context: dict[str, Any], run_id: str | None = None):
        self.run_id = run_id or new_run_id()
        if not RUN_ID.fullmatch(self.run_id):
            # The folder is created under results_dir: no separators, no "..", nothing hidden.
            raise ResultsError(f"run id {self.run_id!r} must be letters, digits, '-', '_' or '.',"
                               " starting with a letter or digit")
        self.path = Path(results_dir) / self.run_id
        self.path.mkdir(parents=True, exist_ok=False)
        (self.path / CONTEXT_FILE).write_text(
            json.dumps(_jsonable({**context, "run_id": self.run_id, "schema": SCHEMA}), indent=2)
            + "\n",
            encoding="utf-8",
        )
        self._rows = open_to_write(self.path / ROWS_FILE, append=True, binary=True)

    @classmethod
    def reopen(cls, run: Path) -> RunWriter:
        """Append to an existing run folder (a repetition's worker, or a resumed run)."""
        run = Path(run)
        if not (run / CONTEXT_FILE).is_file():
            raise ResultsError(f"{run} is not a run folder (no {CONTEXT_FILE})")
        writer = cls.__new__(cls)
        writer.run_id, writer.path = run.name, run
        writer._rows = open_to_write(run / ROWS_FILE, append=True, binary=True)
        _cut_torn_tail(writer._rows.fileno())
        return writer

    def append(self, row: dict[str, Any]) -> None:
        """Write one row and flush it to disk at once, so a crash loses no finished result."""
        full = stored({**row, "run_id": self.run_id})
        data = (json.dumps(full, allow_nan=False, default=str) + "\n").encode()
        fd = self._rows.fileno()
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:  # a full disk, say: leave no torn row, and name the file
            with suppress(OSError):
                os.ftruncate(fd, end)
            exc.filename = str(self.path / ROWS_FILE)
            raise

    def close(self) -> None:
        self._rows.close()


def open_to_write(path: Path, append: bool = False, binary: bool = False) -> IO[Any]:
    """Open a file in a run folder for writing (truncated, or appended to) without following a
    symbolic link, nor blocking on a FIFO, planted in its place: a run folder may come from
    someone else, and a link there would make the harness overwrite any file the user can."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_APPEND if append else 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ResultsError(f"{path} is a symbolic link: refusing to write through it "
                               "(remove the link)") from None
        if exc.errno == errno.ENXIO:  # a FIFO without a reader
            raise ResultsError(f"{path} is not a regular file: refusing to write to it") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ResultsError(f"{path} is not a regular file: refusing to write to it")
    os.set_blocking(fd, True)
    if not append:
        os.ftruncate(fd, 0)
    mode = ("a" if append else "w") + ("b" if binary else "")
    return os.fdopen(fd, mode) if binary else os.fdopen(fd, mode, encoding="utf-8")


def _cut_torn_tail(fd: int) -> None:
    """Cut a last line that has no newline (the run was killed while writing it), so that the
    next row starts on a line of its own; reads the file backwards from its end only."""
    end = os.fstat(fd).st_size
    if end == 0 or os.pread(fd, 1, end - 1) == b"\n":
        return
    position = end
    while position > 0:
        start = max(0, position - 2**16)
        cut = os.pread(fd, position - start, start).rfind(b"\n")
        if cut >= 0:
            os.ftruncate(fd, start + cut + 1)
            return
        position = start
    os.ftruncate(fd, 0)


def _replace(path: Path, data: str | bytes) -> None:
    """Write ``path`` whole or not at all: a new temporary file beside it (created, never
    opened through a link), synced, then renamed over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (one ``os.write`` may write part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def update_context(run: Path, updates: dict[str, Any]) -> None:
    """Merge ``updates`` into a run's ``context.json`` (dict values one level deep), atomically.

    A cluster run learns each host's context only when the host first reports back."""
    context = read_context(Path(run))
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(context.get(key), dict):
            context[key] = {**context[key], **value}
        else:
            context[key] = value
    _replace(Path(run) / CONTEXT_FILE, json.dumps(_jsonable(context), indent=2) + "\n")


def set_aside_lost(run: Path) -> int:
    """Move the rows of lost cases from ``rows.jsonl`` to ``lost.jsonl``; how many moved.

    A lost row is an error row of a case that never returned because its node or Ray worker
    died (``lost`` is true): not a result of the case, so ``--resume`` runs it again. Moving
    it keeps one row per case in the run, and ``lost.jsonl`` keeps the record of the loss. Call
    before :meth:`RunWriter.reopen`: ``rows.jsonl`` is replaced by a new file.
    """
    path = Path(run) / ROWS_FILE
    if not path.is_file():
        return 0
    kept: list[bytes] = []
    lost: list[bytes] = []
    try:
        for _, line, ended in safe_json.lines(path):
            try:
                row = safe_json.loads(line)
            except safe_json.JSONProblem:
                row = None  # a bad or torn row stays where it is: loading or reopen() sees it
            (lost if isinstance(row, dict) and row.get("lost") is True else kept).append(
                line + b"\n" if ended else line)
    except safe_json.JSONProblem as exc:
        raise ResultsError(f"{path}: {exc}") from None
    if not lost:
        return 0
    # The record of the loss is on disk before the row leaves rows.jsonl.
    with open_to_write(Path(run) / LOST_FILE, append=True, binary=True) as fh:
        fh.writelines(line if line.endswith(b"\n") else line + b"\n" for line in lost)
        fh.flush()
        os.fsync(fh.fileno())
    _replace(path, b"".join(kept))
    return len(lost)


def lock_run(run: Path) -> BinaryIO:
    """Hold the run folder for this process: an exclusive lock on its :data:`LOCK_FILE`, kept
    until the returned file is closed or the process ends (however it ends). A
    :class:`ResultsError` when another process holds it: two runs appending to one folder
    would run its missing cases twice."""
    import fcntl

    path = Path(run) / LOCK_FILE
    try:  # never through a planted link
        handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644), "r+b")
    except OSError as exc:
        raise ResultsError(f"cannot lock {run} ({path}): {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = handle.read(32).decode(errors="replace").strip()
        handle.close()
        raise ResultsError(f"{run} is in use by another harness run (process {holder or '?'}): "
                           "let it finish, or stop it, before resuming") from None
    handle.truncate(0)
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle


class UnfinishedRunWarning(UserWarning):
    """A run folder's run did not finish: it was stopped, killed, or its process exited."""


def mark_finished(run: Path) -> None:
    """Record in the run's context that its run finished (``finished_at``). A harness run
    starts with ``finished_at`` null; one that stays null was stopped before its end."""
    update_context(run, {"finished_at": datetime.now(UTC).isoformat(timespec="seconds")})


def unfinished(run: Path) -> bool:
    """Whether the run folder records a run that did not finish (folders that record nothing,
    such as imports and older runs, are not taken for unfinished)."""
    try:
        context = read_context(Path(run))
    except (OSError, ValueError):  # an unreadable context is reported by whoever reads it
        return False
    return "finished_at" in context and context["finished_at"] is None


def run_folders(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Resolve run folders, results directories (every run inside) or ``rows.jsonl`` files;
    an :class:`UnfinishedRunWarning` for each run that did not finish."""
    for run in _run_folders(paths):
        if unfinished(run):
            warnings.warn(f"{run} did not finish (stopped, killed, or its process exited): "
                          f"cases may be missing; `harness run --resume {run}` runs them",
                          UnfinishedRunWarning, stacklevel=2)
        yield run


def _run_folders(paths: Iterable[str | Path]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_file() and path.name == ROWS_FILE:
            yield path.parent
        elif (path / ROWS_FILE).is_file():
            yield path
        elif path.is_dir():
            runs = sorted(p.parent for p in path.glob(f"*/{ROWS_FILE}"))
            if not runs:
                raise ResultsError(f"{path} holds no run folders (no */{ROWS_FILE})")
            yield from runs
        else:
            raise ResultsError(f"{path} is not a run folder, a results directory or {ROWS_FILE}")


class TornRowWarning(UserWarning):
    """The last line of a ``rows.jsonl`` was cut short (the run was killed while writing)."""


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    """A valid row with every column, as the writer stores it: an absent column is missing
    (None), and absent parameters are none ({})."""
    full = {column: row.get(column) for column in COLUMNS}
    full.update(row)
    if full["params"] is None:
        full["params"] = {}
    return full


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-empty line of a JSON-lines file in a run folder,
    read within :mod:`harness.safe_json`'s bounds. A torn last line (no newline, not JSON: the
    writer was killed mid-line) is skipped with a :class:`TornRowWarning`; any other line that
    is not JSON, or a file that cannot be read, is a :class:`ResultsError` naming file and line.
    """
    try:
        for number, line, ended in safe_json.lines(path):
            if not line.strip():
                continue
            try:
                value = safe_json.loads(line)
            except safe_json.JSONProblem as exc:
                if not ended:
                    warnings.warn(f"{path}:{number}: skipped a torn last row (the run was "
                                  "interrupted while writing it)", TornRowWarning, stacklevel=3)
                    continue
                raise ResultsError(f"{path}:{number} {exc}") from None
            yield number, value
    except safe_json.JSONProblem as exc:
        raise ResultsError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_rows(run: Path) -> list[dict[str, Any]]:
    """The rows of one run folder, in the order they were written.

    Each row has every column (see :func:`_complete`). A torn last line (a run killed
    mid-write: no newline, not JSON) is skipped with a :class:`TornRowWarning`. Anything else
    that is not a results row is a :class:`ResultsError` naming the file and line: a line that
    is not JSON, nests too deep or is longer than ``$HARNESS_MAX_ROW_BYTES``; a row without its
    case, adapter or status, or with a value of the wrong type for its column; a row from a
    newer schema than this harness knows.
    """
    path = Path(run) / ROWS_FILE
    rows = []
    for number, row in json_lines(path):
        schema = row.get("schema", SCHEMA) if isinstance(row, dict) else SCHEMA
        if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA:
            raise ResultsError(f"{path}:{number} was written with results schema {schema}; "
                               f"this harness reads up to schema {SCHEMA}: upgrade it")
        problem = row_problem(row)
        if problem is not None:
            raise ResultsError(f"{path}:{number}: {problem}")
        rows.append(_complete(row))
    return rows


#: context facts that readers use, and what each holds (any other key may hold anything).
_CONTEXT_KINDS = {
    **dict.fromkeys(("run_id", "started_at", "host", "os", "python", "python_implementation",
                     "cpu_model", "git_sha", "cwd", "source"), "text"),
    **dict.fromkeys(("cpu_physical_cores", "cpu_logical_cores", "memory_bytes", "schema"),
                    "count"),
    **dict.fromkeys(("config", "adapters", "hosts", "packages", "env"), "object"),
    "command": "list",
}


def read_context(run: Path) -> dict[str, Any]:
    """The run's ``context.json`` (host, versions, config), or an empty dict when absent; a
    :class:`ResultsError` naming the file when it is not a JSON object of the expected types."""
    path = Path(run) / CONTEXT_FILE
    if not path.is_file():
        return {}
    try:
        context = safe_json.read(path)
    except safe_json.JSONProblem as exc:
        raise ResultsError(f"{path} {exc}") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(context, dict):
        raise ResultsError(f"{path} is not a JSON object")
    for key, kind in _CONTEXT_KINDS.items():
        problem = value_problem(kind, context.get(key))
        if problem is not None:
            raise ResultsError(f"{path}: {key} {problem}")
    return context


def load(*paths: str | Path) -> pd.DataFrame:
    """Load run folders or results directories into one DataFrame, one row per result.

    Missing figures are NaN. JSON-valued columns (``params``, ``adapter_options``, ``missing``)
    stay JSON text; each parameter is also expanded into a ``param_<name>`` column.
    """
    import pandas as pd

    rows = [row for run in run_folders(paths) for row in read_rows(run)]
    frame = pd.DataFrame(rows)
    # All absent columns in one step: one insert per column fragments the frame (and warns).
    absent = [column for column in COLUMNS if column not in frame.columns]
    if absent:
        frame = pd.concat([frame, pd.DataFrame(None, index=frame.index, columns=absent,
                                               dtype=object)], axis=1)
    for column in JSON_COLUMNS:
        # A row without the column reads as NaN in the frame: keep it missing (None).
        frame[column] = [
            value if isinstance(value, str) else
            None if value is None or isinstance(value, float) else json.dumps(value)
            for value in frame[column]
        ]
    numeric = [c for c in COLUMNS if column_kind(c) in ("number", "count")
               and c not in ("schema", "repetition")]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce").astype(float)
    # A repetition is an index, never missing in effect: a row without one (an older or an
    # imported run) is the only pass, 0, as every reader of rows takes it.
    frame["repetition"] = pd.to_numeric(frame["repetition"]).fillna(0).astype("int64")
    params = [json.loads(p) if isinstance(p, str) and p else {} for p in frame["params"]]
    names = sorted({k for p in params for k in p})
    if names:  # in one step: a column at a time fragments the frame (a pandas warning)
        frame = pd.concat([frame, pd.DataFrame({f"param_{n}": [p.get(n) for p in params]
                                                for n in names}, index=frame.index)], axis=1)
    # One block per dtype: a caller adding columns later then draws no fragmentation warning.
    return frame.copy()


def export(run: Path, fmt: str, dest: Path | None = None) -> Path:
    """Write a run's rows as CSV or Parquet beside it (or at ``dest``); returns the path.

    Beside it, ``rows.csv`` or ``rows.parquet`` is never written through a symbolic link or
    into a FIFO found in its place (see :func:`open_to_write`)."""
    if fmt not in ("csv", "parquet"):
        raise ResultsError(f"unknown export format {fmt!r}; choose csv or parquet")
    frame = load(run)
    # Raw samples are a list per row: keep them as JSON text so every format can hold them.
    for column in SAMPLE_COLUMNS:
        frame[column] = [json.dumps(v) if isinstance(v, list) else None for v in frame[column]]
    write = frame.to_csv if fmt == "csv" else frame.to_parquet
    if dest is not None:
        write(dest, index=False)
        return dest
    dest = Path(run) / f"rows.{fmt}"
    with open_to_write(dest, binary=fmt == "parquet") as fh:
        write(fh, index=False)
    return dest
