"""Reading hostile JSON: size, nesting and non-JSON constants are bounded problems, not crashes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import safe_json
from harness.safe_json import MAX_DEPTH, JSONProblem, lines, loads, max_bytes, read


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_is_bounded_whatever_the_recursion_limit() -> None:
    assert loads(nested(MAX_DEPTH)) is not None
    for depth in (MAX_DEPTH + 1, 500, 100_000):  # parsed then refused; or refused mid-parse
        with pytest.raises(JSONProblem, match=f"nests deeper than {MAX_DEPTH} levels"):
            loads(nested(depth))
    with pytest.raises(JSONProblem, match="nests deeper"):
        loads('{"a": ' * 70 + "1" + "}" * 70)


@pytest.mark.parametrize("text, message", [
    ("[NaN]", "holds NaN, which is not JSON"), ('{"x": -Infinity}', "holds -Infinity"),
    ("{", "is not JSON (Expecting property name"), ("9" * 5000, "is not usable JSON"),
    (b"\xff", "is not UTF-8 text (byte 1)"),
])
def test_what_is_not_json_is_a_problem_saying_what(text: str | bytes, message: str) -> None:
    with pytest.raises(JSONProblem, match=re.escape(message)):
        loads(text)


def test_the_size_limit_defaults_generously_and_takes_a_size(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(safe_json.MAX_BYTES_ENV, raising=False)
    assert max_bytes() == safe_json.DEFAULT_MAX_BYTES >= 64 * 2**20
    for raw, size in (("512", 512), ("4K", 4096), ("2M", 2 * 2**20), ("1GiB", 2**30),
                      ("1.5G", 3 * 2**29)):
        monkeypatch.setenv(safe_json.MAX_BYTES_ENV, raw)
        assert max_bytes() == size
    for raw in ("0", "0.1", "-5M", "lots"):
        monkeypatch.setenv(safe_json.MAX_BYTES_ENV, raw)
        with pytest.raises(JSONProblem, match="must be a size such as 512M"):
            max_bytes()


def test_lines_are_read_up_to_the_limit_only(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(safe_json.MAX_BYTES_ENV, "100")
    path = tmp_path / "f"
    path.write_bytes(b"a\r\n" + b"x" * 100 + b"\n\nlast")
    assert list(lines(path)) == [(1, b"a", True), (2, b"x" * 100, True), (3, b"", True),
                                 (4, b"last", False)]
    path.write_bytes(b"a\n" + b"x" * 101 + b"\n")
    with pytest.raises(JSONProblem, match="line 2 is longer than 100 bytes"):
        list(lines(path))
    path.write_bytes(b"[" + b" " * 100 + b"]")
    with pytest.raises(JSONProblem, match="is larger than 100 bytes"):
        read(path)
