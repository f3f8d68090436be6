"""harness.bench: one callable measured by the harness's own execution layer, from a script, a
notebook or a test; rows as ``harness run`` writes them, bad input as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import harness
from harness import peak_cache
from harness.results import COLUMNS, read_context
from harness.roofline import Peaks

FAST = {"min_time": 0.01, "max_time": 0.2, "min_samples": 3, "max_warmup_s": 0.02,
        "collect": False}


@pytest.fixture(autouse=True)
def _known_peaks() -> None:
    # Each test has a cache of its own (conftest): seeded, no test spends seconds calibrating.
    peak_cache.store("cpu", {}, "float32", Peaks(1e11, 1e10, "seeded by the test"))


class Boxed:
    def __init__(self, values: list[int]) -> None:
        self.values = values


@pytest.mark.slow  # a fresh interpreter, its forkserver and a worker: about 10 s here
def test_a_notebook_style_script_gets_sorted_row_without_a_false_warning(tmp_path: Path) -> None:
    # No `if __name__ == "__main__":` guard, as a notebook exported to a script has none:
    # multiprocessing would run it again in every worker, unless the harness starts them
    # without it. sorted(data) was called a constant answer on every run.
    script = tmp_path / "notebook.py"
    script.write_text(textwrap.dedent(f"""
        import json, random
        import harness

        data = [random.random() for _ in range(2000)]
        rows = harness.bench(sorted, data, min_time=0.05, max_time=0.5, min_samples=5,
                             out={str(tmp_path / "results")!r})
        row = rows.iloc[0]
        print(json.dumps({{"n": len(rows), "status": row.status, "message": row.message,
                          "varies": bool(row.output_varies), "run": rows.attrs["run"],
                          "meta": json.loads(row.meta), "rss": row.peak_rss_source,
                          "columns": list(rows.columns)}}))
        """))
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, check=False, env=os.environ)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] == 1 and out["status"] == "ok" and out["varies"] is True
    assert "did not change" not in out["message"]
    assert out["meta"]["function"] == "builtins.sorted" and "in_process" not in out["meta"]
    assert out["rss"] == "ru_maxrss of the case's own worker process"  # it ran in a worker
    assert set(COLUMNS) <= set(out["columns"])
    run = Path(out["run"])
    assert run.parent == tmp_path / "results"
    assert read_context(run)["config"]["api"] == "harness.bench"
    assert harness.load(run).case_id.tolist() == ["bench/sorted[]"]


def test_a_function_no_worker_can_import_is_measured_here_and_says_why(tmp_path: Path) -> None:
    def double(xs: list[int]) -> list[int]:
        return [2 * x for x in xs]

    rows = harness.bench(double, [1, 2, 3], expected=[2, 4, 6], items=3, items_unit="values",
                         out=tmp_path, **FAST)
    assert isinstance(rows, pd.DataFrame) and len(rows) == 1
    row = rows.iloc[0]
    assert row.case_id == "bench/double[]" and row.status == "ok" and row.correct == True  # noqa: E712
    assert row.output_varies == True  # noqa: E712
    assert row.latency_median_s > 0 and row.throughput_items_per_s > 0
    meta = json.loads(row.meta)
    assert meta["in_process"] == ("the task cannot be sent to a worker: test_a_function_no_worker"
                                  "_can_import_is_measured_here_and_says_why.<locals>.double is "
                                  "defined inside a function")
    assert meta["items_unit"] == "values"
    assert rows.attrs["run"] == str(next(tmp_path.iterdir()))


def test_a_wrong_output_fails_its_check_in_the_row(tmp_path: Path) -> None:
    rows = harness.bench(sorted, [3, 1, 2], expected=[1, 2], isolate=False, out=tmp_path, **FAST)
    row = rows.iloc[0]
    assert row.status == "ok" and row.correct == False  # noqa: E712
    assert row.message.startswith("check failed: the output differs from the expected one: got "
                                  "[1, 2, 3], expected [1, 2]")
    assert json.loads(row.meta)["in_process"] == "isolate=False"


def test_inputs_the_probe_cannot_change_are_said_not_accused(tmp_path: Path) -> None:
    def sort_box(box: Boxed) -> list[int]:
        return sorted(box.values)

    row = harness.bench(sort_box, Boxed([3, 2, 1]), name="box", out=tmp_path, **FAST).iloc[0]
    assert row.case_id == "bench/box[]" and row.status == "ok"
    assert pd.isna(row.output_varies) and "did not change" not in row.message
    assert json.loads(row.missing)["output_varies"] == (
        "could not change inputs of type Boxed: constant-output check not run")


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: harness.bench(42, [1]), TypeError,
     "harness.bench: the first argument must be the callable to measure, got int"),
    (lambda: harness.bench(sorted, [1], adapters="gpu"), ValueError,
     "harness.bench: unknown adapter 'gpu'; valid: cpu, "),
    (lambda: harness.bench(sorted, [1], adapters=[]), ValueError,
     "harness.bench: adapters must name one adapter or more"),
    (lambda: harness.bench(sorted, [1], min_tim=1), TypeError,
     "harness.bench: unknown setting 'min_tim'; valid: min_time, max_time"),
    (lambda: harness.bench(sorted, [1], items=0), ValueError,
     "harness.bench: items must be a positive int, got 0"),
    (lambda: harness.bench(lambda xs: xs, [1], isolate=True), ValueError,
     "harness.bench: isolate=True, but the task cannot be sent to a worker: a lambda has no "
     "name a worker could import it by; pass isolate=False to measure it in this process"),
    (lambda: harness.bench(sorted, [1], isolate=False, repeat=2), ValueError,
     "harness.bench: repeat=2 runs each repetition in a fresh process, which needs a worker, "
     "but isolate=False"),
    (lambda: harness.bench(sorted, [1], reference="cuda"), ValueError,
     "harness.bench: reference 'cuda' is not among the adapters: cpu"),
])
def test_bad_input_is_one_line_raised_from_the_call(call: Any, error: type,
                                                    message: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error  # not a subclass the caller would have to know
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    frames = traceback.extract_tb(info.value.__traceback__)
    # The test, its lambda, harness.bench and the two of harness.adhoc that re-raise it:
    # nothing of the layers below, where it was found.
    assert len(frames) <= 5 and frames[-1].filename.endswith("harness/adhoc.py")


def test_a_read_only_out_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"^harness.bench: cannot create a run folder in "):
        harness.bench(sorted, [1], isolate=False, out=blocker / "results", **FAST)
