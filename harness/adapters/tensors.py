"""Moving a task's callable and inputs to a torch device, and copying outputs, without touching
the task's own objects (its correctness check may still use them on the host); and the one
tensor of a structured output (a Hugging Face ``ModelOutput``) that every adapter checks."""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import Any

#: Fields of a structured output taken before any other, in this order: what a Hugging Face
#: base model (``last_hidden_state``) or a model with a head (``logits``) computes.
PRIMARY_FIELDS = ("last_hidden_state", "logits")


def primary_output(output: Any) -> tuple[Any, str]:
    """The tensor a structured output stands for, and which field it is; ``(output, "")`` for
    any other output.

    A Hugging Face model returns a ``ModelOutput`` (a dataclass that is also an ordered
    dict), which holds its result beside a cache, attentions or a loss: not a value a JAX
    program may return, nor one ONNX can export (the cache). Structured outputs (a
    ``Mapping`` or a dataclass instance) with tensor fields stand for one tensor, the same on
    every adapter: ``last_hidden_state``, else ``logits``, else the first tensor field. The
    field comes back as ``Type.field`` (``Type['key']`` for a mapping), for the row to say.
    Tuples and lists are left whole: they are plain multiple outputs.
    """
    torch = sys.modules.get("torch")
    if torch is None or isinstance(output, torch.Tensor | tuple | list):
        return output, ""
    if isinstance(output, Mapping):
        fields = list(output.items())
        # ModelOutput is a dataclass too, but reads as an attribute; plain dicts by key.
        name = "{type}.{field}" if dataclasses.is_dataclass(output) else "{type}[{field!r}]"
    elif dataclasses.is_dataclass(output) and not isinstance(output, type):
        fields = [(f.name, getattr(output, f.name, None)) for f in dataclasses.fields(output)]
        name = "{type}.{field}"
    else:
        return output, ""
    tensors = {key: value for key, value in fields if isinstance(value, torch.Tensor)}
    if not tensors:
        return output, ""
    field = next((key for key in PRIMARY_FIELDS if key in tensors), next(iter(tensors)))
    return tensors[field], name.format(type=type(output).__name__, field=field)


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
