"""Run folders: rows written durably, loaded back into a DataFrame with NaN for missing figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import harness
from harness.results import (
    COLUMNS,
    LOST_FILE,
    ROWS_FILE,
    SCHEMA,
    ResultsError,
    RunWriter,
    export,
    new_run_id,
    read_context,
    read_rows,
    set_aside_lost,
    update_context,
)


def row(case: str, median: float | None, **extra: object) -> dict[str, object]:
    return {
        "suite": "demo", "workload": "w", "case_id": case, "params": {"n": 1, "kind": "a"},
        "adapter": "cpu", "status": "ok", "latency_median_s": median, "samples_s": [1e-3, 2e-3],
        "energy_j": float("nan"), "energy_source": "unavailable: no RAPL",
        "missing": {"energy_j": "no RAPL"}, **extra,
    }


def write_run(results: Path, rows: list[dict[str, object]]) -> Path:
    writer = RunWriter(results, {"host": "test"})
    for r in rows:
        writer.append(r)
    writer.close()
    return writer.path


def test_round_trip_keeps_values_and_turns_missing_into_nan(tmp_path: Path) -> None:
    run = write_run(tmp_path, [row("a", 1.5e-3), row("b", None, correct=False)])
    frame = harness.load(run)
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert frame.case_id.tolist() == ["a", "b"]
    assert frame.latency_median_s[0] == pytest.approx(1.5e-3)
    assert math.isnan(frame.latency_median_s[1])
    assert math.isnan(frame.energy_j[0])
    assert frame.energy_source[0] == "unavailable: no RAPL"
    assert json.loads(frame.missing[0]) == {"energy_j": "no RAPL"}
    assert frame.samples_s[0] == [1e-3, 2e-3]
    assert frame.param_n.tolist() == [1, 1]
    assert (frame.schema == SCHEMA).all()
    assert (frame.run_id == run.name).all()


def test_repetition_loads_as_an_integer(tmp_path: Path) -> None:
    run = write_run(tmp_path, [row("a", 1e-3, repetition=2), row("b", 1e-3)])
    frame = harness.load(run)
    assert str(frame.repetition.dtype) == "int64"
    assert frame.repetition.tolist() == [2, 0]  # a row without one is the only pass


def test_rows_hit_the_disk_before_close(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, {})
    writer.append(row("a", 1e-3))
    # Not closed: a crash now must still leave the row readable.
    assert len(harness.load(writer.path)) == 1
    writer.close()


def test_nan_is_stored_as_null_never_as_invalid_json(tmp_path: Path) -> None:
    run = write_run(tmp_path, [row("a", float("nan"))])
    stored = json.loads((run / ROWS_FILE).read_text().splitlines()[0])
    assert stored["latency_median_s"] is None
    assert stored["energy_j"] is None


def test_context_is_written_once_with_run_id(tmp_path: Path) -> None:
    run = write_run(tmp_path, [])
    context = read_context(run)
    assert context["host"] == "test"
    assert context["run_id"] == run.name


def test_results_directory_loads_every_run(tmp_path: Path) -> None:
    write_run(tmp_path, [row("a", 1e-3)])
    write_run(tmp_path, [row("b", 2e-3), row("c", 3e-3)])
    frame = harness.load(tmp_path)
    assert sorted(frame.case_id) == ["a", "b", "c"]
    assert frame.run_id.nunique() == 2


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export(tmp_path: Path, fmt: str) -> None:
    run = write_run(tmp_path, [row("a", 1e-3)])
    path = export(run, fmt)
    back = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    assert back.case_id.tolist() == ["a"]
    assert back.latency_median_s[0] == pytest.approx(1e-3)
    assert json.loads(back.samples_s[0]) == [1e-3, 2e-3]


def test_unknown_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="not a run folder"):
        harness.load(tmp_path / "absent")
    with pytest.raises(ResultsError, match="holds no run folders"):
        harness.load(tmp_path)


def test_a_corrupt_row_before_the_last_names_the_line(tmp_path: Path) -> None:
    run = write_run(tmp_path, [row("a", 1e-3)])
    with open(run / ROWS_FILE, "a") as fh:
        fh.write("{not json\n" + json.dumps(row("b", 1e-3)) + "\n")
    with pytest.raises(ResultsError, match=f"{ROWS_FILE}:2 is not JSON"):
        harness.load(run)


def test_a_torn_last_row_is_skipped_with_a_warning(tmp_path: Path) -> None:
    from harness.results import RunWriter, TornRowWarning, read_rows

    run = write_run(tmp_path, [row("a", 1e-3), row("b", 2e-3)])
    data = (run / ROWS_FILE).read_bytes()
    (run / ROWS_FILE).write_bytes(data[:-40])  # killed while writing the second row
    with pytest.warns(TornRowWarning, match=f"{ROWS_FILE}:2: skipped a torn last row"):
        frame = harness.load(run)
    assert list(frame.case_id) == ["a"]
    writer = RunWriter.reopen(run)  # resuming cuts the torn tail before appending
    writer.append(row("b", 2e-3))
    writer.close()
    assert [r["case_id"] for r in read_rows(run)] == ["a", "b"]


def test_rows_from_a_newer_schema_are_a_clear_error(tmp_path: Path) -> None:
    run = write_run(tmp_path, [row("a", 1e-3)])
    newer = {**json.loads((run / ROWS_FILE).read_text()), "schema": 99}
    (run / ROWS_FILE).write_text(json.dumps(newer) + "\n")
    with pytest.raises(ResultsError, match="results schema 99; this harness reads up to "
                                           f"schema {SCHEMA}: upgrade it"):
        harness.load(run)


def test_run_ids_sort_by_time_and_differ() -> None:
    assert new_run_id() != new_run_id()
    assert len(new_run_id().split("-")) == 3


def test_rows_without_params_load_beside_rows_with_them(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "context.json").write_text("{}")
    least = '{"case_id": "w[n=1]", "adapter": "cpu", "status": "ok"'
    (run / ROWS_FILE).write_text(f'{least}}}\n{least}, "params": {{}}}}\n')  # by hypothesis
    frame = harness.load(run)
    assert len(frame) == 2 and list(frame.params) == ["{}", "{}"]  # no parameters: none
    assert pd.isna(frame.meta[0]) and pd.isna(frame.latency_median_s[0])


def test_lost_rows_move_aside_and_everything_else_stays(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, {"host": "box"})
    writer.append(row("a", 1e-3, host="box"))
    writer.append({**row("b", None, host="gpu-box"), "status": "error", "lost": True,
                   "message": "lost: node gpu-box (Ray node 1234abcd, 10.0.0.2) was lost"})
    writer.append(row("c", 2e-3, host="box"))
    writer.close()
    assert set_aside_lost(writer.path) == 1
    assert [r["case_id"] for r in read_rows(writer.path)] == ["a", "c"]
    (moved,) = (json.loads(line) for line in (writer.path / LOST_FILE).read_text().splitlines())
    assert moved["case_id"] == "b" and moved["message"].startswith("lost: node gpu-box")
    assert set_aside_lost(writer.path) == 0  # nothing left to move; the record stays
    assert len((writer.path / LOST_FILE).read_text().splitlines()) == 1
    frame = harness.load(writer.path)
    assert list(frame.host) == ["box", "box"] and frame.lost.isna().all()


def test_context_updates_merge_one_level_deep(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, {"host": "box", "hosts": {"n1": {"host": "a"}}})
    writer.close()
    update_context(writer.path, {"hosts": {"n2": {"host": "b"}}, "adapters": {"cpu": {}}})
    context = read_context(writer.path)
    assert context["hosts"] == {"n1": {"host": "a"}, "n2": {"host": "b"}}
    assert context["adapters"] == {"cpu": {}} and context["host"] == "box"
    assert context["run_id"] == writer.run_id
    assert not list(writer.path.glob("*.tmp"))


def test_schema_1_rows_load_with_the_load_columns_empty(tmp_path: Path) -> None:
    # A row written before the load scenarios (schema 1) is a timing-loop row: it loads, with
    # every load column missing.
    run = write_run(tmp_path, [row("a", 1e-3)])
    old = {k: v for k, v in json.loads((run / ROWS_FILE).read_text()).items()
           if k not in ("scenario", "qps", "peak_qps")}
    (run / ROWS_FILE).write_text(json.dumps({**old, "schema": 1}) + "\n")
    frame = harness.load(run)
    assert frame.schema.tolist() == [1]
    assert frame.scenario.isna().all() and frame.qps.isna().all()


def test_every_column_declares_what_it_holds() -> None:
    from harness.schema import column_kind

    assert {c: column_kind(c) for c in COLUMNS if column_kind(c) == "any"} == {}
    assert column_kind("latency_median_s") == "number" and column_kind("samples_s") == "samples"
    assert column_kind("status") == "text" and column_kind("a_column_of_a_plugin") == "any"


def test_what_the_writer_stores_the_loader_accepts(tmp_path: Path) -> None:
    import numpy as np

    from harness.results import stored
    from harness.schema import row_problem

    full = stored(row("a", float(np.float32(1e-3)), n_samples=np.int64(6),
                      peak_fraction=np.float32(0.5), correct=np.bool_(True)))
    assert row_problem(full) is None
    assert full["n_samples"] == 6 and full["correct"] is True and full["energy_j"] is None
    run = write_run(tmp_path, [dict(full)])
    assert read_rows(run)[0]["n_samples"] == 6


@pytest.mark.parametrize("text, message", [
    ("{oops", "context.json is not JSON"), ("[]", "context.json is not a JSON object"),
    ('{"command": "harness run"}', "command is not a list"),
    ('{"memory_bytes": -1}', "memory_bytes is not a whole number >= 0: -1"),
])
def test_a_corrupt_context_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    run = write_run(tmp_path, [row("a", 1e-3)])
    (run / "context.json").write_text(text)
    with pytest.raises(ResultsError, match=message):
        read_context(run)
