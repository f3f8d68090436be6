"""Files that are not what they seem: a symbolic link or a FIFO planted in a run folder or in
place of the baselines folder is never written or deleted through, nor copied as its target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import baselines
from harness.cli import main
from harness.results import (
    CONTEXT_FILE,
    LOST_FILE,
    ROWS_FILE,
    ResultsError,
    RunWriter,
    set_aside_lost,
    update_context,
)

ROW = {"suite": "s", "case_id": "s/w", "adapter": "cpu", "status": "ok",
       "latency_median_s": 1e-3}


def a_run(results: Path, *rows: dict[str, object]) -> Path:
    writer = RunWriter(results, {"host": "test"})
    for row in rows or (ROW,):
        writer.append(row)
    writer.close()
    return writer.path


def a_victim(tmp_path: Path) -> Path:
    """A file of the user's that a planted link points at; it must come out unchanged."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    return victim


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_refuses_a_link_planted_where_it_writes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str) -> None:
    run, victim = a_run(tmp_path / "results"), a_victim(tmp_path)
    (run / f"rows.{fmt}").symlink_to(victim)
    assert main(["export", str(run), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert f"rows.{fmt} is a symbolic link: refusing to write through it" in err
    assert err.count("\n") == 1 and victim.read_text() == "precious\n"


def test_export_refuses_a_fifo_planted_where_it_writes_instead_of_hanging(
        tmp_path: Path) -> None:
    run = a_run(tmp_path / "results")
    os.mkfifo(run / "rows.csv")
    result = subprocess.run([sys.executable, "-m", "harness", "export", str(run)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "rows.csv is not a regular file" in result.stderr


def test_export_still_writes_beside_the_run_and_replaces_its_own_file(tmp_path: Path) -> None:
    from harness.results import export

    run = a_run(tmp_path / "results")
    (run / "rows.csv").write_text("old and longer than what replaces it\n" * 100)
    path = export(run, "csv")
    assert path == run / "rows.csv" and path.read_text().startswith("schema,")
    assert "old and longer" not in path.read_text()


def test_baseline_save_force_does_not_delete_or_write_through_a_linked_baselines_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    run = a_run(results)
    outside = tmp_path / "outside"
    (outside / "main").mkdir(parents=True)
    (outside / "main" / "keep.txt").write_text("precious\n")
    (results / "baselines").symlink_to(outside, target_is_directory=True)
    status = main(["baseline", "save", str(run), "main", "--force", "--results", str(results)])
    err = capsys.readouterr().err
    assert status == 2 and "baselines is a symbolic link: refusing to write or delete" in err
    assert sorted(p.name for p in outside.rglob("*")) == ["keep.txt", "main"]


def test_baseline_save_force_does_not_delete_through_a_linked_baseline(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = a_run(results)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("precious\n")
    (results / "baselines").mkdir()
    (results / "baselines" / "main").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ResultsError, match="main is a symbolic link"):
        baselines.save(run, "main", results, replace=True)
    assert (outside / "keep.txt").read_text() == "precious\n"


@pytest.mark.parametrize("file", [ROWS_FILE, CONTEXT_FILE])
def test_baseline_save_refuses_run_files_that_are_links(tmp_path: Path, file: str) -> None:
    results = tmp_path / "results"
    run = a_run(results)
    target = tmp_path / f"elsewhere-{file}"
    (run / file).rename(target)  # a loadable file, so only the link itself is at fault
    (run / file).symlink_to(target)
    with pytest.raises(ResultsError, match=f"{file} is a symbolic link: a baseline copies"):
        baselines.save(run, "main", results)
    assert not (results / "baselines").exists()


def test_a_replaced_baseline_is_swapped_whole(tmp_path: Path) -> None:
    results = tmp_path / "results"
    first = a_run(results, ROW)
    second = a_run(results, ROW, {**ROW, "case_id": "s/x"})
    baselines.save(first, "main", results)
    saved = baselines.save(second, "main", results, replace=True)
    assert (saved / ROWS_FILE).read_bytes() == (second / ROWS_FILE).read_bytes()
    assert [p.name for p in (results / "baselines").iterdir()] == ["main"]  # no staging left


def test_resuming_never_appends_through_a_linked_rows_file(tmp_path: Path) -> None:
    run, victim = a_run(tmp_path / "results"), a_victim(tmp_path)
    (run / ROWS_FILE).unlink()
    (run / ROWS_FILE).symlink_to(victim)
    with pytest.raises(ResultsError, match=r"rows\.jsonl is a symbolic link"):
        RunWriter.reopen(run)
    assert victim.read_text() == "precious\n"  # neither cut ("torn") nor appended to


def test_setting_lost_rows_aside_never_writes_through_a_linked_lost_file(
        tmp_path: Path) -> None:
    run = a_run(tmp_path / "results", {**ROW, "status": "error", "lost": True})
    victim = a_victim(tmp_path)
    (run / LOST_FILE).symlink_to(victim)
    with pytest.raises(ResultsError, match=r"lost\.jsonl is a symbolic link"):
        set_aside_lost(run)
    assert victim.read_text() == "precious\n"
    assert len((run / ROWS_FILE).read_text().splitlines()) == 1  # the row was not moved


def test_updating_the_context_never_writes_through_a_planted_temporary_file(
        tmp_path: Path) -> None:
    run, victim = a_run(tmp_path / "results"), a_victim(tmp_path)
    for name in ("context.json.tmp", ".context.json.tmp"):
        (run / name).symlink_to(victim)
    update_context(run, {"hosts": {"n1": {"host": "a"}}})
    assert victim.read_text() == "precious\n"
    assert json.loads((run / CONTEXT_FILE).read_text())["hosts"] == {"n1": {"host": "a"}}


def test_resuming_cuts_a_torn_tail_reading_only_the_end(tmp_path: Path) -> None:
    run = a_run(tmp_path / "results", ROW, {**ROW, "case_id": "s/x"})
    data = (run / ROWS_FILE).read_bytes()
    (run / ROWS_FILE).write_bytes(data + b'{"case_id": "torn' + b"x" * 200_000)
    writer = RunWriter.reopen(run)
    writer.close()
    assert (run / ROWS_FILE).read_bytes() == data
