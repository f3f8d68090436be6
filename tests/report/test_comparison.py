"""Comparison output: the terminal table's summary line and Markdown that cannot be injected."""

from __future__ import annotations

from typing import Any

from harness.compare import Comparison, ComparisonReport, GeoMean, Options
from harness.report.comparison import render_markdown, render_text


def report(*comparisons: Comparison, **extra: Any) -> ComparisonReport:
    return ComparisonReport(list(comparisons), {("s", "cpu"): GeoMean(1.1, 1.04, 1.15, 2)},
                            Options(), **extra)


SLOWER = Comparison("s", "s/w[x=1]", "cpu", "slower", ratio=1.2, ratio_low=1.1, ratio_high=1.3,
                    delta=0.05, baseline_median_s=1e-3, candidate_median_s=1.2e-3,
                    repetitions=(5, 5))
SAME = Comparison("s", "s/w[x=<b>|2]", "cpu", "same", ratio=1.0, ratio_low=0.99,
                  ratio_high=1.01, delta=0.05, baseline_median_s=1e-3,
                  candidate_median_s=1e-3, repetitions=(5, 5))


def test_text_lists_each_case_and_ends_with_the_summary() -> None:
    lines = render_text(report(SLOWER, SAME)).splitlines()
    assert lines[0].split()[:3] == ["case", "adapter", "verdict"]
    assert lines[2].split()[:8] == ["s/w[x=1]", "cpu", "slower", "1", "ms", "1.2", "ms",
                                    "+20.0%"]
    assert "+10.0% … +30.0%" in lines[2]
    assert lines[-1] == "1 confirmed regression (1 slower, 1 same)"


def test_markdown_folds_unchanged_cases_and_escapes_names() -> None:
    text = render_markdown(report(SLOWER, SAME), title="PR <i>#1</i>")
    assert text.startswith("## PR &lt;i&gt;#1&lt;/i&gt;\n")
    assert "**1 confirmed regression (1 slower, 1 same)**" in text
    assert "| s/w[x=1] | cpu | 🔴 slower |" in text
    assert "<details><summary>1 cases unchanged</summary>" in text
    assert "s/w[x=&lt;b&gt;&#124;2]" in text  # neither markup nor a table break
    assert "| s | cpu | +10.0% | +4.0% … +15.0% | 2 |" in text  # geomean and its interval


def test_a_candidate_missing_cases_fails_and_says_why() -> None:
    missing = Comparison("s", "s/w[x=3]", "cpu", "missing", note="only in the baseline")
    lines = render_text(report(SAME, missing, lost=(1, 2))).splitlines()
    assert lines[-1] == ("FAILED, missing: the candidate lacks 1 of the 2 cases the baseline "
                         "measured (at most 0% may be missing) (1 same, 1 missing)")
    text = render_markdown(report(SLOWER, missing, lost=(1, 2)))
    assert "**1 confirmed regression; FAILED, missing: the candidate lacks 1 of" in text


def test_an_ab_change_is_named_the_median_paired_change() -> None:
    paired = report(SLOWER, method="paired")
    assert render_text(paired).splitlines()[0].split()[5:8] == ["median", "paired", "change"]
    text = render_markdown(paired)
    assert "| median paired change |" in text
    assert "the change is the median of the paired ratios" in text
