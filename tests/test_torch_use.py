"""Telling plain Python functions from torch work: where torch is looked for, and where not."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from harness import torch_use
from harness.torch_use import holds_torch

MODEL = torch.nn.Linear(2, 2)
WEIGHT = torch.ones(2)


def plain_sort(xs: list[float]) -> list[float]:
    return sorted(xs)


def through_global_model(x: Any) -> Any:
    return MODEL(x)


def through_torch(n: int) -> Any:
    return torch.arange(n).sum()


def calls_a_helper(x: Any) -> Any:
    return through_global_model(x)


@dataclass
class Holder:
    value: Any


class Slotted:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class CallableObject:
    def __init__(self, weight: Any) -> None:
        self.weight = weight

    def __call__(self, x: Any) -> Any:
        return x


@pytest.mark.parametrize("objects", [
    (sorted, ([3, 1, 2],)),
    (plain_sort, (list(range(1000)),)),
    (len, ({"a": [1, 2], "b": (3.0, "x")},)),
    (functools.partial(sorted, reverse=True), ([1.0],)),
    ([].append, ()),  # a builtin method of a plain object
    (CallableObject(weight=[1, 2]), (Holder(value=Slotted(3)),)),
], ids=["builtin", "function", "nested-plain-inputs", "partial", "builtin-method", "objects"])
def test_plain_python_holds_no_torch(objects: tuple[Any, ...]) -> None:
    assert not holds_torch(*objects)


@pytest.mark.parametrize("objects", [
    (torch.add, (1, 2)),  # torch's own builtin, scalar inputs
    (MODEL, ()),  # a module
    (MODEL.forward, ()),  # a bound method of one
    (through_global_model, (1.0,)),  # a global the code names
    (calls_a_helper, (1.0,)),  # ... through a helper function
    (through_torch, (8,)),  # the torch module itself, called through
    (lambda x: x, ({"deep": [(1, Holder(value=[WEIGHT]))]},)),  # a tensor deep in the inputs
    (functools.partial(sorted, key=lambda v, w=WEIGHT: v), ([1],)),  # a default in a partial
    (CallableObject(weight=WEIGHT), ()),  # a callable object's attribute
    (sorted, (Slotted(WEIGHT),)),  # a slot
    (WEIGHT.add, (1,)),  # a tensor's builtin method
    (lambda cls: cls(2, 2), (torch.nn.Linear,)),  # a module class, instantiated by the call
], ids=["torch-builtin", "module", "bound-method", "global", "helper", "torch-module",
        "deep-input", "partial-default", "callable-object", "slot", "tensor-method", "class"])
def test_torch_is_found_wherever_it_is_held(objects: tuple[Any, ...]) -> None:
    assert holds_torch(*objects)


def test_a_closure_over_a_module_holds_torch() -> None:
    model = torch.nn.ReLU()

    def closed(x: Any) -> Any:
        return model(x)

    assert holds_torch(closed, (1.0,))


def test_cycles_end() -> None:
    loop: list[Any] = []
    loop.append(loop)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    assert not holds_torch(sorted, (loop, cyclic))


def test_a_huge_object_graph_is_assumed_torch_work(monkeypatch: pytest.MonkeyPatch) -> None:
    # Past the budget the search stops and keeps the former default: graph adapters try it.
    monkeypatch.setattr(torch_use, "BUDGET", 10)
    assert holds_torch(sorted, ([Holder(i) for i in range(20)],))
    # Scalars in sequences cost nothing from the budget, however many.
    assert not holds_torch(sorted, (list(range(100_000)),))


def test_without_torch_loaded_nothing_holds_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch")
    assert not holds_torch(sorted, ([1, 2],))
