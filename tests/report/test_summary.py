"""The summary a report opens with: the fastest backend per workload with its interval (or the
reason it has none), regressions of a comparison, failures and skips by cause, and each
limitation of the machine or a backend said once. Fake rows only: no harness run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.report.build import gather
from harness.report.summary import Speedup, speedup, summarize
from harness.report.warnings import find_warnings
from tests.report.test_build import (
    NO_RAPL,
    interleaved,
    ok_row,
    samples,
    three_backend_rows,
    write_run,
)


def labelled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as ``build`` hands them over: a chart label with the varying parameters."""
    return [{**row, "label": row["case_id"].split("/", 1)[1], "repetition": row.get(
        "repetition", 0)} for row in rows]


def summary_of(rows: list[dict[str, Any]], reference: str = "cpu") -> Any:
    rows = labelled(rows)
    return summarize(rows, find_warnings(rows), reference)


def test_speedups_say_their_interval_or_why_they_have_none() -> None:
    assert Speedup(2.1, 1.9, 2.3, True).text() == "2.1× (1.9–2.3)"
    assert Speedup(2.1, 1.9, 2.3, True).clear is True
    assert Speedup(1.02, 0.95, 1.1, True).text() == "~1.02× (0.95–1.1)"  # holds 1×
    assert Speedup(1.02, 0.95, 1.1, True).clear is False
    assert Speedup(4.0).text() == "4×" and Speedup(4.0).clear is None
    assert Speedup(4.0).how() == "not interleaved: ratio of medians, no interval"
    assert Speedup(2.1, 1.9, 2.3, True).how() == "interleaved, 95% interval"
    assert Speedup(2.1, interleaved=True).how() == "interleaved, too few generations for an " \
                                                   "interval"
    assert Speedup(2.0, repetitions=3).how() == "median of 3 repetitions' speedups: no interval"


def test_a_stored_speedup_counts_only_against_its_own_reference() -> None:
    base = ok_row("w", {"n": 1}, "cpu", 4e-3)
    row = interleaved(ok_row("w", {"n": 1}, "onnxruntime", 1e-3), 3.5, 3.0, 4.0)
    assert speedup(row, base, "cpu") == Speedup(3.5, 3.0, 4.0, True)
    # Measured against another adapter: this reference gets the medians' ratio, no interval.
    other = {**row, "speedup_reference": "xla-cpu"}
    assert speedup(other, base, "cpu") == Speedup(4.0)
    assert speedup(base, base, "cpu") is None  # the reference itself
    assert speedup(row | {"speedup": None}, {**base, "status": "error"}, "cpu") is None


def test_three_backends_answer_first_and_say_each_limitation_once(tmp_path: Path) -> None:
    s = gather([write_run(tmp_path, three_backend_rows())], plots=False).summary
    assert s.header == ("workload", "fastest", "speedup over cpu (95% interval)", "measured")
    gpt2, sort = s.fastest
    assert gpt2 == ("demo/gpt2", "onnxruntime on 2 of 3 cases; xla-cpu on 1",
                    "n=64: 2.1× (1.9–2.3); n=128: 2.1× (1.9–2.3); n=256: xla-cpu 1.05× "
                    "(1.01–1.09)", "interleaved, 95% interval")
    assert sort == ("demo/sort", "cpu", "only cpu has a result", "-")
    # The plain function's skip: one cause, both graph backends under it.
    (skipped,) = s.skipped
    assert skipped.text == "host-only task: no torch module or tensor to export"
    assert [(t.case, t.adapter) for t in skipped.rows] == [
        ("demo/sort[size=1000]", "onnxruntime"), ("demo/sort[size=1000]", "xla-cpu")]
    (failed,) = s.failed
    assert failed.kind == "error" and failed.adapters == ("onnxruntime",)
    # One line each for the machine's missing RAPL and the host backends' device memory.
    assert s.limitations == (
        f"energy empty: {NO_RAPL} — every case on every backend (cpu, onnxruntime, xla-cpu)",
        "peak device memory empty: the adapter has no device memory — every case on every "
        "backend (cpu, onnxruntime, xla-cpu)")
    assert not any(c.kind == "missing" for c in s.warnings)
    (low,) = s.warnings  # p90/p99 from 40 samples, on every row: one cause
    assert low.kind == "low-confidence" and len(low.rows) == 9  # every successful row
    assert low.scope == "every case on every backend (cpu, onnxruntime, xla-cpu)"


def test_medians_measured_apart_give_a_ratio_labelled_without_an_interval() -> None:
    s = summary_of([ok_row("w", {"n": 1}, "cpu", 4e-3), ok_row("w", {"n": 1}, "xla-cpu", 1e-3)])
    assert s.fastest == (("demo/w", "xla-cpu", "4×",
                          "not interleaved: ratio of medians, no interval"),)


def test_when_the_reference_is_fastest_the_runner_up_is_given() -> None:
    rows = [interleaved(ok_row("w", {"n": 1}, "cpu", 1e-3), None),
            interleaved(ok_row("w", {"n": 1}, "onnxruntime", 2e-3), 0.5, 0.45, 0.55),
            interleaved(ok_row("w", {"n": 1}, "xla-cpu", 4e-3), 0.25, 0.2, 0.3)]
    (line,) = summary_of(rows).fastest
    assert line[1:3] == ("cpu", "cpu fastest; next onnxruntime at 0.5× (0.45–0.55)")


def test_repetitions_give_the_median_speedup_without_an_interval() -> None:
    rows = [row for rep, ratio in enumerate((2.0, 3.0, 4.0)) for row in (
        ok_row("w", {"n": 1}, "cpu", 4e-3, repetition=rep),
        ok_row("w", {"n": 1}, "xla-cpu", 4e-3 / ratio, repetition=rep))]
    (line,) = summary_of(rows).fastest
    assert line == ("demo/w", "xla-cpu", "3×", "median of 3 repetitions' speedups: no interval")


def test_a_backend_that_failed_its_check_is_never_the_fastest() -> None:
    rows = [ok_row("w", {"n": 1}, "cpu", 4e-3),
            ok_row("w", {"n": 1}, "xla-cpu", 1e-3, correct=False, message="max abs diff 3")]
    s = summary_of(rows)
    assert s.fastest == (("demo/w", "cpu", "only cpu has a result (xla-cpu failed the check)",
                          "-"),)
    assert [(c.kind, c.text) for c in s.failed] == [("check", "max abs diff 3")]


def test_one_backend_gives_its_medians() -> None:
    rows = [ok_row("w", {"n": n}, "cpu", 1e-3 * n) for n in (1, 2, 3, 4)]
    s = summary_of(rows)
    assert s.header == ("workload", "backend", "median ± 95% CI")
    assert s.fastest == (("demo/w", "cpu", "n=1: 1 ms ±1.0%; n=2: 2 ms ±1.0%; n=3: 3 ms ±1.0%; "
                                           "and 1 more in the tables"),)
    # With one backend, "every backend" would say nothing: the scope is every case.
    assert s.limitations[0] == f"energy empty: {NO_RAPL} — every case"


def test_many_cases_give_the_range_of_the_winner() -> None:
    rows = [row for n, ratio in enumerate((1.5, 2.0, 2.5, 3.0)) for row in (
        ok_row("w", {"n": n}, "cpu", 4e-3), ok_row("w", {"n": n}, "xla-cpu", 4e-3 / ratio))]
    (line,) = summary_of(rows).fastest
    assert line[1:3] == ("xla-cpu on 4 of 4 cases", "1.5× to 3× over cpu across 4 cases; each "
                                                    "case's interval is in its table")


def ab_rows(slowdown: float) -> list[dict[str, Any]]:
    """An A/B run (``harness ab``): each case's baseline and candidate sides, the candidate's
    samples in another order so that the pairs' ratios vary as measured ones do."""
    rows = []
    for n in (1, 2):
        for variant, median in (("baseline", 1e-3), ("candidate", 1e-3 * slowdown)):
            ramp = samples(median, n=200, spread=0.01)
            ordered = ramp if variant == "baseline" else ramp[1::2] + ramp[::2]
            rows.append(ok_row("w", {"n": n}, "cpu", median, variant=variant,
                               samples_s=ordered))
    return rows


def test_an_ab_run_opens_with_its_confirmed_regressions(tmp_path: Path) -> None:
    report = gather([write_run(tmp_path, ab_rows(1.3))], plots=False)
    s = report.summary
    assert s.comparison.startswith("2 confirmed regressions (2 slower)")
    assert s.comparison.endswith("A/B run, samples paired")
    assert [r[:3] for r in s.regressions] == [("demo/w[n=1]", "cpu", "+30.0%"),
                                             ("demo/w[n=2]", "cpu", "+30.0%")]
    # The two sides are columns of their own, the candidate's speedup against the baseline.
    assert report.tables[0].adapters == ("cpu [baseline]", "cpu [candidate]")
    assert report.reference == "cpu [baseline]"
    same = gather([write_run(tmp_path, ab_rows(1.0))], plots=False).summary
    assert same.comparison.startswith("no confirmed regression") and same.regressions == ()


def test_a_baseline_gives_the_comparison_and_none_without_one(tmp_path: Path) -> None:
    rows = [ok_row("w", {"n": 1}, "cpu", 1e-3, samples_s=samples(1e-3, n=200, spread=0.01))]
    base = write_run(tmp_path, rows, started="2026-01-01T00:00:00+00:00")
    slower = [{**rows[0], "latency_median_s": 2e-3, "samples_s": samples(2e-3, n=200,
                                                                          spread=0.01)}]
    candidate = write_run(tmp_path, slower)
    s = gather([candidate], plots=False, baseline=[base]).summary
    assert s.comparison == ("1 confirmed regression (1 slower); against the baseline, run by "
                            "run")
    assert s.regressions[0][:3] == ("demo/w[n=1]", "cpu", "+100.0%")
    assert gather([candidate], plots=False).summary.comparison == ""


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_both_formats_carry_the_same_summary(tmp_path: Path, fmt: str) -> None:
    from harness.report.build import write_report

    run = write_run(tmp_path / "results", three_backend_rows())
    text = write_report([run], tmp_path / f"r.{fmt}").read_text(encoding="utf-8")
    first = text.index("Fastest backend per workload" if fmt == "html" else "## Summary")
    for said in ("onnxruntime on 2 of 3 cases; xla-cpu on 1", "host-only task: no torch module",
                 "every case on every backend (cpu, onnxruntime, xla-cpu)"):
        assert first < text.index(said) < text.index("Results")
    # Said once for the machine, however many backends lack the figure.
    assert text.count(NO_RAPL) == 1 + (fmt == "html") * text.count(f'title="{NO_RAPL}"')


def test_the_report_command_takes_a_baseline(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    rows = [ok_row("w", {"n": 1}, "cpu", 1e-3, samples_s=samples(1e-3, n=200, spread=0.01))]
    base = write_run(tmp_path, rows, started="2026-01-01T00:00:00+00:00")
    candidate = write_run(tmp_path, [{**rows[0], "latency_median_s": 2e-3,
                                      "samples_s": samples(2e-3, n=200, spread=0.01)}])
    out = tmp_path / "r.md"
    assert main(["report", str(candidate), "--baseline", str(base), "-o", str(out)]) == 0
    summary = out.read_text(encoding="utf-8").split("## Warnings", 1)[0]
    assert "**Comparison: 1 confirmed regression (1 slower); against the baseline" in summary
    assert "| demo/w\\[n=1\\] | cpu | +100.0% |" in summary
    capsys.readouterr()
    assert main(["report", str(candidate), "--baseline", "nope", "-o", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "'nope' is neither a path nor a baseline" in error and "\n" not in error
