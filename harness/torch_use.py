"""Whether a task's callable and inputs hold torch work, for telling plain Python functions apart.

A task whose ``fn`` and ``inputs`` hold no torch module, tensor or torch function is plain
Python (``sorted`` of a list, a dict lookup): adapters that compile a torch graph (XLA, ONNX)
would trace it into a constant, or fail to export it, so they skip it with the reason
(:attr:`harness.workload.Task.host_reason`). A user need not say so: this module looks.

What counts as holding torch, searched through containers at any depth:

1. a ``torch.Tensor``, a ``torch.nn.Module`` instance, or a subclass of either (a class the
   callable instantiates);
2. a function, builtin or module of torch itself (``torch.add``, the ``torch`` module a
   function calls through);
3. any of those inside a function's closure cells, defaults, or the globals its code names
   (so ``def f(x): return model(x)`` holds ``model``), a bound method's object, a
   ``functools.partial``'s function and arguments, or a callable object's attributes.

Sequences of plain scalars are skipped at C speed (a list of ten million ints costs about a
tenth of a second); the search visits at most :data:`BUDGET` other objects, beyond which it
answers "holds torch" (the former default: graph adapters try the task).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any

#: objects visited before the search gives up and assumes torch work.
BUDGET = 100_000
#: leaf types that hold nothing.
_PLAIN = (type(None), bool, int, float, complex, str, bytes, bytearray, range)


class _Found(Exception):
    """Raised inside the search when torch is found (unwinds the recursion at once)."""


def holds_torch(*objects: Any) -> bool:
    """Whether any of ``objects`` holds a torch tensor, module or function (see the module
    docstring for where it looks); False at once when torch was never imported."""
    torch = sys.modules.get("torch")
    if torch is None:  # nothing can hold a tensor of a library that is not loaded
        return False
    search = _Search(torch)
    try:
        for obj in objects:
            search.visit(obj)
    except _Found:
        return True
    return False


class _Search:
    """A depth-first walk with a visited set (cycles) and a budget (huge object graphs)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self.seen: set[int] = set()
        self.left = BUDGET

    def visit(self, obj: Any) -> None:
        stack = [obj]
        while stack:
            item = stack.pop()
            if isinstance(item, _PLAIN) or id(item) in self.seen:
                continue
            self.seen.add(id(item))
            self.left -= 1
            if self.left < 0 or self._is_torch(item):
                raise _Found
            stack.extend(self._children(item))

    def _is_torch(self, obj: Any) -> bool:
        torch = self.torch
        if isinstance(obj, torch.Tensor | torch.nn.Module):
            return True
        if isinstance(obj, type):
            return issubclass(obj, torch.Tensor | torch.nn.Module)
        if isinstance(obj, types.ModuleType):
            return _in_torch(obj.__name__)
        if isinstance(obj, types.BuiltinFunctionType | types.FunctionType):
            # torch.add is a builtin whose __module__ is torch (or None with a torch __self__).
            module = getattr(obj, "__module__", None) or ""
            owner = getattr(obj, "__self__", None)
            return _in_torch(module) or (isinstance(owner, types.ModuleType)
                                         and _in_torch(owner.__name__))
        return _in_torch(type(obj).__module__)  # torch.dtype, torch.device, ops' overloads

    def _children(self, obj: Any) -> Iterator[Any]:
        if isinstance(obj, list | tuple | set | frozenset):
            # Plain scalars only: nothing to look into (C speed, however long the sequence).
            if {type(item) for item in obj} <= set(_PLAIN):
                return
            yield from obj
        elif isinstance(obj, Mapping):
            yield from obj.keys()
            yield from obj.values()
        elif isinstance(obj, functools.partial):
            yield obj.func
            yield from obj.args
            yield from obj.keywords.values()
        elif isinstance(obj, types.MethodType):
            yield obj.__func__
            yield obj.__self__
        elif isinstance(obj, types.FunctionType):
            yield from _function_parts(obj)
        elif isinstance(obj, types.BuiltinFunctionType | types.MethodWrapperType):
            owner = obj.__self__  # a builtin method's object (``tensor.add``, ``xs.sort``)
            if not isinstance(owner, types.ModuleType):
                yield owner
        elif isinstance(obj, type | types.ModuleType):
            return  # a class or another library holds no task data of its own
        elif dataclasses.is_dataclass(obj):
            yield from (getattr(obj, f.name, None) for f in dataclasses.fields(obj))
        else:
            yield from _attributes(obj)


def _in_torch(module: str) -> bool:
    return module == "torch" or module.startswith("torch.")


def _function_parts(fn: types.FunctionType) -> Iterator[Any]:
    """What a Python function holds: closure cells, defaults, and the globals its code names."""
    for cell in fn.__closure__ or ():
        try:
            yield cell.cell_contents
        except ValueError:  # an empty cell (a name assigned after the closure was made)
            continue
    yield from fn.__defaults__ or ()
    yield from (fn.__kwdefaults__ or {}).values()
    for name in _names(fn.__code__):
        if name in fn.__globals__:
            yield fn.__globals__[name]


def _names(code: types.CodeType) -> set[str]:
    """Global (and attribute) names a code object and its nested functions use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _attributes(obj: Any) -> Iterator[Any]:
    """An instance's attributes (``__dict__`` and ``__slots__``), without calling properties."""
    yield from getattr(obj, "__dict__", {}).values()
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if isinstance(slot, str) and slot not in ("__dict__", "__weakref__"):
                try:
                    yield object.__getattribute__(obj, slot)
                except AttributeError:
                    continue
