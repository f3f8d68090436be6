"""Crashes, aborts, exceptions, hangs and memory exhaustion become error rows; the run goes on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import harness

SUITE = Path(__file__).with_name("faulty_suite.py")
FAST = ["--min-time", "0.05", "--min-samples", "3", "--no-collect"]


def harness_run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "run", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_a_crashing_a_hanging_and_a_memory_hungry_case_do_not_stop_the_run(
        tmp_path: Path) -> None:
    result = harness_run("-s", SUITE, "-w", "crash", "-w", "hang", "-w", "leak", "-w", "fine",
                         "--full", "-a", "cpu:threads=1", "--timeout", "10",
                         "--max-memory", "2G",
                         "--out", tmp_path, *FAST)
    assert result.returncode == 1, result.stderr  # errors happened, and were reported
    assert "Traceback" not in result.stderr
    frame = harness.load(tmp_path)
    rows = {case: (status, message) for case, status, message
            in zip(frame.case_id, frame.status, frame.message, strict=True)}
    assert rows["faulty_suite/crash[how=segfault]"] == (
        "error", "the worker crashed with a segmentation fault (SIGSEGV)")
    assert rows["faulty_suite/crash[how=abort]"] == ("error", "the worker aborted (SIGABRT)")
    assert rows["faulty_suite/crash[how=killed]"] == (
        "error", "the worker was killed by SIGKILL: most likely the kernel's out-of-memory "
                 "killer (or another process)")
    status, message = rows["faulty_suite/crash[how=exception]"]
    assert status == "error"
    assert message.startswith("timing failed: RuntimeError: the workload failed on purpose")
    assert rows["faulty_suite/hang[n=1]"] == (
        "error", "timed out after 10 s (--timeout): the case hung or ran too long; its worker "
                 "was killed")
    status, message = rows["faulty_suite/leak[n=1]"]
    assert status == "error" and "MemoryError" in message
    assert "the worker's memory cap, --max-memory, is 2 GiB" in message
    fine = frame[frame.workload == "fine"]
    assert len(fine) == 4 and set(fine.status) == {"ok"} and fine.correct.all()
    assert (fine.latency_median_s > 0).all()


def test_a_constant_answer_is_flagged(tmp_path: Path) -> None:
    result = harness_run("-s", SUITE, "-w", "constant", "-w", "fine", "-p", "n=1000",
                         "-a", "cpu:threads=1", "--out", tmp_path, *FAST)
    assert result.returncode == 0, result.stderr
    frame = harness.load(tmp_path).set_index("workload")
    assert not frame.loc["constant", "output_varies"]
    assert "the output did not change when every input changed" in frame.loc["constant",
                                                                             "message"]
    assert frame.loc["fine", "output_varies"]
    assert "cached or constant answer" in result.stdout  # in the printed notes


def test_isolated_rows_carry_the_workers_own_peak_rss(tmp_path: Path) -> None:
    result = harness_run("-s", SUITE, "-w", "fine", "-p", "n=1000", "-a", "cpu:threads=1",
                         "--out", tmp_path, "--min-time", "0.05", "--min-samples", "3")
    assert result.returncode == 0, result.stderr
    (row,) = harness.load(tmp_path).itertuples()
    assert row.peak_rss_source == "ru_maxrss of the case's own worker process"
    assert 50 * 2**20 < row.peak_rss_bytes < 4 * 2**30
