"""Shared value parsers of the command line: --precision and the thresholds read 2, 2% and
0.02 alike."""

from __future__ import annotations

import pytest

from harness.cli import build_parser, main


@pytest.mark.parametrize("text", ["2", "2%", "0.02", "2.0", " 2% "])
def test_precision_reads_a_percent_or_a_fraction(text: str) -> None:
    args = build_parser().parse_args(["run", "--precision", text])
    assert args.precision == pytest.approx(0.02)


@pytest.mark.parametrize("text", ["100", "0", "abc", "150%"])
def test_a_bad_precision_is_one_line_that_states_the_rule(
        text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--precision", text]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "--precision: expected a percentage such as 2, 2% or 0.02 (a number of 1 or more " \
           "is a percent, below 1 a fraction" in err


@pytest.mark.parametrize(("text", "value"), [("5", 0.05), ("5%", 0.05), ("0.05", 0.05),
                                             ("0", 0.0), ("150%", 1.5), ("0.5%", 0.005)])
def test_thresholds_read_by_the_precision_rule(text: str, value: float) -> None:
    args = build_parser().parse_args(["compare", "a", "b", "--threshold", text])
    assert args.threshold == pytest.approx(value)


def test_a_bad_threshold_states_the_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ab", "suite.py", "--max-missing", "lots"]) == 2
    assert "a number of 1 or more is a percent" in capsys.readouterr().err
