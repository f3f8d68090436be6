"""Bad input, generated: for any plan file or results file, a clear error or a valid result.

Property-based (hypothesis): the plan parser and the results loader must never raise anything
but their own one-line errors, whatever bytes they are given.
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config import PLAN_FILE_KEYS, ConfigError, RunConfig, read_plan_file
from harness.results import CONTEXT_FILE, ROWS_FILE, ResultsError, load, read_rows

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(), st.text(string.printable, max_size=12))
values = st.one_of(scalars, st.lists(scalars, max_size=4))
keys = st.one_of(st.sampled_from(sorted(PLAN_FILE_KEYS)),
                 st.text(string.ascii_lowercase, min_size=1, max_size=8))


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


@st.composite
def plans(draw: Any) -> str:
    top = draw(st.dictionaries(keys, values, max_size=6))
    lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
    for table in draw(st.lists(st.sampled_from(["params", "timing", "other"]), max_size=2,
                               unique=True)):
        if table in top:
            continue
        lines.append(f"[{table}]")
        inner = draw(st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=10),
                                     values, max_size=4))
        lines += [f"{k} = {toml_value(v)}" for k, v in inner.items()]
    return "\n".join(lines) + "\n"


@SETTINGS
@given(text=st.one_of(plans(), st.text(max_size=200)))
def test_any_plan_is_a_clear_error_or_a_valid_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    try:
        config = RunConfig(**read_plan_file(path))
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert config.preset in ("quick", "full") and config.repeat >= 1


rows = st.one_of(
    st.dictionaries(st.sampled_from(["case_id", "adapter", "params", "status", "schema",
                                     "latency_median_s", "samples_s", "meta", "repetition"]),
                    st.one_of(scalars, st.lists(scalars, max_size=3),
                              st.dictionaries(st.text(max_size=4), scalars, max_size=2)),
                    max_size=6).map(json.dumps),
    st.text(max_size=40),
)


@SETTINGS
@given(lines=st.lists(rows, max_size=5), newline=st.booleans())
def test_any_rows_file_is_a_clear_error_or_a_frame(tmp_path: Path, lines: list[str],
                                                   newline: bool) -> None:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / CONTEXT_FILE).write_text("{}")
    (run / ROWS_FILE).write_text("\n".join(lines) + ("\n" if newline else ""))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a torn last row warns; that is allowed
            frame = load(run)
    except ResultsError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert len(frame) == len(read_rows_quietly(run))


def read_rows_quietly(run: Path) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_rows(run)


@pytest.mark.parametrize("args, message", [
    (["export", "{run}"], "is not JSON"),
    (["report", "{run}", "-o", "{tmp}/r.html"], "is not JSON"),
    (["compare", "{run}", "{run}"], "is not JSON"),
])
def test_malformed_results_files_are_one_line_errors(tmp_path: Path, args: list[str],
                                                     message: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / CONTEXT_FILE).write_text("{}")
    (run / ROWS_FILE).write_text("{broken\n{}\n")
    argv = [a.format(run=run, tmp=tmp_path) for a in args]
    result = subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr


# Hostile rows, generated: a valid row, then keys dropped, values of the wrong type, deep
# nesting, long lines or NaN put in. Whatever loads must be usable by every reader.
VALID = {"suite": "s", "workload": "w", "case_id": "s/w[n=1]", "params": {"n": 1},
         "adapter": "cpu", "status": "ok", "repetition": 0, "n_samples": 6,
         "latency_median_s": 1e-3, "latency_p99_s": 2e-3, "peak_rss_bytes": 2**20,
         "correct": True, "message": "", "meta": {"items_unit": "rows"},
         "missing": {"energy_j": "no RAPL"}, "samples_s": [1e-3, 2e-3, 1e-3, 1e-3, 3e-3, 1e-3]}
anything = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                     st.floats(allow_nan=False), st.text(max_size=6),
                     st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
NEST = "__nest__"
#: one draw in four: most rows keep most of their validity, so many runs load.
rarely = st.sampled_from([False, False, False, True])


@st.composite
def hostile_rows(draw: Any) -> str:
    from harness.schema import COLUMNS

    row: dict[str, Any] = {**VALID, "case_id": draw(st.sampled_from(["s/w[n=1]", "s/w[n=2]"]))}
    for key in draw(st.lists(st.sampled_from(sorted(VALID)), max_size=1)):
        row.pop(key, None)  # missing keys
    for key in draw(st.lists(st.sampled_from([*COLUMNS, "extra"]), max_size=1)):
        row[key] = draw(anything)  # wrong (or, by chance, right) types
    if draw(rarely):
        row[draw(st.sampled_from(["meta", "params", "message", "samples_s"]))] = NEST
    if draw(rarely):
        row["message"] = "x" * draw(st.integers(0, 3000))  # past the 2K limit set below
    text = json.dumps(row).replace(f'"{NEST}"', "[" * (depth := draw(st.integers(1, 3000)))
                                   + "]" * depth)
    return text.replace("0.001", "NaN") if draw(rarely) else text


@SETTINGS
@given(lines=st.lists(hostile_rows(), min_size=1, max_size=4))
def test_hostile_rows_are_a_one_line_error_naming_the_file_or_usable_by_every_reader(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> None:
    from harness.compare import compare
    from harness.history import history, trend
    from harness.report.build import gather
    from harness.report.table import render
    from harness.results import export

    monkeypatch.setenv("HARNESS_MAX_ROW_BYTES", "2K")
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / CONTEXT_FILE).write_text('{"started_at": "2026-01-01T00:00:00+00:00"}')
    (run / ROWS_FILE).write_text("".join(line + "\n" for line in lines))
    try:
        rows = read_rows(run)
    except ResultsError as exc:
        assert str(exc).startswith(f"{run / ROWS_FILE}:") and "\n" not in str(exc), exc
        return
    # Everything that loads is valid, so no reader meets a surprise.
    assert len(load(run)) == len(rows) == len(lines)
    compare(rows, rows)
    render(rows)
    trend(history([run]))
    gather([run], plots=False)
    export(run, "csv")
