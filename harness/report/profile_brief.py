"""A profiled run's brief in the terminal: one line per profiled case and adapter (per-call
wall time, coverage, overhead, the largest categories) and where the traces are."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.profiling.ops import TRACES_DIR, read_ops
from harness.report.units import seconds

TOP = 4


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def brief(rows: list[dict[str, Any]], run_dir: Path) -> str:
    """The lines for ``rows`` of the run folder ``run_dir`` (its ``ops.jsonl`` is read)."""
    shares: dict[tuple[str, str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for op in read_ops(run_dir):
        key = (str(op.get("case_id")), str(op.get("adapter")), int(op.get("repetition") or 0))
        shares[key][str(op.get("category"))] += _number(op.get("share")) or 0.0
    lines = ["", "where the time goes (--profile; share of each profiled call's wall time):"]
    for row in rows:
        key = (str(row.get("case_id")), str(row.get("adapter_label")),
               int(row.get("repetition") or 0))
        label = f"  {key[0]}  {key[1]}" + (f"  rep {key[2]}" if key[2] else "")
        if key not in shares:
            reason = (row.get("missing") or {}).get("profiler") or row.get("message") or \
                (f"not profiled ({row.get('status')})" if row.get("status") != "ok" else
                 "no operators recorded")
            lines.append(f"{label}: {reason}")
            continue
        top = sorted(shares[key].items(), key=lambda item: -item[1])[:TOP]
        parts = "  ".join(f"{category} {share:.0%}" for category, share in top)
        wall, coverage = _number(row.get("profile_wall_s")), _number(row.get("profile_coverage"))
        overhead = _number(row.get("profile_overhead"))
        lines.append(f"{label}: {seconds(wall)}/call profiled ({row.get('profiler')}), "
                     f"coverage {coverage:.0%}, overhead {overhead:.2f}x | {parts}")
    traces = Path(run_dir) / TRACES_DIR
    if traces.is_dir():
        lines.append(f"traces: {traces}/ (Chrome trace format: open in ui.perfetto.dev)")
    lines.append(f"operators: {Path(run_dir) / 'ops.jsonl'} (harness.load_ops)")
    return "\n".join(lines)
