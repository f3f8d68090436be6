"""Security: no unsafe deserialisation or shell, escaped output, paths that stay put."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.results import ResultsError, RunWriter

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "harness").rglob("*.py"), *(ROOT / "suites").rglob("*.py"),
                  *(ROOT / "benchmarks").rglob("*.py")])
FORBIDDEN = {
    r"\bimport pickle\b|\bpickle\.load": "pickle runs code from the data it loads",
    r"(?<![\w.])eval\(|(?<![\w.])exec\(": "eval/exec run code from strings",
    r"yaml\.load\((?![^)]*SafeLoader)": "yaml.load without SafeLoader builds any object",
    r"shell\s*=\s*True": "a shell parses user strings",
    r"os\.system\(|os\.popen\(": "a shell parses user strings",
    r"torch\.load\((?![^)]*weights_only=True)": "torch.load unpickles unless weights_only",
}

#: (file, reason) → why that file may: each exception is argued here and checked below.
EXCEPTIONS = {
    # harness.bench hands the caller's own task to its workers in a private temporary folder
    # (tempfile.mkdtemp: mode 0700) that it creates and removes; no file from a run folder or
    # anywhere else is unpickled (multiprocessing pickles the same objects over its pipes).
    ("harness/portable.py", "pickle runs code from the data it loads"),
}


@pytest.mark.parametrize("pattern, why", FORBIDDEN.items(), ids=list(FORBIDDEN.values()))
def test_no_unsafe_calls_in_the_code(pattern: str, why: str) -> None:
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in SOURCES
                 if (str(path.relative_to(ROOT)), why) not in EXCEPTIONS
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(pattern, line) and not line.lstrip().startswith("#")]
    assert not offenders, f"{why}: {offenders}"


def test_the_bench_pickle_lives_in_a_private_folder_that_goes_away() -> None:
    from harness.adhoc import make_case
    from harness.adhoc_settings import Settings
    from harness.portable import TaskSpec

    prepared = make_case(TaskSpec(len, ([1, 2, 3],)), "cpu", Settings(), suite="s",
                         workload="w", params={})
    assert prepared.folder is not None and (prepared.folder / "task.pkl").is_file()
    assert prepared.folder.stat().st_mode & 0o777 == 0o700
    prepared.cleanup()
    assert not prepared.folder.exists()


@pytest.mark.parametrize("run_id", ["../escape", "a/b", ".hidden", "/abs", ".."])
def test_run_ids_cannot_leave_the_results_directory(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(ResultsError, match="run id"):
        RunWriter(tmp_path / "results", {}, run_id=run_id)
    assert not (tmp_path / "escape").exists()


def test_user_strings_are_escaped_in_every_report_format(tmp_path: Path) -> None:
    from harness.report.build import write_report

    evil = "<script>alert(1)</script>"
    writer = RunWriter(tmp_path, {"host": evil, "command": [evil]})
    writer.append({"suite": evil, "workload": evil, "case_id": f"{evil}/w[p={evil}]",
                   "params": {"p": evil}, "adapter": "cpu", "status": "error",
                   "message": evil})
    writer.close()
    for name in ("r.html", "r.md"):
        text = write_report([writer.path], tmp_path / name).read_text()
        assert "<script>" not in text and "&lt;script&gt;" in text, name
