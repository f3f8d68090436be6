"""Strings that a case or a results file supplied reach the terminal inert: every escape
sequence in an exception message, case id or file name is printed as text, never obeyed."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import pytest

from harness.cli import main
from harness.progress import Progress
from harness.report.table import render
from harness.results import ROWS_FILE, RunWriter

CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;pwned\x07"
EVIL = f"{CLEAR}boom{TITLE}\rok\n"


def an_evil_run(results: Path) -> Path:
    writer = RunWriter(results, {"started_at": "2026-01-01T00:00:00+00:00"})
    for status in ("ok", "error"):
        writer.append({"suite": "s", "workload": f"w{CLEAR}", "case_id": f"s/w[p={EVIL}]",
                       "params": {"p": EVIL}, "adapter": f"cpu{TITLE}", "status": status,
                       "message": f"run failed: RuntimeError: {EVIL}",
                       "latency_median_s": 1e-3 if status == "ok" else None,
                       "samples_s": [1e-3] * 6 if status == "ok" else None})
    writer.close()
    return writer.path


def inert(text: str) -> bool:
    return not any(c in text for c in "\x1b\x07\r") and "\\x1b" in text


def test_the_results_table_escapes_case_strings(tmp_path: Path) -> None:
    from harness.results import read_rows

    text = render(read_rows(an_evil_run(tmp_path)))
    assert inert(text)
    assert "boom" in text and "run failed: RuntimeError" in text


def test_progress_lines_escape_case_strings() -> None:
    stream = io.StringIO()
    Progress(1, stream).done({"status": "error", "case_id": EVIL, "adapter": "cpu"}, 1, 1)
    assert inert(stream.getvalue().rstrip("\n")) and stream.getvalue().count("\n") == 1


@pytest.mark.parametrize("command", ["history", "compare", "import"])
def test_commands_print_results_strings_inert(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              command: str) -> None:
    run = an_evil_run(tmp_path / "results")
    if command == "import":
        path = tmp_path / "b.json"
        path.write_text(json.dumps({"benchmarks": [
            {"name": EVIL, "fullname": EVIL, "stats": {"median": 1e-3}}]}))
        argv = ["import", "pytest-benchmark", str(path), "--out", str(tmp_path / "imported")]
    else:
        argv = [command, str(run)] + ([str(run)] if command == "compare" else [])
    main(argv)
    out = capsys.readouterr().out
    assert inert(out), out


def test_errors_and_warnings_quote_paths_and_rows_inert(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / f"no{CLEAR}run"), "-o", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err
    assert inert(err) and err.count("\n") == 1

    run = an_evil_run(tmp_path / f"results{TITLE}")
    with open(run / ROWS_FILE, "a") as fh:
        fh.write('{"case_id": "torn')
    with warnings.catch_warnings():
        assert main(["history", str(run)]) == 0
    err = capsys.readouterr().err
    assert "skipped a torn last row" in err and not any(c in err for c in "\x1b\x07")
