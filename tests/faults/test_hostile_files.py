"""Hostile results files: every command that reads one says what is wrong with it in one line
naming the file (and line), and exits 2; none prints a traceback or passes bad values on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.results import CONTEXT_FILE, ROWS_FILE, RunWriter

GOOD = {"suite": "s", "workload": "w", "case_id": "s/w[n=1]", "params": {"n": 1},
        "adapter": "cpu", "status": "ok", "latency_median_s": 1e-3,
        "samples_s": [1e-3, 1.1e-3, 0.9e-3, 1e-3, 1e-3, 1.2e-3]}


SUITE = Path(__file__).with_name("faulty_suite.py")
#: a configuration that `--resume` can plan: the quick null-adapter cases of a workload here.
CONFIG = {"suites": [str(SUITE)], "workloads": ["fine"], "adapters": ["null"],
          "preset": "quick", "collect": False, "repeat": 1}


def a_run(results: Path, lines: list[str] | None = None, context: str | None = None) -> Path:
    """A real run of one good row, then ``lines`` appended as they are."""
    writer = RunWriter(results, {"started_at": "2026-01-01T00:00:00+00:00", "git_sha": "abc",
                                 "config": CONFIG})
    writer.append(GOOD)
    writer.close()
    with open(writer.path / ROWS_FILE, "a", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in lines or [])
    if context is not None:
        (writer.path / CONTEXT_FILE).write_text(context)
    return writer.path


def harness(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str]:
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err


def commands(run: Path, tmp: Path) -> list[list[Any]]:
    """Every command that loads a run folder, each given ``run``."""
    return [["report", run, "-o", tmp / "r.md"], ["history", run], ["compare", run, run],
            ["export", run], ["baseline", "save", run, "main", "--results", tmp / "kept"]]


def one_line_error(status: int, err: str, *needles: str) -> None:
    assert status == 2, err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


HOSTILE_ROWS = {
    "nested 100,000 deep": ('{"case_id": ' + "[" * 100_000 + "]" * 100_000 + "}",
                            "nests deeper than"),
    "an empty row": ("{}", "has no case_id"),
    "a null case id": (json.dumps({**GOOD, "case_id": None}), "has no case_id"),
    "a median in words": (json.dumps({**GOOD, "latency_median_s": "fast"}),
                          'latency_median_s is not a finite number: "fast"'),
    "a numeric status": (json.dumps({**GOOD, "status": 7}), "status is not a string: 7"),
    "an unknown status": (json.dumps({**GOOD, "status": "fine"}),
                          'status is "fine", not one of ok, error, skipped'),
    "a NaN median": (json.dumps({**GOOD, "case_id": "x"}).replace("0.001", "NaN"),
                     "holds NaN, which is not JSON"),
    "an infinite median": (json.dumps({**GOOD, "latency_median_s": 1e999}).replace(
        "Infinity", "1e999"), "latency_median_s is not a finite number"),
    "a string for samples": (json.dumps({**GOOD, "samples_s": "1,2"}),
                             "samples_s is not a list of numbers"),
    "a negative repetition": (json.dumps({**GOOD, "repetition": -1}),
                              "repetition is not a whole number >= 0"),
    "a list for an adapter": (json.dumps({**GOOD, "adapter": ["cpu"]}),
                              "adapter is not a string"),
    "an integer of 5000 digits": (json.dumps(GOOD).replace('"n": 1', '"n": ' + "9" * 5000),
                                  "is not usable JSON"),
}


@pytest.mark.parametrize("line, message", HOSTILE_ROWS.values(), ids=HOSTILE_ROWS.keys())
def test_hostile_rows_are_one_line_errors_in_every_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str) -> None:
    run = a_run(tmp_path / "results", [line, json.dumps(GOOD)])
    for argv in commands(run, tmp_path):
        one_line_error(*harness(capsys, *argv), f"{run / ROWS_FILE}:2", message)
    assert not (tmp_path / "kept").exists()  # nothing unloadable became a baseline


def test_hostile_rows_stop_a_resume_before_it_runs_anything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = a_run(tmp_path / "results", [HOSTILE_ROWS["nested 100,000 deep"][0]])
    before = (run / ROWS_FILE).read_bytes()
    one_line_error(*harness(capsys, "run", "--resume", run, "--no-isolate"),
                   f"{ROWS_FILE}:2", "nests deeper than")
    assert (run / ROWS_FILE).read_bytes() == before


def test_a_line_longer_than_the_limit_is_refused_without_reading_it_whole(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = a_run(tmp_path / "results", [json.dumps({**GOOD, "message": "x" * 3_000_000})])
    monkeypatch.setenv("HARNESS_MAX_ROW_BYTES", "1M")
    for argv in commands(run, tmp_path):
        one_line_error(*harness(capsys, *argv), f"{run / ROWS_FILE}:", "line 2 is longer than "
                       "1,048,576 bytes (set $HARNESS_MAX_ROW_BYTES")
    monkeypatch.setenv("HARNESS_MAX_ROW_BYTES", "4M")  # raised: the same file loads
    status, err = harness(capsys, "export", run)
    assert status == 0 and err == ""
    monkeypatch.setenv("HARNESS_MAX_ROW_BYTES", "lots")
    one_line_error(*harness(capsys, "export", run), "HARNESS_MAX_ROW_BYTES must be a size")


CONTEXTS = {
    "not JSON": ("{corrupt", "is not JSON"),
    "not an object": ("[1, 2]", "is not a JSON object"),
    "nested deep": ('{"config": ' + "[" * 50_000 + "]" * 50_000 + "}", "nests deeper than"),
    "a start time that is a number": ('{"started_at": 5}', "started_at is not a string: 5"),
    "a configuration that is a string": ('{"config": "x"}', "config is not a JSON object"),
}


@pytest.mark.parametrize("text, message", CONTEXTS.values(), ids=CONTEXTS.keys())
def test_a_corrupt_context_is_a_one_line_error(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str], text: str,
                                               message: str) -> None:
    run = a_run(tmp_path / "results", context=text)
    for argv in [["report", run, "-o", tmp_path / "r.md"], ["history", run],
                 ["run", "--resume", run, "--no-isolate"],
                 ["baseline", "save", run, "main", "--results", tmp_path]]:
        one_line_error(*harness(capsys, *argv), str(run / CONTEXT_FILE), message)


PYTEST_BENCHMARK = {
    "machine_info a string": ({"machine_info": "box", "benchmarks": [{"name": "t"}]},
                              "machine_info is not an object"),
    "params a string": ({"benchmarks": [{"name": "t", "params": "n=1"}]},
                        "benchmarks[0]: params is not an object"),
    "benchmarks not objects": ({"benchmarks": [5, "x"]},
                               "benchmarks[0]: the entry is not an object"),
    "stats a list": ({"benchmarks": [{"name": "t", "stats": [1]}]},
                     "benchmarks[0]: stats is not an object"),
    "no benchmarks": ({"benchmarks": []}, "holds no benchmarks"),
    "nested deep": ({"benchmarks": "DEEP"}, "nests deeper than"),
}


@pytest.mark.parametrize("data, message", PYTEST_BENCHMARK.values(),
                         ids=PYTEST_BENCHMARK.keys())
def test_hostile_pytest_benchmark_files_import_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any],
        message: str) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data).replace('"DEEP"', "[" * 100_000 + "]" * 100_000))
    one_line_error(*harness(capsys, "import", "pytest-benchmark", path, "--out",
                            tmp_path / "results"), str(path), message)
    assert not (tmp_path / "results").exists()


def test_hostile_values_inside_a_benchmark_become_missing_figures(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.results import read_rows

    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": [{
        "name": ["not", "text"], "fullname": "t.py::test_a", "extra_info": {"items": True},
        "stats": {"median": "fast", "rounds": -3, "iterations": 2.5, "mean": 1e-3}}]}))
    status = main(["import", "pytest-benchmark", str(path), "--out", str(tmp_path / "r")])
    assert status == 0, capsys.readouterr().err
    [row] = read_rows(next((tmp_path / "r").iterdir()))
    assert row["case_id"] == "t.py::test_a" and row["latency_mean_s"] == 1e-3
    assert row["latency_median_s"] is None and row["n_samples"] is None and row["loops"] is None
    assert row["items"] is None
