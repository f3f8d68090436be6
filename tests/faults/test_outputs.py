"""Outputs that cannot be written are one line naming the file, never a traceback; a full disk
mid-run leaves whole rows only and says how to resume."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import pytest

import harness.results
from harness.cli import main
from harness.results import read_rows

SUITE = Path(__file__).with_name("faulty_suite.py")
FAST = ["-a", "null", "--no-isolate", "--no-collect", "--min-time", "0.02", "--min-samples", "3"]


def run_main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    status = main([str(a) for a in args])
    return status, capsys.readouterr().err


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    status, err = run_main(capsys, "run", "-s", SUITE, "-w", "fine", "-p", "n=1000", *FAST,
                           "--out", tmp_path / "results")
    assert status == 0, err
    (folder,) = (tmp_path / "results").iterdir()
    return folder


def test_out_on_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    status, err = run_main(capsys, "run", "-s", SUITE, "-w", "fine", *FAST, "--out", afile)
    assert status == 2
    assert err == f"harness: error: cannot create a run folder in {afile}: Not a directory\n"


@pytest.mark.parametrize("command", [
    ["report", "{run}", "-o", "{bad}/report.md"],
    ["export", "{run}", "-o", "{bad}/rows.csv"],
    ["compare", "{run}", "{run}", "--markdown", "{bad}/cmp.md"],
    ["history", "{run}", "-o", "{bad}/history.csv"],
])
def test_an_unwritable_output_is_one_line_naming_it(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    bad = tmp_path / "afile"  # a file where a folder should be: unwritable even for root
    bad.write_text("")
    args = [part.format(run=run, bad=bad) for part in command]
    status, err = run_main(capsys, *args)
    assert status == 2, err
    assert err.startswith(f"harness: error: cannot write {args[-1]}"), err
    assert err.count("\n") == 1


def test_a_full_disk_mid_run_keeps_whole_rows_and_says_how_to_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = harness.results.write_all
    writes = []

    def fill_up(fd: int, data: bytes) -> None:
        writes.append(data)
        if len(writes) == 1:
            return real(fd, data)
        os.write(fd, data[: len(data) // 2])  # part of the row reached the disk
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(harness.results, "write_all", fill_up)
    out = tmp_path / "results"
    status, err = run_main(capsys, "run", "-s", SUITE, "-w", "fine", "--full", *FAST,
                           "--out", out)
    (folder,) = out.iterdir()
    assert status == 1
    assert err.splitlines()[-1] == (
        f"harness: error: cannot write {folder / 'rows.jsonl'}: No space left on device; once "
        f"it can be written, `harness run --resume {folder}` runs the cases still missing")
    assert "Traceback" not in err
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torn row to skip
        assert len(read_rows(folder)) == 1

    monkeypatch.setattr(harness.results, "write_all", real)
    status, err = run_main(capsys, "run", "--resume", folder, "--no-isolate")
    assert status == 0, err
    assert len(read_rows(folder)) == 4
