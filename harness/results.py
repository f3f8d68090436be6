"""Run folders: ``context.json`` written once, ``rows.jsonl`` appended per result; and loading."""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import warnings
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: 2 added the load-scenario columns (``scenario`` … ``peak_qps``); rows of schema 1 load with
#: them empty (a schema-1 row is a timing-loop row).
SCHEMA = 2
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
    "call_latency_p99_s", "speedup", "speedup_ci_low", "speedup_ci_high", "speedup_reference",
    "interleaved",
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
    "meta", "missing", "started_at", "samples_s",
)

#: Columns whose values are JSON objects, kept as JSON text in tables so they stay hashable.
JSON_COLUMNS = ("params", "adapter_options", "meta", "missing")


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class ResultsError(ValueError):
    """A results path does not exist or does not hold a run."""


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC time to the second plus random bits."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _jsonable(value: Any) -> Any:
    """NaN is not JSON: missing figures are stored as null and read back as NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


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
        self._rows = open(self.path / ROWS_FILE, "a", encoding="utf-8")  # noqa: SIM115

    @classmethod
    def reopen(cls, run: Path) -> RunWriter:
        """Append to an existing run folder (a repetition's worker, or a resumed run)."""
        run = Path(run)
        if not (run / CONTEXT_FILE).is_file():
            raise ResultsError(f"{run} is not a run folder (no {CONTEXT_FILE})")
        rows = run / ROWS_FILE
        if rows.is_file():
            data = rows.read_bytes()
            if data and not data.endswith(b"\n"):
                # A torn last row (the run was killed mid-write): cut it, so that the next row
                # starts on a line of its own.
                with open(rows, "r+b") as fh:
                    fh.truncate(data.rfind(b"\n") + 1)
        writer = cls.__new__(cls)
        writer.run_id, writer.path = run.name, run
        writer._rows = open(rows, "a", encoding="utf-8")  # noqa: SIM115
        return writer

    def append(self, row: dict[str, Any]) -> None:
        """Write one row and flush it to disk at once, so a crash loses no finished result."""
        full = {column: row.get(column) for column in COLUMNS}
        full.update(schema=SCHEMA, run_id=self.run_id)
        extra = {k: v for k, v in row.items() if k not in full}
        full.update(extra)
        self._rows.write(json.dumps(_jsonable(full), allow_nan=False, default=str) + "\n")
        self._rows.flush()
        os.fsync(self._rows.fileno())

    def close(self) -> None:
        self._rows.close()


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, synced, then renamed."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
    kept: list[str] = []
    lost: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None  # a torn row stays where it is: reopen() cuts it
        (lost if isinstance(row, dict) and row.get("lost") is True else kept).append(line)
    if not lost:
        return 0
    # The record of the loss is on disk before the row leaves rows.jsonl.
    with open(Path(run) / LOST_FILE, "a", encoding="utf-8") as fh:
        fh.writelines(line if line.endswith("\n") else line + "\n" for line in lost)
        fh.flush()
        os.fsync(fh.fileno())
    _replace(path, "".join(kept))
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


def read_rows(run: Path) -> list[dict[str, Any]]:
    """The rows of one run folder, in the order they were written.

    A torn last line (a run killed mid-write) is skipped with a :class:`TornRowWarning`; a bad
    line anywhere else, or a row from a newer schema than this harness knows, is an error.
    """
    path = Path(run) / ROWS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from None
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if index == last:
                warnings.warn(f"{path}:{index + 1}: skipped a torn last row (the run was "
                              "interrupted while writing it)", TornRowWarning, stacklevel=2)
                continue
            raise ResultsError(f"{path}:{index + 1} is not a JSON row") from None
        if not isinstance(row, dict):
            raise ResultsError(f"{path}:{index + 1} is not a JSON object")
        schema = row.get("schema", SCHEMA)
        if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
            raise ResultsError(f"{path}:{index + 1} has an invalid schema version {schema!r}")
        for column, kind, name in (("params", dict, "an object"), ("meta", dict, "an object"),
                                   ("missing", dict, "an object"), ("samples_s", list, "a list"),
                                   ("adapter_options", dict, "an object")):
            if row.get(column) is not None and not isinstance(row[column], kind):
                raise ResultsError(f"{path}:{index + 1}: {column} is not {name}")
        if schema > SCHEMA:
            raise ResultsError(f"{path}:{index + 1} was written with results schema {schema}; "
                               f"this harness reads up to schema {SCHEMA}: upgrade it")
        rows.append(row)
    return rows


def read_context(run: Path) -> dict[str, Any]:
    """The run's ``context.json`` (host, versions, config), or an empty dict when absent."""
    path = run / CONTEXT_FILE
    if not path.is_file():
        return {}
    context = json.loads(path.read_text(encoding="utf-8"))
    return context if isinstance(context, dict) else {}


def load(*paths: str | Path) -> pd.DataFrame:
    """Load run folders or results directories into one DataFrame, one row per result.

    Missing figures are NaN. JSON-valued columns (``params``, ``adapter_options``, ``missing``)
    stay JSON text; each parameter is also expanded into a ``param_<name>`` column.
    """
    import pandas as pd

    rows = [row for run in run_folders(paths) for row in read_rows(run)]
    frame = pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    for column in JSON_COLUMNS:
        # A row without the column reads as NaN in the frame: keep it missing (None).
        frame[column] = [
            value if isinstance(value, str) else
            None if value is None or isinstance(value, float) else json.dumps(value)
            for value in frame[column]
        ]
    numeric = [c for c in COLUMNS if c.endswith(("_s", "_j", "_w", "_bytes", "_per_s"))
               and c != "samples_s"] + ["flops", "bytes", "n_samples", "loops", "items",
                                        "arithmetic_intensity", "peak_fraction", "qps",
                                        "achieved_qps", "over_bound_fraction", "queries",
                                        "dropped_queries", "max_batch", "mean_batch",
                                        "peak_qps"]
    numeric.append("repetition")
    for column in numeric:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    params = [json.loads(p) if isinstance(p, str) and p else {} for p in frame["params"]]
    for name in sorted({k for p in params for k in p}):
        frame[f"param_{name}"] = [p.get(name) for p in params]
    return frame


def export(run: Path, fmt: str, dest: Path | None = None) -> Path:
    """Write a run's rows as CSV or Parquet beside it (or at ``dest``); returns the path."""
    frame = load(run)
    # Raw samples are a list per row: keep them as JSON text so every format can hold them.
    frame["samples_s"] = [json.dumps(v) if isinstance(v, list) else None for v in frame.samples_s]
    if fmt == "csv":
        dest = dest or run / "rows.csv"
        frame.to_csv(dest, index=False)
    elif fmt == "parquet":
        dest = dest or run / "rows.parquet"
        frame.to_parquet(dest, index=False)
    else:
        raise ResultsError(f"unknown export format {fmt!r}; choose csv or parquet")
    return dest
