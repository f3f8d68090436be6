"""``harness run --profile`` on the command line: kept in the run's configuration, refused
where it cannot apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import RunConfig, read_plan_file
from harness.profiling.ops import read_ops
from harness.results import read_rows

SUITE = Path(__file__).parent.parent / "faults" / "faulty_suite.py"
FAST = ["--min-time", "0.02", "--min-samples", "3", "--no-collect"]


def test_the_run_keeps_profile_in_its_configuration_and_says_where_things_are(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--profile", "--no-isolate", "-s", str(SUITE), "-w", "fine", "-a",
                 "null", "--out", str(tmp_path), *FAST]) == 0
    (run,) = list(tmp_path.iterdir())
    stored = json.loads((run / "context.json").read_text())["config"]
    assert stored["profile"] is True
    assert RunConfig.from_stored(stored, tmp_path).profile is True
    out = capsys.readouterr().out
    assert "where the time goes" in out and f"{run / 'ops.jsonl'}" in out
    assert read_ops(run) and read_rows(run)[0]["profiler"] == "cProfile"


def test_profile_with_a_load_scenario_is_a_one_line_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--profile", "--scenario", "single-stream", "-s", str(SUITE), "-w",
                 "fine", "-a", "null", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--profile" in err


def test_resume_takes_profile_from_the_run_folder(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--resume", str(tmp_path), "--profile"]) == 2
    assert "drop --profile" in capsys.readouterr().err


def test_a_plan_file_may_ask_for_profiles(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text("profile = true\n")
    assert read_plan_file(plan) == {"profile": True}
    plan.write_text('profile = "yes"\n')
    with pytest.raises(ValueError, match="'profile' must be true or false"):
        read_plan_file(plan)
