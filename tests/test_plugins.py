"""Suites named by path: what is wrong with the path is said as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.plugins import PluginError, load_suite


@pytest.mark.parametrize(("make", "said"), [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: None, "does not exist"),
])
def test_a_suite_path_that_is_not_a_file_says_what_it_is(tmp_path: Path, make, said: str
                                                         ) -> None:
    path = tmp_path / "suite_dir"
    make(path)
    for spec in (str(path), f"{path}/"):
        with pytest.raises(PluginError) as raised:
            load_suite(spec)
        assert str(raised.value) == (f"suite file {spec!r} {said}: -s takes a .py file, a "
                                     "registered suite or a dotted module")
