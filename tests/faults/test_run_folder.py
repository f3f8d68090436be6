"""A run folder says whether its run finished, and belongs to one run at a time: a case ending
its process in-process cannot pass for success, and two resumes of one folder cannot both run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.results import ResultsError, lock_run, read_context, read_rows, unfinished

SUITE = Path(__file__).with_name("faulty_suite.py")
FAST = ["-a", "cpu:threads=1", "--min-time", "0.05", "--min-samples", "3", "--no-collect"]


def harness(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_system_exit_in_an_inline_case_is_an_error_row_and_the_run_goes_on(
        tmp_path: Path) -> None:
    result = harness("run", "-s", SUITE, "-w", "exits", "-w", "fine", "-p", "how=sys_exit",
                     "-p", "n=1000", "--no-isolate", *FAST, "--out", tmp_path)
    assert result.returncode == 1, result.stderr
    (run,) = tmp_path.iterdir()
    rows = {row["workload"]: row for row in read_rows(run)}
    assert rows["exits"]["status"] == "error"
    assert rows["exits"]["message"].startswith("timing failed: SystemExit: 3")
    assert rows["fine"]["status"] == "ok"
    assert read_context(run)["finished_at"] is not None
    assert not unfinished(run)


def test_a_run_whose_process_exits_mid_case_is_reported_as_unfinished(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = harness("run", "-s", SUITE, "-w", "exits", "-w", "fine", "-p", "how=os_exit",
                     "-p", "n=1000", "--no-isolate", *FAST, "--out", out)
    assert result.returncode == 0  # os._exit(0): nothing in the process could stop it
    (run,) = out.iterdir()
    assert read_context(run)["finished_at"] is None and unfinished(run)
    warning = f"harness: warning: {run} did not finish (stopped, killed, or its process exited)"
    # compare fails as missing: the run holds no row to judge (a candidate without rows is
    # never a pass); report and history show what there is.
    for command, status in ((["report", run, "-o", tmp_path / "report.md"], 0),
                            (["compare", run, run], 1), (["history", run], 0)):
        checked = harness(*command)
        assert checked.returncode == status, checked.stderr
        assert warning in checked.stderr, (command, checked.stderr)
        assert "Traceback" not in checked.stderr
    resumed = harness("run", "--resume", run, "--no-isolate")
    assert f"{run} did not finish (stopped, killed, or its process exited): running the cases " \
           "it is missing" in resumed.stderr


def test_a_finished_run_and_an_older_run_are_not_called_unfinished(tmp_path: Path) -> None:
    for name, context in (("finished", {"finished_at": "2026-01-01T00:00:00+00:00"}),
                          ("older", {})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "context.json").write_text(json.dumps(context))
        assert not unfinished(tmp_path / name)


def test_a_run_folder_is_held_by_one_process_at_a_time(tmp_path: Path) -> None:
    with lock_run(tmp_path):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
        # A second open file description conflicts, as another process's would.
        with pytest.raises(ResultsError, match=f"in use by another harness run \\(process "
                                               f"{os.getpid()}\\)"):
            lock_run(tmp_path)
    lock_run(tmp_path).close()  # released with the file


def test_a_planted_lock_link_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(target)
    with pytest.raises(ResultsError, match="cannot lock"):
        lock_run(run)
    assert target.read_text() == "keep"


def test_a_second_resume_of_a_running_folder_is_refused(tmp_path: Path) -> None:
    first = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "-s", str(SUITE), "-w", "hang", *FAST,
         "--timeout", "300", "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run = None
        for _ in range(1200):  # the folder and its lock appear once the run has started
            found = [p for p in tmp_path.glob("*/.lock") if p.read_text()]
            if found:
                run = found[0].parent
                break
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            time.sleep(0.1)
        assert run is not None, "the first run never started"
        second = harness("run", "--resume", run)
        assert second.returncode == 2
        assert second.stderr == (f"harness: error: {run} is in use by another harness run "
                                 f"(process {first.pid}): let it finish, or stop it, before "
                                 "resuming\n")
        assert read_rows(run) == []  # the refused resume ran nothing
    finally:
        first.terminate()
        first.communicate(timeout=60)
    assert first.returncode == 143
