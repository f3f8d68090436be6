"""Terminal text: control characters from cases and results files are escaped, not obeyed."""

from __future__ import annotations

import pytest

from harness.terminal import printable


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clear the screen, cursor home
    ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # set the window title
    ("ok\rFAIL", "ok\\rFAIL"),  # rewrite the line
    ("two\nlines\there", "two\\nlines\\there"),
    ("\x9b31m", "\\x9b31m"),  # the 8-bit CSI
    ("abc\u202edcba", "abc\\u202edcba"),  # right-to-left override
    ("\x00\x7f", "\\x00\\x7f"),
])
def test_control_characters_are_written_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_ordinary_text_is_left_alone() -> None:
    text = "bert[seq=128] on cpu: 1.23 µs, 2.31×, ±3.0% — ok"
    assert printable(text) == text
    assert printable(ValueError("x")) == "x"
