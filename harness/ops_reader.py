"""Reading a run's operator table, ``<run>/ops.jsonl`` (one JSON object per run, case, adapter
label, repetition and operator; per-call seconds), for the report and ``harness compare``.

A stand-in until ``harness.profiling.ops.read_ops`` exists: it reads the same file with the same
columns and nothing else, so that callers switch by changing one import.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.results import ResultsError

OPS_FILE = "ops.jsonl"
#: columns a reader relies on; rows lacking one are a fault of the file, not a missing figure.
REQUIRED = ("case_id", "adapter", "op", "category", "self_time_s")


def read_ops(run: Path) -> list[dict[str, Any]]:
    """The operator rows of one run folder (``[]`` when it was not profiled). Missing figures
    (null) read as NaN; a torn last line (a run killed while writing) is skipped."""
    path = Path(run) / OPS_FILE
    if not path.is_file():
        return []
    try:
        numbered = [(n, line) for n, line in enumerate(
            path.read_text(encoding="utf-8").splitlines(), 1) if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read {path}: {exc}") from None
    rows = []
    for number, line in numbered:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == numbered[-1][0]:  # torn by a run killed mid-write
                break
            raise ResultsError(f"{path}:{number} is not a JSON row") from None
        if not isinstance(row, dict) or any(column not in row for column in REQUIRED):
            raise ResultsError(f"{path}:{number}: an operator row needs "
                               f"{', '.join(REQUIRED)}")
        row.setdefault("run_id", Path(run).name)
        row["repetition"] = int(row.get("repetition") or 0)
        for column in ("calls", "self_time_s", "share", "flops", "bytes"):
            value = row.get(column)
            row[column] = (float(value) if isinstance(value, int | float)
                           and not isinstance(value, bool) else math.nan)
        rows.append(row)
    return rows
