"""The probe's generic change moves values, not only their order, and says when it cannot decide."""

from __future__ import annotations

from collections import Counter, namedtuple
from typing import Any

import numpy as np
import pytest
import torch

from harness.checks import vary
from harness.probe import NOTHING, change


def changed(*inputs: Any) -> tuple[Any, ...]:
    result = change(inputs)
    assert result.inputs is not None, result.reason
    assert result.reason == ""
    return result.inputs


@pytest.mark.parametrize("data", [[3.5, 1.25, 2.0], [3, 1, 2, 2], ["pear", "fig", "apple"],
                                  [b"b", b"a"], [[2, 1], [4, 3]]])
def test_sorting_sees_every_change_of_a_list(data: list[Any]) -> None:
    # A rotation alone left sorted(xs) as it was: the case was called constant on every run.
    (other,) = changed(data)
    assert sorted(other) != sorted(data)


def test_list_keys_stay_among_the_values_present() -> None:
    # Keys and indices must stay valid: one is replaced by the next larger value present.
    keys = [7, 3, 9, 3]
    (other,) = changed(keys)
    assert set(other) <= set(keys) and Counter(other) != Counter(keys)
    assert other == [7, 7, 3, 9]  # rolled to [3, 7, 3, 9], then the first 3 takes the next: 7
    assert changed([5, 5]) == ([4, 5],)  # one value only: changed outright


def test_dict_values_change_and_keys_stay() -> None:
    (other,) = changed({"a": 1.0, "b": 2.0, "c": "x"})
    assert list(other) == ["a", "b", "c"]
    assert other["a"] != 1.0 and other["b"] != 2.0 and other["c"] != "x"


def test_scalars_tuples_and_named_tuples_change_in_value() -> None:
    point = namedtuple("point", "x y")
    assert changed(20) == (19,)
    assert changed(0) == (1,)
    assert changed(True) == (False,)
    assert changed("hi") == ("hix",)
    assert changed(2.0) == (3.25,)
    (moved,) = changed(point(1, 2))
    assert isinstance(moved, point) and moved == point(2, 2)


@pytest.mark.parametrize("fn", [torch.argsort, torch.argmax, torch.sort, torch.sum])
def test_a_float_tensor_changes_in_order_and_value(fn: Any) -> None:
    # Scaling and shifting alone keeps the order: argsort and argmax were called constant.
    x = torch.tensor([0.5, -1.0, 2.0, 0.25])
    (other,) = changed(x)
    out, out2 = fn(x), fn(other)
    same = all(torch.equal(a, b) for a, b in zip(out, out2, strict=True)) if isinstance(
        out, tuple) else torch.equal(out, out2)
    assert not same


def test_an_integer_tensor_keeps_its_values_in_range() -> None:
    ids = torch.tensor([[4, 1], [3, 2]])
    (other,) = changed(ids)
    assert other.shape == ids.shape and other.dtype == ids.dtype
    assert set(other.flatten().tolist()) <= set(ids.flatten().tolist())
    assert not torch.equal(torch.sort(other.flatten()).values, torch.sort(ids.flatten()).values)
    mask = torch.ones(2, 3, dtype=torch.long)  # one value: one element changed outright
    (other_mask,) = changed(mask)
    assert int(other_mask.sum()) == 5 and set(other_mask.flatten().tolist()) == {0, 1}


def test_tensors_are_the_data_and_python_values_beside_them_stay() -> None:
    x = torch.rand(3, 4)
    other, dim, flag = changed(x, 1, "mean")
    assert not torch.equal(other, x) and (dim, flag) == (1, "mean")
    (nested,) = changed({"ids": torch.tensor([1, 2, 3]), "n": 3})
    assert nested["n"] == 3 and not torch.equal(nested["ids"], torch.tensor([1, 2, 3]))


def test_numpy_arrays_change_like_tensors() -> None:
    a = np.array([1.0, 2.0, 3.0])
    (other,) = changed(a)
    assert np.argmax(other) != np.argmax(a)
    (ints,) = changed(np.array([1, 2, 3]))
    assert sorted(ints.tolist()) != [1, 2, 3] and set(ints.tolist()) <= {1, 2, 3}
    (flags,) = changed(np.array([True, False]))
    assert flags.tolist() == [False, True]


class Opaque:
    pass


def test_a_type_it_cannot_change_is_said_not_accused() -> None:
    result = change((Opaque(), [1, 2]))
    assert result.inputs is None
    assert result.reason == ("could not change inputs of type Opaque: constant-output check "
                             "not run")
    assert change(([Opaque()],)).reason.startswith("could not change inputs of type Opaque")


def test_nothing_to_change_says_so() -> None:
    assert change(()) == (None, NOTHING)
    assert change((None, len)) == (None, NOTHING)
    assert change((torch.empty(0),)) == (None, NOTHING)


def test_the_task_vary_shape_is_kept() -> None:
    assert vary(([3, 1, 2],)) == ([3, 3, 1],)
    assert vary((Opaque(),)) is None
