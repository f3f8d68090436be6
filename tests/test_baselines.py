"""Named baselines: save, list, resolve; names cannot escape the baselines folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import baselines
from harness.results import ResultsError, RunWriter


def a_run(results: Path) -> Path:
    writer = RunWriter(results, {"host": "test"})
    writer.append({"suite": "s", "case_id": "s/w", "adapter": "cpu", "status": "ok"})
    writer.close()
    return writer.path


def test_save_copies_the_run_and_resolve_finds_it_by_name(tmp_path: Path) -> None:
    run = a_run(tmp_path)
    saved = baselines.save(run, "main", tmp_path)
    assert saved == tmp_path / "baselines" / "main"
    assert (saved / "rows.jsonl").read_text() == (run / "rows.jsonl").read_text()
    assert baselines.names(tmp_path) == {"main": saved}
    assert baselines.resolve("main", tmp_path) == saved
    assert baselines.resolve(str(run), tmp_path) == run  # a path wins


def test_an_existing_baseline_is_replaced_only_when_asked(tmp_path: Path) -> None:
    run = a_run(tmp_path)
    baselines.save(run, "main", tmp_path)
    with pytest.raises(ResultsError, match="pass --force"):
        baselines.save(run, "main", tmp_path)
    assert baselines.save(run, "main", tmp_path, replace=True).is_dir()


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "a..b", "x" * 65])
def test_names_that_could_escape_or_hide_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ResultsError, match="baseline name"):
        baselines.save(a_run(tmp_path), name, tmp_path)


def test_unknown_names_and_non_runs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"neither a path nor a baseline .*none saved"):
        baselines.resolve("nope", tmp_path)
    with pytest.raises(ResultsError, match="is not a run folder"):
        baselines.save(tmp_path, "x", tmp_path)
