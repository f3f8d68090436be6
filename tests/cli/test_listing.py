"""``harness list``: a workload's description is its whole first sentence, wrapped, never cut."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.cli.listing import summary
from harness.workload import Task, workload


@workload({"n": [1, 2], "model_path": [""]})
def spread(n: int, model_path: str) -> Task:
    """Ordered-index lookups, point (value or -1) and range (count and sum of values in
    [lo, lo + width), ~32 keys): a B-tree vs. Python, e.g. Llama. A second
    sentence that the listing leaves out.

    A second paragraph."""
    raise NotImplementedError


@workload({"n": [1]})
def undocumented(n: int) -> Task:
    raise NotImplementedError


def test_the_first_sentence_is_whole_across_lines() -> None:
    assert summary(spread) == (
        "Ordered-index lookups, point (value or -1) and range (count and sum of values in "
        "[lo, lo + width), ~32 keys): a B-tree vs. Python, e.g. Llama.")
    assert spread.description.endswith("sum of values in")  # what the listing used to print


def test_a_workload_without_a_docstring_lists_without_a_description() -> None:
    assert summary(undocumented) == ""


def test_list_wraps_descriptions_to_the_terminal(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "72")
    assert main(["list", "workloads"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 72 or " " not in line.strip() for line in out.splitlines())
    # The B-tree workload's sentence runs over three source lines; all of it is printed.
    text = " ".join(out.split())
    assert "~32 keys): a C B-tree vs a sorted column vs the Eytzinger layout." in text
    assert 'model_path=""' in text
