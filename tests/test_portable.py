"""A bench task travels to workers pickled, beside a generated suite; what cannot travel is
refused with the reason while pickling, never discovered as a worker's failure."""

from __future__ import annotations

import functools
import math
import operator
from pathlib import Path

import pytest

from harness import plugins
from harness.portable import (
    NotPortable,
    TaskSpec,
    importable,
    pickled,
    why_not_portable,
    write_suite,
)
from harness.workload import Case


def add_one(xs: list[int]) -> list[int]:
    return [x + 1 for x in xs]


def test_builtins_and_importable_functions_travel() -> None:
    assert pickled(TaskSpec(sorted, ([3, 1],)))
    assert pickled(TaskSpec(functools.partial(math.fsum), ([0.5],)))
    assert pickled(TaskSpec(operator.add, (1, 2)))
    assert importable("harness") and importable("math") and importable("torch")
    assert not importable("no_such_module_anywhere")


def test_what_a_worker_could_not_import_is_refused_with_the_reason() -> None:
    def local(xs: list[int]) -> list[int]:
        return xs

    with pytest.raises(NotPortable, match="a lambda has no name a worker could import it by"):
        pickled(TaskSpec(lambda xs: xs, ([1],)))
    with pytest.raises(NotPortable, match=r"local is defined inside a function"):
        pickled(TaskSpec(local, ([1],)))
    with pytest.raises(NotPortable, match="it cannot be pickled"):
        pickled(TaskSpec(sorted, ((x for x in [1]),)))  # a generator: pickle refuses it
    main = type("Main", (), {"__module__": "__main__", "__qualname__": "Main"})
    assert why_not_portable(main) == "Main is defined in __main__ (a notebook or a script)"


def test_the_generated_suite_rebuilds_the_task_and_its_check(tmp_path: Path) -> None:
    spec = TaskSpec(add_one, ([1, 2],), {"items": 2}, expected=([2, 3],))
    module = write_suite(tmp_path / "task", "bench", "add_one", {"n": 2}, pickled(spec))
    suite = plugins.load_suite(str(module))
    assert suite.name == "bench" and list(suite.workloads) == ["add_one"]
    case = Case(suite.name, suite.workloads["add_one"], {"n": 2})
    assert case.id == "bench/add_one[n=2]"
    task = case.build()
    assert task.items == 2 and task.fn(*task.inputs) == [2, 3]
    assert task.check is not None
    task.check([2, 3])
    with pytest.raises(AssertionError, match=r"the output differs from the expected one: got "
                                             r"\[2, 4\], expected \[2, 3\]"):
        task.check([2, 4])
