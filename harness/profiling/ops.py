"""The operator table of profiled runs: ``<run_dir>/ops.jsonl`` and its traces.

One JSON object per line and per (run, case, adapter, repetition, op); every time and count is
per call of the case, in SI units. The profiling pass builds the rows in the process that ran
the case, and hands them with the trace to whichever process writes the run folder
(:func:`store`, called by :meth:`harness.results.RunWriter.append`), so isolated workers and
cluster nodes need no access to the run folder.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

OPS_FILE = "ops.jsonl"
TRACES_DIR = "traces"
#: The key under which a profiled row carries its ops and trace to the writer; never stored.
PROFILE_KEY = "_profile"

#: The columns of ``ops.jsonl``, in order.
OPS_COLUMNS: tuple[str, ...] = (
    "run_id", "case_id", "adapter", "repetition", "phase", "op", "category", "calls",
    "self_time_s", "share", "flops", "flops_source", "bytes", "provider",
)
#: Column → its meaning (the documentation of the schema).
OPS_MEANING: dict[str, str] = {
    "run_id": "the run folder's name",
    "case_id": "the case, as in rows.jsonl",
    "adapter": "the adapter label (rows' adapter_label)",
    "repetition": "the repetition, as in rows.jsonl",
    "phase": '"" normally; "prefill"/"decode" for generation tasks',
    "op": "the profiler's own name for the operator",
    "category": "where the time goes (harness.profiling.categories.CATEGORIES)",
    "calls": "calls of this op per case call",
    "self_time_s": "wall time attributed to the op per case call (self time; split evenly "
                   "with ops running at the same time on other threads)",
    "share": "self_time_s ÷ the profiled wall time per case call",
    "flops": "floating-point operations per case call, where known",
    "flops_source": "where the FLOP figure comes from, or empty",
    "bytes": "bytes moved per case call, where known",
    "provider": "execution provider or device, where known",
}
UNATTRIBUTED = "(unattributed)"
NUMERIC = ("repetition", "calls", "self_time_s", "share", "flops", "bytes")


def trace_name(case_id: str, adapter: str, repetition: int = 0) -> str:
    """The trace's path relative to the run folder: ``traces/<case>--<adapter>.json.gz``
    (characters a file name cannot hold become ``_``; repetitions after the first get
    ``--r<k>``)."""
    def safe(text: str) -> str:
        return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_") or "_"

    suffix = f"--r{repetition}" if repetition else ""
    return f"{TRACES_DIR}/{safe(case_id)}--{safe(adapter)}{suffix}.json.gz"


def pack_trace(trace: dict[str, Any]) -> str:
    """A Chrome trace as gzip-compressed JSON in base64 text: small enough to travel in a
    worker's JSON result, and written byte for byte as the ``.json.gz`` file."""
    data = json.dumps(trace, separators=(",", ":"), default=str).encode()
    return base64.b64encode(gzip.compress(data, compresslevel=6)).decode("ascii")


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_ops(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Append operator rows to ``<run_dir>/ops.jsonl`` (columns in schema order), durably."""
    if not rows:
        return
    with open(Path(run_dir) / OPS_FILE, "a", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({c: _clean(row.get(c)) for c in OPS_COLUMNS},
                                allow_nan=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def store(row: dict[str, Any], run_dir: Path, run_id: str) -> None:
    """Take a profiled row's ops and trace out of it (:data:`PROFILE_KEY`) and write them under
    ``run_dir``: the ops into ``ops.jsonl`` (with ``run_id``), the trace to the row's
    ``profile_trace`` path. A trace that cannot be written empties ``profile_trace`` with the
    reason; the row itself is always kept."""
    payload = row.pop(PROFILE_KEY, None)
    if not isinstance(payload, dict):
        return
    write_ops(run_dir, [{**op, "run_id": run_id} for op in payload.get("ops") or []])
    packed, relative = payload.get("trace"), row.get("profile_trace")
    if not packed or not relative:
        return
    try:
        path = Path(run_dir) / relative
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(base64.b64decode(packed))
    except (OSError, ValueError) as exc:
        row["profile_trace"] = None
        missing = row.setdefault("missing", {})
        if isinstance(missing, dict):
            missing["profile_trace"] = f"the trace could not be written: {exc}"


#: columns a reader relies on; rows lacking one are a fault of the file, not a missing figure.
REQUIRED = ("case_id", "adapter", "op", "category", "self_time_s")


def read_ops(run_dir: Path) -> list[dict[str, Any]]:
    """The operator rows of one run folder (``[]`` when it was not profiled), every line read
    with the results loader's bounds; missing figures (null) read as NaN, and a torn last line
    (a run killed while writing it) is skipped. Anything else that is not an operator row is a
    :class:`~harness.results.ResultsError` naming the file and line."""
    from harness.results import ResultsError, json_lines

    path = Path(run_dir) / OPS_FILE
    if not path.is_file():
        return []
    rows = []
    for number, row in json_lines(path):
        if not isinstance(row, dict) or any(column not in row for column in REQUIRED):
            raise ResultsError(f"{path}:{number}: an operator row needs {', '.join(REQUIRED)}")
        row.setdefault("run_id", Path(run_dir).name)
        repetition = row.get("repetition")
        row["repetition"] = repetition if isinstance(repetition, int) else 0
        for column in ("calls", "self_time_s", "share", "flops", "bytes"):
            value = row.get(column)
            row[column] = (float(value) if isinstance(value, int | float)
                           and not isinstance(value, bool) else math.nan)
        rows.append(row)
    return rows


def load_ops(*paths: str | Path) -> pd.DataFrame:
    """Load the operator tables of run folders or results directories into one DataFrame, one
    row per (run, case, adapter, repetition, op); unknown figures are NaN."""
    import pandas as pd

    from harness.results import run_folders

    rows = [row for run in run_folders(paths) for row in read_ops(run)]
    frame = pd.DataFrame(rows, columns=list(OPS_COLUMNS) if not rows else None)
    for column in OPS_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame
