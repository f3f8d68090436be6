"""A run killed with SIGKILL or stopped with SIGTERM leaves no process behind: not its worker,
not the forkserver or the resource tracker, not what the case started; SIGTERM keeps the
finished rows and exits 143."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from harness.results import read_rows

SUITE = Path(__file__).with_name("faulty_suite.py")
MARK = "HARNESS_FAULT_MARK"
CHILD_MARK = "faulty-suite-child"  # in the command line of what faulty_suite.spawn starts

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(),
                                reason="finding a run's processes needs Linux's /proc")


def marked(mark: str) -> dict[int, str]:
    """pid → command line of every process whose environment carries ``mark``."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"{MARK}={mark}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ")\
                    .decode(errors="replace")
        except OSError:  # gone, or not ours to read
            continue
    return found


def start(out: Path, mark: str, *workloads: str) -> subprocess.Popen[str]:
    selection = [arg for name in workloads for arg in ("-w", name)]
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "-s", str(SUITE), *selection, "-p", "n=1000",
         "-a", "cpu:threads=1", "--min-time", "0.05", "--min-samples", "3", "--no-collect",
         "--timeout", "300", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, MARK: mark})


def wait_for_the_case_child(process: subprocess.Popen[str], mark: str) -> None:
    """Wait until the hanging case has started its own process."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if any(CHILD_MARK in cmd for cmd in marked(mark).values()):
            return
        if process.poll() is not None:
            pytest.fail(f"the run ended early: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.1)
    process.kill()
    pytest.fail("the case did not start its process within 180 s")


def assert_nothing_survives(mark: str, grace_s: float = 30.0) -> None:
    deadline = time.monotonic() + grace_s
    while (left := marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:  # clean up before failing, so that nothing loads the machine afterwards
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes of the run survived it: {left}"


def test_a_sigkilled_run_leaves_no_process_behind(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    process = start(tmp_path, mark, "spawn")
    wait_for_the_case_child(process, mark)
    process.kill()  # the parent alone: the kernel kills nothing else for us
    process.wait(timeout=30)
    assert_nothing_survives(mark)


def test_sigterm_stops_a_run_cleanly(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex
    process = start(tmp_path, mark, "fine", "spawn")
    wait_for_the_case_child(process, mark)
    process.terminate()
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        assert_nothing_survives(mark, grace_s=0)
        pytest.fail("the run did not stop within 60 s of SIGTERM")
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    (run,) = tmp_path.iterdir()
    assert f"terminated; rows finished so far are in {run}" in stderr
    assert [row["case_id"] for row in read_rows(run)] == ["faulty_suite/fine[n=1000]"]
    assert_nothing_survives(mark, grace_s=10.0)
