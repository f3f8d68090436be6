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
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from harness import safe_json

if TYPE_CHECKING:
    import pandas as pd

#: 2 added the load-scenario columns (``scenario`` … ``peak_qps``); rows of schema 1 load with
#: them empty (a schema-1 row is a timing-loop row). 3 added the generation columns (``ttft_s``
#: … ``decode_peak_fraction``, ``token_samples_s``); older rows load with them empty. 4 added
#: generation under load (``ttft_bound_s`` … ``tpot_over_bound_fraction``, ``ttft_samples_s``,
#: ``tpot_samples_s``).
SCHEMA = 4
CONTEXT_FILE = "context.json"
ROWS_FILE = "rows.jsonl"
#: rows of cases that never returned (``lost``), moved aside when a run is resumed.
LOST_FILE = "lost.jsonl"

#: Every row carries these columns, in this order; units are in the names (SI).
COLUMNS: tuple[str, ...] = (
    "schema", "run_id", "suite", "workload", "case_id", "params", "adapter", "adapter_label",
    "adapter_options", "device", "host", "repetition", "variant", "status", "message", "lost",
    "correct", "output_varies", "n_samples", "loops", "first_call_s", "warmup_s", "warmup_steady",
    "sampling_s",
    "latency_median_s", "latency_ci_low_s", "latency_ci_high_s", "latency_iqr_s",
    "latency_mean_s", "latency_std_s", "latency_min_s", "latency_max_s",
    "latency_p90_s", "latency_p99_s", "p90_low_confidence", "p99_low_confidence",
    "latency_kind", "call_latency_median_s", "call_latency_ci_low_s", "call_latency_ci_high_s",
    "call_latency_p99_s",
    "items", "throughput_items_per_s", "flops", "bytes",
    "achieved_flops_per_s", "achieved_bytes_per_s", "arithmetic_intensity",
    "peak_flops_per_s", "peak_bytes_per_s", "peak_fraction", "roofline_bound", "peak_source",
    "footprint_bytes",
    "peak_rss_bytes", "peak_rss_source", "peak_device_bytes", "peak_device_reserved_bytes",
    "device_memory_used_bytes", "compile_s",
    "energy_j", "energy_net_j", "idle_power_w", "mean_power_w",
    "energy_per_item_j", "energy_net_per_item_j", "energy_source",
    "sm_clock_start_mhz", "sm_clock_end_mhz", "temperature_start_c", "temperature_end_c",
    "throttle_reasons", "throttle_power_s", "throttle_thermal_s",
    "energy_uncertainty_j", "energy_net_uncertainty_j",
    "scenario", "load_rule", "qps", "achieved_qps", "latency_bound_s", "over_bound_fraction",
    "generator_lag_s", "early_stop_latency_s", "queries", "dropped_queries", "max_batch",
    "mean_batch", "batch_timeout_s", "load_valid", "loadgen_valid", "meets_bound",
    "peak_search", "peak_qps",
    "ttft_s", "ttft_ci_low_s", "ttft_ci_high_s", "ttft_p90_s", "ttft_p99_s",
    "tpot_s", "tpot_ci_low_s", "tpot_ci_high_s", "tpot_p90_s", "tpot_p99_s",
    "decode_tokens_per_s", "e2e_s", "generate_calls", "token_agreement",
    "prefill_flops", "prefill_bytes", "decode_flops", "decode_bytes",
    "prefill_peak_fraction", "decode_peak_fraction",
    "ttft_bound_s", "tpot_bound_s", "ttft_over_bound_fraction", "tpot_over_bound_fraction",
    "meta", "missing", "started_at", "samples_s", "token_samples_s",
    "ttft_samples_s", "tpot_samples_s",
)
#: Columns holding lists of samples rather than one figure.
SAMPLE_COLUMNS = ("samples_s", "token_samples_s", "ttft_samples_s", "tpot_samples_s")

#: Columns whose values are JSON objects, kept as JSON text in tables so they stay hashable.
JSON_COLUMNS = ("params", "adapter_options", "meta", "missing")

#: What each column holds; every value may also be null (missing). ``text``: a string; ``flag``:
#: true or false; ``count``: a whole number >= 0; ``number``: a finite number; ``object``: a JSON
#: object; ``samples``: a list of numbers. Columns not named here follow their unit suffix.
_KINDS = {
    **dict.fromkeys(("run_id", "suite", "workload", "case_id", "adapter", "adapter_label",
                     "device", "host", "variant", "status", "message", "roofline_bound",
                     "peak_source", "peak_rss_source", "energy_source", "throttle_reasons",
                     "scenario", "load_rule", "peak_search", "started_at", "latency_kind"),
                    "text"),
    **dict.fromkeys(("lost", "correct", "output_varies", "warmup_steady", "p90_low_confidence",
                     "p99_low_confidence", "load_valid", "loadgen_valid", "meets_bound"),
                    "flag"),
    **dict.fromkeys(("schema", "repetition", "n_samples", "loops", "items", "queries",
                     "dropped_queries", "max_batch", "generate_calls"), "count"),
    **dict.fromkeys(("flops", "bytes", "arithmetic_intensity", "peak_fraction", "qps",
                     "achieved_qps", "over_bound_fraction", "mean_batch", "peak_qps",
                     "token_agreement", "prefill_flops", "decode_flops",
                     "prefill_peak_fraction", "decode_peak_fraction",
                     "ttft_over_bound_fraction", "tpot_over_bound_fraction"), "number"),
    **dict.fromkeys(JSON_COLUMNS, "object"),
    #: per query: its latency; under load, its time to first token and per output token
    **dict.fromkeys(("samples_s", "ttft_samples_s", "tpot_samples_s"), "samples"),
    #: per call, the seconds of each output token
    "token_samples_s": "sample_lists",
}
_UNITS = ("_s", "_j", "_w", "_bytes", "_per_s", "_mhz", "_c")
#: the statuses a row can have, and the columns every row must fill.
STATUSES = ("ok", "error", "skipped")
REQUIRED = ("case_id", "adapter", "status")


def column_kind(column: str) -> str:
    """What ``column`` holds (see ``_KINDS``); ``any`` for a column outside :data:`COLUMNS`."""
    if column in _KINDS:
        return _KINDS[column]
    return "number" if column in COLUMNS and column.endswith(_UNITS) else "any"


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _fits(kind: str, value: Any) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "flag":
        return isinstance(value, bool)
    if kind == "number":
        return _finite(value)
    if kind == "count":
        return _finite(value) and value >= 0 and float(value).is_integer()
    if kind == "object":
        return isinstance(value, dict)
    if kind == "samples":
        return isinstance(value, list) and all(v is None or _finite(v) for v in value)
    if kind == "sample_lists":
        return isinstance(value, list) and all(_fits("samples", v) for v in value)
    return True


_EXPECTED = {"text": "a string", "flag": "true or false", "count": "a whole number >= 0",
             "number": "a finite number", "object": "a JSON object",
             "samples": "a list of numbers", "sample_lists": "a list of lists of numbers"}


def row_problem(row: Any) -> str | None:
    """What makes ``row`` not a results row (a missing key, a value of the wrong type), in
    words; None when it is one."""
    if not isinstance(row, dict):
        return "is not a JSON object"
    for column in REQUIRED:
        if row.get(column) is None or row[column] == "":
            return f"has no {column}"
        if not isinstance(row[column], str):
            return f"{column} is not a string: {_shown(row[column])}"
    if row["status"] not in STATUSES:
        return f"status is {_shown(row['status'])}, not one of {', '.join(STATUSES)}"
    for column, value in row.items():
        kind = column_kind(column)
        if value is not None and not _fits(kind, value):
            return f"{column} is not {_EXPECTED[kind]}: {_shown(value)}"
    if row.get("schema") == 0:
        return "schema is 0: versions start at 1"
    return None


def _shown(value: Any) -> str:
    """A value in an error message: JSON, cut short, so a huge value stays one short line."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


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
        self._rows = open_to_write(self.path / ROWS_FILE, append=True)

    @classmethod
    def reopen(cls, run: Path) -> RunWriter:
        """Append to an existing run folder (a repetition's worker, or a resumed run)."""
        run = Path(run)
        if not (run / CONTEXT_FILE).is_file():
            raise ResultsError(f"{run} is not a run folder (no {CONTEXT_FILE})")
        writer = cls.__new__(cls)
        writer.run_id, writer.path = run.name, run
        writer._rows = open_to_write(run / ROWS_FILE, append=True)
        _cut_torn_tail(writer._rows.fileno())
        return writer

    def append(self, row: dict[str, Any]) -> None:
        """Write one row and flush it to disk at once, so a crash loses no finished result."""
        full = stored({**row, "run_id": self.run_id})
        self._rows.write(json.dumps(full, allow_nan=False, default=str) + "\n")
        self._rows.flush()
        os.fsync(self._rows.fileno())

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


def run_folders(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Resolve run folders, results directories (every run inside) or ``rows.jsonl`` files."""
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
    try:
        for number, line, ended in safe_json.lines(path):
            if not line.strip():
                continue
            try:
                row = safe_json.loads(line)
            except safe_json.JSONProblem as exc:
                if not ended:
                    warnings.warn(f"{path}:{number}: skipped a torn last row (the run was "
                                  "interrupted while writing it)", TornRowWarning, stacklevel=2)
                    continue
                raise ResultsError(f"{path}:{number} {exc}") from None
            schema = row.get("schema", SCHEMA) if isinstance(row, dict) else SCHEMA
            if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA:
                raise ResultsError(f"{path}:{number} was written with results schema {schema}; "
                                   f"this harness reads up to schema {SCHEMA}: upgrade it")
            problem = row_problem(row)
            if problem is not None:
                raise ResultsError(f"{path}:{number}: {problem}")
            rows.append(_complete(row))
    except safe_json.JSONProblem as exc:
        raise ResultsError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
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
        value = context.get(key)
        fits = isinstance(value, list) if kind == "list" else _fits(kind, value)
        if value is not None and not fits:
            raise ResultsError(f"{path}: {key} is not {_EXPECTED.get(kind, 'a list')}: "
                               f"{_shown(value)}")
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
    numeric = [c for c in COLUMNS if column_kind(c) in ("number", "count") and c != "schema"]
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    params = [json.loads(p) if isinstance(p, str) and p else {} for p in frame["params"]]
    names = sorted({k for p in params for k in p})
    if names:  # in one step: a column at a time fragments the frame (a pandas warning)
        frame = pd.concat([frame, pd.DataFrame({f"param_{n}": [p.get(n) for p in params]
                                                for n in names}, index=frame.index)], axis=1)
    return frame


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
