"""Moving a task's callable and inputs to a torch device, and copying outputs, without touching
the task's own objects (its correctness check may still use them on the host)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any


def to_device(obj: Any, device: Any) -> Any:
    """``obj`` with every tensor moved to ``device``, through tuples, lists and dicts.

    Returns new containers and leaves ``obj`` alone; non-tensor leaves are kept as they are.
    """
    return _map_tensors(obj, lambda tensor: tensor.to(device))


def snapshot(obj: Any) -> Any:
    """``obj`` with every tensor cloned (where it is), through tuples, lists and dicts."""
    return _map_tensors(obj, lambda tensor: tensor.clone())


def _map_tensors(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """``obj`` rebuilt with ``fn`` applied to each tensor in it, containers' types kept."""
    import torch

    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple):
        items = [_map_tensors(item, fn) for item in obj]
        # A named tuple is rebuilt from fields; a plain tuple (or subclass) from an iterable.
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, list):
        return [_map_tensors(item, fn) for item in obj]
    if isinstance(obj, Mapping):
        moved = {key: _map_tensors(value, fn) for key, value in obj.items()}
        if type(obj) is dict:
            return moved
        try:  # keep the mapping's own type (OrderedDict, a model's output class) where it can
            rebuilt: Any = type(obj)(moved)  # type: ignore[call-arg]
        except Exception:
            return moved
        return rebuilt
    return obj


def place(fn: Any, inputs: tuple[Any, ...], device: Any) -> tuple[Any, tuple[Any, ...]]:
    """``fn`` and ``inputs`` on ``device``, leaving the task's originals where they are.

    ``nn.Module.to`` moves parameters in place, and a task's correctness check may still use
    its module on the host (the ffn reference reads the block's weights), so a module is
    deep-copied first. Other callables are used as they are.
    """
    import torch

    if isinstance(fn, torch.nn.Module):
        fn = copy.deepcopy(fn).to(device).eval()
    return fn, tuple(to_device(inputs, device))
