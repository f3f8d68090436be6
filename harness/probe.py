"""The changed-input probe's generic change: other inputs for which an honest computation gives
another answer, or the reason the probe cannot decide.

The probe (:func:`harness.execution.loop.output_varies`) runs a case again on changed inputs:
an output that does not move when every input moved is a cached or constant answer, and the row
says so. That accusation is only fair when every input really changed in *value*. A rotation
alone, which this change once was for lists, is invisible to anything that sorts, sums or
counts: ``sorted(xs)`` was accused on every run. So every change here moves values:

- **Inputs that hold tensors or NumPy arrays** (at any depth of lists, tuples and dicts): those
  are the data, and each is changed in value and in order: floating ones rolled by one position
  (flattened) and scaled and shifted, integers rolled *and* one element replaced (below),
  booleans flipped. A change of values alone can be as blind as a rotation alone: an order-
  preserving one leaves ``argsort`` and ``argmax`` where they were. The Python values
  beside them (a ``dim``, a flag, a tokenizer) are configuration and stay as they are: changed,
  they would mostly make the call invalid (a dimension out of range) rather than different.
- **Inputs without them**: the Python values are the data. Numbers are perturbed, strings and
  bytes changed, lists rolled by one position with their elements changed, tuples, sets and
  dict values (not keys) changed, recursively. ``None``, functions, classes and modules are left
  as they are. A value of any other type (an object of the user's class, a B-tree) cannot be
  changed here, and then the probe cannot decide: it says so, naming the type, rather than
  accuse a case whose data it never changed.

Integers and strings inside a container are often keys or indices, which must stay valid. So in
an integer tensor, and among a container's integers (or strings, or bytes), one element is
replaced by the next larger distinct value already present (the smallest after the largest):
every value still names a row or key that exists, while the multiset of values changes, which
sorting, summing and counting all see. Where all are equal there is no other value to take, and
the element is changed outright (an integer ``v`` to ``v - 1``, or ``v + 1`` at 0 or below).

A workload whose honest outputs can coincide under this change (lookups that all miss) supplies
its own ``Task.vary``.
"""

from __future__ import annotations

import math
import numbers
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

NOTHING = "the inputs hold nothing the probe knows how to change"


class Changed(NamedTuple):
    """The changed inputs, or None and the reason the probe cannot run."""

    inputs: tuple[Any, ...] | None
    reason: str = ""


def change(inputs: tuple[Any, ...]) -> Changed:
    """The inputs changed in value (see the module's docstring), or why they cannot be."""
    if holds_arrays(inputs):
        changed, moved = _arrays(inputs)
        return Changed(tuple(changed), "") if moved else Changed(None, NOTHING)
    unknown: list[str] = []
    out = [_value(item, unknown) for item in inputs]
    if unknown:
        kinds = ", ".join(dict.fromkeys(unknown))
        return Changed(None, f"could not change inputs of type {kinds}: constant-output check "
                             "not run")
    if not any(_data(item) for item in inputs):
        return Changed(None, NOTHING)
    return Changed(tuple(out), "")


def vary(inputs: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """:func:`change` in the shape of ``Task.vary``: the changed inputs, or None."""
    return change(inputs).inputs


# --- tensors and arrays: the data, where there are any -------------------------------------------


def _is_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # not imported: nothing can be a tensor
    return torch is not None and isinstance(obj, torch.Tensor)


def _is_array(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray) and obj.dtype.kind in "biufc"


def _any_leaf(obj: Any, test: Callable[[Any], bool]) -> bool:
    """Whether ``test`` holds for ``obj`` or for a value it holds in lists, tuples, sets or
    dicts (at any depth)."""
    if isinstance(obj, list | tuple | set | frozenset):
        return any(_any_leaf(item, test) for item in obj)
    if isinstance(obj, Mapping):
        return any(_any_leaf(item, test) for item in obj.values())
    return test(obj)


def holds_arrays(obj: Any) -> bool:
    """Whether ``obj`` is, or holds in lists, tuples, sets or dicts, a tensor or numeric array."""
    return _any_leaf(obj, lambda leaf: _is_tensor(leaf) or _is_array(leaf))


def _arrays(items: Any) -> tuple[Any, bool]:
    """``items`` with every tensor and array in it changed (containers rebuilt, their other
    values kept), and whether anything changed."""
    if _is_tensor(items):
        return (_tensor(items), True) if items.numel() > 0 else (items, False)
    if _is_array(items):
        return (_array(items), True) if items.size > 0 else (items, False)
    if isinstance(items, list | tuple | set | frozenset):
        pairs = [_arrays(item) for item in items]
        return _rebuild(items, [p[0] for p in pairs]), any(p[1] for p in pairs)
    if isinstance(items, Mapping) and holds_arrays(items):
        entries = {k: _arrays(v) for k, v in items.items()}
        rebuilt = _rebuild(items, {k: p[0] for k, p in entries.items()})
        return rebuilt, any(p[1] for p in entries.values())
    return items, False


def _tensor(x: Any) -> Any:
    import torch

    if x.dtype == torch.bool:
        return ~x
    flat = x.flatten().roll(1)
    if x.dtype.is_floating_point or x.dtype.is_complex:
        return (flat * 1.5 + 0.25).reshape(x.shape)
    distinct = torch.unique(flat)
    first = flat[0]
    if distinct.numel() > 1:
        larger = distinct[distinct > first]
        flat[0] = larger[0] if larger.numel() else distinct[0]
    else:
        flat[0] = first - 1 if bool(first > 0) else first + 1
    return flat.reshape(x.shape)


def _array(x: Any) -> Any:
    import numpy as np

    if x.dtype.kind == "b":
        return ~x
    flat = np.roll(x.reshape(-1), 1)
    if x.dtype.kind in "fc":
        return (flat * 1.5 + 0.25).reshape(x.shape)
    distinct = np.unique(flat)
    first = flat[0]
    if distinct.size > 1:
        larger = distinct[distinct > first]
        flat[0] = larger[0] if larger.size else distinct[0]
    else:
        flat[0] = first - 1 if first > 0 else first + 1
    return flat.reshape(x.shape)


# --- Python values: the data, where there are no arrays ------------------------------------------

#: left as they are, and no obstacle to the probe: not data.
_INERT = (types.NoneType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
          types.ModuleType, type)


def _data(obj: Any) -> bool:
    """Whether ``obj`` holds anything the change moves (not only inert values)."""
    return _any_leaf(obj, lambda leaf: not isinstance(leaf, _INERT))


def _is_bool(obj: Any) -> bool:
    np = sys.modules.get("numpy")  # NumPy's boolean is no bool, nor a number
    return isinstance(obj, bool) or (np is not None and isinstance(obj, np.bool_))


def _discrete(obj: Any) -> type | None:
    """The kind of a value that may be a key or an index (int, str or bytes), else None."""
    if _is_bool(obj):
        return None
    for kind in (numbers.Integral, str, bytes):
        if isinstance(obj, kind):
            return kind
    return None


def _other(obj: Any) -> Any:
    """A lone discrete value, changed outright."""
    value: Any = obj  # an Integral, str or bytes: the numbers ABCs declare no arithmetic
    if isinstance(obj, numbers.Integral):
        return value - 1 if value > 0 else value + 1
    return value + ("x" if isinstance(obj, str) else b"x")


def _value(obj: Any, unknown: list[str]) -> Any:
    """``obj`` changed; the names of types it could not change are added to ``unknown``."""
    if isinstance(obj, _INERT):
        return obj
    if _is_bool(obj):
        return not obj
    if _discrete(obj) is not None:
        return _other(obj)
    number: Any = obj  # the numbers ABCs declare no arithmetic
    if isinstance(obj, numbers.Real):
        return number * 1.5 + 0.25 if math.isfinite(number) else 0.0
    if isinstance(obj, numbers.Complex):
        return number * 1.5 + 0.25
    if isinstance(obj, bytearray):
        return obj + b"x"
    if isinstance(obj, list):
        return _rebuild(obj, _elements(obj[-1:] + obj[:-1], unknown))
    if isinstance(obj, tuple | set | frozenset):
        return _rebuild(obj, _elements(list(obj), unknown))
    if isinstance(obj, Mapping):
        keys = list(obj)
        return _rebuild(obj, dict(zip(keys, _elements([obj[k] for k in keys], unknown),
                                      strict=True)))
    unknown.append(type(obj).__qualname__)
    return obj


def _elements(items: list[Any], unknown: list[str]) -> list[Any]:
    """A container's elements changed: of its integers, strings and bytes, the first of each
    kind takes the next distinct value present (see the module's docstring); the rest are
    changed one by one."""
    out = list(items)
    firsts: dict[type, int] = {}
    for i, item in enumerate(items):
        kind = _discrete(item)
        if kind is None:
            out[i] = _value(item, unknown)
        elif kind not in firsts:
            firsts[kind] = i
    for kind, i in firsts.items():
        first = items[i]
        distinct = {item for item in items if _discrete(item) is kind}
        larger = [v for v in distinct if v > first]
        out[i] = min(larger) if larger else min(distinct) if len(distinct) > 1 else _other(first)
    return out


def _rebuild(like: Any, items: Any) -> Any:
    """A container of ``like``'s type holding ``items`` (a list, or a dict for a mapping)."""
    kind = type(like)
    if kind in (list, tuple, set, frozenset, dict):
        return kind(items)
    if isinstance(like, tuple) and hasattr(like, "_fields"):  # a named tuple
        return kind(*items)
    try:
        return kind(items)
    except Exception:  # a subclass whose constructor takes something else: its plain base
        for base in (dict, list, tuple, set, frozenset):
            if isinstance(like, base):
                return base(items)
        raise
