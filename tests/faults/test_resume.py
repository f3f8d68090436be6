"""A run killed with SIGKILL keeps every finished row; --resume completes it exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness
from harness.results import read_rows

SUITE = Path(__file__).with_name("faulty_suite.py")
ARGS = ["-s", str(SUITE), "-w", "fine", "--full", "-a", "cpu:threads=1", "-a", "null",
        "--min-time", "0.05", "--min-samples", "3", "--no-collect"]


def keys(run: Path) -> set[tuple[str, str, int]]:
    return {(r["case_id"], r["adapter"], r.get("repetition") or 0) for r in read_rows(run)}


def start(out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness", "run", *ARGS, "--out", str(out),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def kill_after_rows(process: subprocess.Popen[str], out: Path, rows: int) -> Path:
    """SIGKILL the whole run (parent and workers) once ``rows`` rows are on disk."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = list(out.glob("*/rows.jsonl"))
        if runs and runs[0].read_text().count("\n") >= rows:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return runs[0].parent
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {process.stderr.read()}")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail("no rows appeared within 120 s")


@pytest.mark.parametrize("isolation", ["--isolate", "--no-isolate"])
def test_sigkill_then_resume_gives_the_rows_of_an_uninterrupted_run(
        tmp_path: Path, isolation: str) -> None:
    complete = start(tmp_path / "complete", isolation)
    assert complete.wait(timeout=300) == 0, complete.stderr.read() if complete.stderr else ""
    expected = keys(next((tmp_path / "complete").iterdir()))
    assert len(expected) == 8  # 4 cases × 2 adapters

    killed = kill_after_rows(start(tmp_path / "killed", isolation), tmp_path / "killed", 2)
    finished = keys(killed)
    assert 2 <= len(finished) < 8
    assert len(harness.load(killed)) == len(finished)  # every finished row loads

    resumed = subprocess.run([sys.executable, "-m", "harness", "run", "--resume", str(killed),
                              isolation], capture_output=True, text=True, timeout=300,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(finished)} of 8 case(s) already in the run folder" in resumed.stderr
    assert keys(killed) == expected
    assert len(read_rows(killed)) == 8  # nothing ran twice


def test_resume_refuses_a_new_selection_and_a_non_run(tmp_path: Path) -> None:
    for args, message in (
            (["--resume", str(tmp_path), "-w", "fine"], "--resume takes the selection from the "
                                                        "run folder; drop --workload"),
            (["--resume", str(tmp_path)], "not a run folder (no context.json)")):
        result = subprocess.run([sys.executable, "-m", "harness", "run", *args],
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2
        assert result.stderr.strip().endswith(message), result.stderr
        assert result.stderr.count("\n") == 1
