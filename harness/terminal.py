"""Text for the terminal: strings that a case or a results file supplied, made inert.

An exception message, a case id or a field of a results file can carry terminal control
sequences (clear the screen, set the window title, move the cursor, rewrite a line with ``\\r``)
or Unicode direction overrides that make text read differently from what it is. Everything
printed that did not come from the harness itself goes through :func:`printable` first.
"""

from __future__ import annotations

import re

# C0 and C1 control characters (ESC, BEL, CR, LF, ... and the 8-bit CSI) and the Unicode
# bidirectional embeddings, overrides and isolates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` as a string with every control character written as an escape (``\\x1b``,
    ``\\n``): it prints on one line and the terminal interprets none of it."""
    return _CONTROL.sub(_escape, str(text))
