"""Exporting a task to ONNX, and the on-disk cache key of an export.

The key digests everything that shapes the exported graph (the callable's code, closure and
weights, the tensor inputs' shapes and dtypes, constant inputs, the task's facts, the exporter's
versions) so that a cached model is reused only for the same graph; :func:`export` writes one
atomically. Used by :mod:`harness.adapters.onnx`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import marshal
import os
import re
import shutil
import tempfile
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.adapters.tensors import primary_output
from harness.text import package_version
from harness.workload import Skip

#: Bumped whenever the way a case is exported changes, so older cache entries are not reused
#: (2: a structured output exports the one tensor it stands for).
EXPORT_VERSION = 2
MODEL_FILE = "model.onnx"
#: Beside the model: which field of a structured output the graph returns (JSON).
OUTPUT_FILE = "output.json"
_MISSING_OP = re.compile(r"No ONNX function found for <OpOverload\(op='([\w.]+)', "
                         r"overload='(\w+)'\)>")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

# --- the cache key: everything that shapes the exported graph --------------------------------


def is_constant(value: Any) -> bool:
    """A non-tensor input that can be baked into the graph: scalars, and tuples/lists of them."""
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, tuple | list):
        return all(is_constant(item) for item in value)
    return False


class _Digest:
    """Feeds a description of tasks' callables and data into one hash.

    Functions contribute their code, closure cells, defaults and the Python functions they call
    by global name (so an edited helper invalidates the cache); modules their class layout,
    ``config`` and every parameter's and buffer's shape, dtype and content; tensors their shape,
    dtype and content. Other objects contribute their type and ``repr`` without memory addresses.
    """

    def __init__(self) -> None:
        self.hash = hashlib.blake2b(digest_size=16)
        self._seen: set[int] = set()

    def text(self, *parts: Any) -> None:
        for part in parts:
            self.hash.update(str(part).encode())
            self.hash.update(b"\0")

    def tensor(self, tensor: Any, content: bool = True) -> None:
        import torch

        self.text("tensor", tuple(tensor.shape), tensor.dtype)
        if content:
            flat = tensor.detach().to("cpu").contiguous().reshape(-1)
            self.hash.update(flat.view(torch.uint8).numpy().data)

    def value(self, obj: Any) -> None:
        import torch

        if obj is None or isinstance(obj, bool | int | float | str | bytes):
            self.text(type(obj).__name__, repr(obj))
        elif isinstance(obj, torch.Tensor):
            self.tensor(obj)
        elif isinstance(obj, tuple | list):
            self.text(type(obj).__name__, len(obj))
            for item in obj:
                self.value(item)
        elif isinstance(obj, dict):
            self.text("dict", len(obj))
            for key in sorted(obj, key=repr):
                self.text(repr(key))
                self.value(obj[key])
        elif id(obj) in self._seen:  # recursion (a function calling itself, a module cycle)
            self.text("seen", type(obj).__qualname__)
        elif isinstance(obj, torch.nn.Module):
            self._seen.add(id(obj))
            self.module(obj)
        elif isinstance(obj, functools.partial):
            self._seen.add(id(obj))
            self.text("partial")
            self.value(obj.func)
            self.value(obj.args)
            self.value(dict(obj.keywords))
        elif isinstance(obj, types.FunctionType):
            self._seen.add(id(obj))
            self.function(obj)
        elif isinstance(obj, types.MethodType):
            self._seen.add(id(obj))
            self.value(obj.__func__)
            self.value(obj.__self__)
        else:
            kind = type(obj)
            self.text(kind.__module__, kind.__qualname__, _ADDRESS.sub("", repr(obj)))

    def function(self, fn: types.FunctionType) -> None:
        self.text("function", fn.__module__, fn.__qualname__)
        self.hash.update(marshal.dumps(fn.__code__))
        self.value(fn.__defaults__)
        self.value(dict(fn.__kwdefaults__ or {}))
        for cell in fn.__closure__ or ():
            try:
                contents = cell.cell_contents
            except ValueError:  # an empty cell (a name assigned after the closure was made)
                contents = None
            self.value(contents)
        # Python functions this one calls by global name: an edited helper changes the graph.
        for name in sorted(_global_names(fn.__code__)):
            target = fn.__globals__.get(name)
            if isinstance(target, types.FunctionType | functools.partial):
                self.text("global", name)
                self.value(target)

    def module(self, module: Any) -> None:
        import torch

        self.text("module")
        for name, sub in module.named_modules():
            kind = type(sub)
            self.text(name, kind.__module__, kind.__qualname__, sub.extra_repr(), sub.training)
            package = _module_package(kind.__module__)
            if package:
                self.text(package)
            forward = getattr(kind, "forward", None)
            code = getattr(forward, "__code__", None)
            if code is not None:
                self.hash.update(marshal.dumps(code))
            config = getattr(sub, "config", None)
            if config is not None and hasattr(config, "to_dict"):
                self.text(json.dumps(config.to_dict(), sort_keys=True, default=str))
        for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
            self.text(name)
            self.tensor(tensor)
        # Plain tensor attributes (neither parameters nor buffers) are constants too.
        for name, attr in sorted(vars(module).items()):
            if isinstance(attr, torch.Tensor):
                self.text(name)
                self.tensor(attr)


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


@functools.cache
def _module_package(module_name: str) -> str | None:
    """``package==version`` of the top-level package of ``module_name``, if it has one."""
    top = module_name.partition(".")[0]
    if top in ("builtins", "__main__"):
        return None
    version = package_version(top)
    return f"{top}=={version}" if version else None


def case_key(fn: Any, inputs: tuple[Any, ...], meta: Mapping[str, Any]) -> str:
    """A hex digest naming one export: the callable (code, closure, weights), the tensor inputs'
    shapes and dtypes (not their values: they are fed at run time), the constant inputs' values,
    the task's facts (:meth:`~harness.workload.Task.row_meta`), and the exporter's versions."""
    import torch

    digest = _Digest()
    digest.text("export", EXPORT_VERSION, package_version("torch"), package_version("onnx"),
                package_version("onnxscript"))
    digest.value(fn)
    for position, item in enumerate(inputs):
        digest.text("input", position)
        if isinstance(item, torch.Tensor):
            digest.tensor(item, content=False)
        else:
            digest.value(item)
    digest.text(json.dumps(dict(meta), sort_keys=True, default=str))
    return digest.hash.hexdigest()


# --- export --------------------------------------------------------------------------------


@functools.cache
def _call_class() -> type:
    import torch

    class Call(torch.nn.Module):
        """``fn(*args)`` as a module whose inputs are the tensor arguments only.

        The exporter traces modules; plain functions (attention, the lookups) are wrapped here.
        A module ``fn`` becomes a submodule, so its weights are exported as initializers.
        Non-tensor arguments are held as constants and spliced back in by position. A
        structured output (a Hugging Face ``ModelOutput``, whose cache the exporter cannot
        flatten) exports as the one tensor it stands for
        (:func:`~harness.adapters.tensors.primary_output`), and ``record`` is told which field.
        (A callback, not an attribute: the exporter restores a module's attributes, lists'
        contents included, after tracing.)
        """

        def __init__(self, fn: Any, template: tuple[Any, ...], positions: tuple[int, ...],
                     record: Callable[[str], None] = lambda field: None):
            super().__init__()
            self.fn = fn
            self.template = template
            self.positions = positions
            self.record = record

        def forward(self, *tensors: torch.Tensor) -> Any:
            args = list(self.template)
            for position, tensor in zip(self.positions, tensors, strict=True):
                args[position] = tensor
            output, field = primary_output(self.fn(*args))
            self.record(field)
            return output

    return Call


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's warnings and log lines (torchvision ops it skips, deprecations,
    constant-folding attempts its optimizer gives up on): the progress display is for the
    harness's own lines. Errors still propagate as exceptions."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript", "onnx_ir")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _export_skip(exc: BaseException) -> Skip | None:
    """A Skip when the export failed because ONNX has no translation of an op, else None."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        match = _MISSING_OP.search(str(current))
        if match:
            op, overload = match.groups()
            name = op.replace(".", "::", 1)
            return Skip(f"torch.onnx.export: {name} ({overload}) has no ONNX translation")
        current = current.__cause__ or current.__context__
    return None


def export(fn: Any, inputs: tuple[Any, ...], folder: Path) -> Path:
    """Export ``fn(*inputs)`` to ``folder/model.onnx`` (and ``model.onnx.data``, and
    :data:`OUTPUT_FILE`: see :func:`output_field`); return the model's path.

    The files are written to a temporary folder and moved into place at the end, so an
    interrupted export never leaves a half-written model in the cache. Raises :class:`Skip`
    when an op has no ONNX translation.
    """
    import torch

    positions = tuple(i for i, item in enumerate(inputs) if isinstance(item, torch.Tensor))
    template = tuple(None if i in positions else item for i, item in enumerate(inputs))
    fields: list[str] = []
    module = _call_class()(fn, template, positions, fields.append).eval()
    tensors = tuple(inputs[i] for i in positions)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        with _quiet_exporter(), torch.no_grad():
            torch.onnx.export(module, tensors, str(staging / MODEL_FILE), dynamo=True,
                              external_data=True, verbose=False)
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        skip = _export_skip(exc)
        if skip is not None:
            raise skip from None
        raise RuntimeError(f"torch.onnx.export failed: {_export_summary(exc)}") from exc
    (staging / OUTPUT_FILE).write_text(json.dumps({"field": fields[-1] if fields else ""}),
                                       encoding="utf-8")
    try:
        os.replace(staging, folder)
    except OSError:  # another process cached the same case meanwhile: keep theirs
        shutil.rmtree(staging, ignore_errors=True)
    return folder / MODEL_FILE


def output_field(model: Path) -> str:
    """Which field of a structured output the exported ``model`` returns ("" for none, or
    for an export that did not record it)."""
    try:
        field = json.loads((model.parent / OUTPUT_FILE).read_text(encoding="utf-8"))["field"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return field if isinstance(field, str) else ""


def _export_summary(exc: BaseException) -> str:
    """The most specific line of an exporter error (its summary names the failing node)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("<class "):
            return line
    return lines[0] if lines else type(exc).__name__
