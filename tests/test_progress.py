"""Progress: one plain line per case off a terminal; on one, a bar with an estimate of the time
left, drawn only when a case starts or ends."""

from __future__ import annotations

import io
from typing import Any

import pytest

from harness import progress as progress_module
from harness.plan import AdapterSpec
from harness.progress import Progress, clock, estimate_left
from harness.workload import Case, Task, workload


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@workload({"n": [1, 2, 3]})
def w(n: int) -> Task:
    return Task(fn=lambda: None)


CASES = [Case("s", w, {"n": n}) for n in (1, 2, 3)]
SPEC = AdapterSpec("cpu", {"threads": 1})


def row(case: Case, **extra: Any) -> dict[str, Any]:
    return {"case_id": case.id, "adapter": "cpu", "adapter_label": SPEC.label, "status": "ok",
            "latency_median_s": 1e-3, **extra}


def test_clock_and_estimate() -> None:
    assert (clock(5), clock(75.4), clock(3725)) == ("0:05", "1:15", "1:02:05")
    assert estimate_left(10.0, 0, 4) is None  # nothing done: nothing to estimate from
    assert estimate_left(10.0, 2, 4) == 20.0  # 5 s a case, 4 to go


def test_off_a_terminal_one_plain_line_per_case_with_the_adapter_label() -> None:
    stream = io.StringIO()
    bar = Progress(3, stream)
    bar.start(CASES[0], SPEC, 1, 3)
    bar.done(row(CASES[0]), 1, 3)
    bar.finish()
    assert stream.getvalue() == "[1/3] ok      s/w[n=1] on cpu:threads=1 1 ms\n"


def test_on_a_terminal_the_bar_shows_an_estimate_of_the_time_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    now = [100.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    stream = Terminal()
    bar = Progress(3, stream)
    bar.begin(0, 1, 3, 0)
    bar.start(CASES[0], SPEC, 1, 3)
    assert "0/3  0:00 elapsed  time left: estimating" in stream.getvalue()
    assert "s/w[n=1] on cpu:threads=1" in stream.getvalue()  # brackets are not rich markup
    now[0] += 30
    bar.done(row(CASES[0]), 1, 3)
    assert bar.status(3) == "1/3  0:30 elapsed  ~1:00 left (estimate)"
    assert "~1:00 left (estimate)" in stream.getvalue()
    bar.finish()
    assert bar._bar is None  # taken off the terminal


def test_a_narrow_terminal_cuts_the_case_name_not_the_figures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    stream = Terminal()
    bar = Progress(3, stream)
    bar.start(Case("s", w, {"n": 1}), AdapterSpec("onnxruntime"), 1, 3)
    assert "0/3  0:00 elapsed  time left: estimating" in stream.getvalue()
    assert "…" in stream.getvalue()
    bar.finish()


def test_a_resumed_pass_counts_only_the_cases_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    stream = Terminal()
    bar = Progress(3, stream)
    bar.begin(0, 1, 3, 2)
    assert "2 of 3 case(s) already in the run folder" in stream.getvalue()
    bar.start(CASES[2], SPEC, 3, 3)
    now[0] = 12
    bar.done(row(CASES[2]), 3, 3)
    assert bar.status(3) == "1/1  0:12 elapsed  ~0:00 left (estimate)"
    bar.finish()


def test_an_interleaved_case_shows_every_adapter_it_runs_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    stream = Terminal()
    bar = Progress(2, stream)
    bar.start(CASES[0], SPEC, 1, 2)
    bar.start(CASES[0], AdapterSpec("onnxruntime"), 2, 2)
    assert "s/w[n=1] on cpu:threads=1, onnxruntime" in stream.getvalue()
    bar.finish()
