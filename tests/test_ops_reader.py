"""The stand-in reader of ``ops.jsonl`` (until ``harness.profiling.ops.read_ops`` lands): figures
as floats with unknown ones NaN, a torn last line skipped, any other bad line a clear error."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.ops_reader import OPS_FILE, read_ops
from harness.results import ResultsError
from tests.report.test_profile import profiled_run


def test_read_ops_reads_figures_and_skips_only_a_torn_last_line(tmp_path: Path) -> None:
    run = profiled_run(tmp_path)
    ops = read_ops(run)
    assert len(ops) == 4 + 4 + 3 + 4
    assert ops[0]["run_id"] == run.name and ops[0]["self_time_s"] == pytest.approx(1.2e-3)
    assert math.isnan(ops[1]["flops"])  # null: not known, never 0
    with open(run / OPS_FILE, "a", encoding="utf-8") as fh:
        fh.write('{"case_id": "x", "adap')
    assert len(read_ops(run)) == 15
    (run / OPS_FILE).write_text('{"case_id": "x"}\nnot json\n{}\n', encoding="utf-8")
    with pytest.raises(ResultsError, match=r":1: an operator row needs case_id, adapter"):
        read_ops(run)
    (run / OPS_FILE).write_text("not json\n{}\n", encoding="utf-8")
    with pytest.raises(ResultsError, match=r":1 is not a JSON row"):
        read_ops(run)
    assert read_ops(tmp_path / "unprofiled") == []
