"""ops.jsonl: written beside rows by whoever writes the run, read back, loaded as a frame."""

from __future__ import annotations

import base64
import gzip
import json
import math
from pathlib import Path

import pytest

import harness
from harness.profiling.ops import (
    OPS_COLUMNS,
    OPS_FILE,
    OPS_MEANING,
    PROFILE_KEY,
    pack_trace,
    read_ops,
    store,
    trace_name,
)
from harness.results import ResultsError, RunWriter, read_rows


def op_row(op: str, share: float) -> dict[str, object]:
    return {"case_id": "s/w[n=1]", "adapter": "cpu:threads=1", "repetition": 0, "phase": "",
            "op": op, "category": "matmul", "calls": 2.0, "self_time_s": share * 1e-3,
            "share": share, "flops": float("nan"), "flops_source": "", "bytes": float("nan"),
            "provider": "cpu"}


def test_every_column_is_documented() -> None:
    assert set(OPS_MEANING) == set(OPS_COLUMNS)


def test_trace_names_are_safe_file_names() -> None:
    name = trace_name("transformer/bert[size=base,seq=128]", "cpu:threads=1")
    assert name == "traces/transformer_bert_size=base_seq=128--cpu_threads=1.json.gz"
    assert trace_name("a/b", "cpu", repetition=2).endswith("--r2.json.gz")
    assert "/" not in trace_name("../../x", "../y").removeprefix("traces/")


def test_store_writes_ops_and_trace_and_takes_them_out_of_the_row(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, {})
    trace = {"traceEvents": [{"ph": "X", "name": "op", "ts": 0, "dur": 1}]}
    row = {"case_id": "s/w[n=1]", "adapter": "cpu", "adapter_label": "cpu:threads=1",
           "status": "ok",
           "profile_trace": trace_name("s/w[n=1]", "cpu:threads=1"),
           PROFILE_KEY: {"ops": [op_row("aten::mm", 0.75)], "trace": pack_trace(trace)}}
    store(row, writer.path, writer.run_id)
    writer.append(row)
    writer.close()
    assert PROFILE_KEY not in row and PROFILE_KEY not in read_rows(writer.path)[0]
    (written,) = read_ops(writer.path)
    assert list(written) == list(OPS_COLUMNS) and written["run_id"] == writer.run_id
    assert math.isnan(written["flops"])  # stored as null, read back as NaN
    stored = json.loads(gzip.decompress((writer.path / row["profile_trace"]).read_bytes()))
    assert stored == trace


def test_a_trace_that_cannot_be_written_empties_the_column_with_the_reason(
        tmp_path: Path) -> None:
    (tmp_path / "traces").write_text("a file where the folder should be")
    row = {"profile_trace": "traces/x.json.gz", "missing": {},
           PROFILE_KEY: {"ops": [], "trace": base64.b64encode(b"x").decode()}}
    store(row, tmp_path, "run")
    assert row["profile_trace"] is None and "could not be written" in row["missing"][
        "profile_trace"]


def test_load_ops_gives_a_frame_with_the_schema(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, {})
    store({PROFILE_KEY: {"ops": [op_row("aten::mm", 0.75), op_row("aten::add", 0.25)]}},
          writer.path, writer.run_id)
    writer.close()
    frame = harness.load_ops(tmp_path)
    assert list(frame.columns) == list(OPS_COLUMNS) and len(frame) == 2
    assert frame.share.sum() == pytest.approx(1.0) and math.isnan(frame.flops.iloc[0])


def test_an_unprofiled_run_loads_an_empty_frame_with_the_columns(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, {})
    writer.append({"case_id": "s/w[n=1]", "adapter": "cpu", "status": "ok"})
    writer.close()
    frame = harness.load_ops(writer.path)
    assert frame.empty and list(frame.columns) == list(OPS_COLUMNS)


def test_a_bad_line_is_an_error_naming_it(tmp_path: Path) -> None:
    good = json.dumps({**op_row("aten::mm", 0.5), "flops": None, "bytes": None})
    (tmp_path / OPS_FILE).write_text(f"{good}\nnot json\n{good}\n")
    with pytest.raises(ResultsError, match=r"ops.jsonl:2"):
        read_ops(tmp_path)
