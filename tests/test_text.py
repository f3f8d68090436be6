"""Shared text helpers: a message's first line and an installed package's version."""

from __future__ import annotations

from harness.text import first_line, package_version


def test_first_line_skips_blank_lines_and_strips() -> None:
    assert first_line("\n   \n  error: no device  \nsecond line") == "error: no device"
    assert first_line("") == ""
    assert first_line(ValueError("bad\nvalue")) == "bad"


def test_first_line_marks_a_cut_with_an_ellipsis() -> None:
    assert first_line("x" * 10, limit=10) == "x" * 10
    assert first_line("x" * 11, limit=10) == "x" * 9 + "…"


def test_package_version_of_an_installed_and_a_missing_distribution() -> None:
    import pytest as installed

    assert package_version("pytest") == installed.__version__
    assert package_version("no-such-distribution-here") is None
