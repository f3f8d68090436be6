"""torchax for the XLA adapters: imported without leaking its global state, and data moved back.

Importing torchax changes torch's globals: it turns off the ``nn.MultiheadAttention`` fast
path, adds entries to ``torch._decomp``'s global decomposition table (when its environment is
built) and sets an environment variable for the TPU runtime's telemetry. :func:`load_torchax`
undoes those right after the import, so the ``cpu`` adapter in the same process runs as it
would alone; the fast path is turned off again only while torchax traces (its reason: the
fast-path kernels have no JAX lowering). Two changes cannot be undone: the ``privateuse1``
back end is renamed ``jax`` (torchax tensors report ``jax:0`` as their device, so tracing
needs the name) and ``torch.jax`` is registered as its device module. Together they make
``torch.accelerator`` report an available "jax" accelerator, on which ``torch.compile`` fails;
so ``torch.jax`` reports no device except while torchax traces (see :func:`load_torchax`).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any

from harness.adapters.tensors import primary_output

#: environment variables torchax sets at import for the TPU runtime (uptime telemetry).
TORCHAX_ENV = ("ENABLE_RUNTIME_UPTIME_TELEMETRY",)


# --- torchax, imported without leaking its global state -------------------------------------


@contextlib.contextmanager
def _preserved_torch_state() -> Iterator[None]:
    """Restore what importing torchax changes in torch, os.environ and jax.config on exit."""
    import jax
    import torch
    import torch._decomp

    fastpath = torch.backends.mha.get_fastpath_enabled()
    tables = {name: dict(table)
              for name, table in torch._decomp.global_decomposition_table.items()}
    environ = {name: os.environ.get(name) for name in TORCHAX_ENV}
    pjrt_options = getattr(jax.config, "jax_pjrt_client_create_options", None)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for name, table in torch._decomp.global_decomposition_table.items():
            # The same dict objects, emptied and refilled: torch modules hold references.
            table.clear()
            table.update(tables.get(name, {}))
        for name, value in environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if getattr(jax.config, "jax_pjrt_client_create_options", None) != pjrt_options:
            jax.config.update(  # type: ignore[no-untyped-call]
                "jax_pjrt_client_create_options", pjrt_options)


@functools.cache
def load_torchax() -> ModuleType:
    """Import torchax and build its environment, then undo its changes to torch's globals.

    jax is imported first, outside the guard: the environment variables jax sets for itself
    (``TF_CPP_MIN_LOG_LEVEL``, ``TPU_SKIP_MDS_QUERY``) are its own and read later by its back ends.
    torchax keeps private copies of the decompositions it registers, so clearing them from
    torch's global table does not affect its tracing.
    """
    import jax  # noqa: F401

    with _preserved_torch_state():
        import torchax  # type: ignore[import-untyped]

        torchax.default_env()  # builds the op tables; imports torchax.decompositions
    # The device module torchax registers as ``torch.jax`` says a device is available, which
    # makes torch.accelerator report "jax" as a usable accelerator to the whole process, and
    # torch.compile (the cpu adapter's engine=compile) then fails asking it for a stream
    # ("PyTorch is not linked with support for jax devices"). Outside torchax's own tracing
    # it answers "none"; :func:`tracing` restores torchax's answers for the trace.
    device_module = torchax.device_module
    _TORCHAX_DEVICE[:] = [device_module.is_available, device_module.device_count]
    device_module.is_available, device_module.device_count = _no_device, _no_devices
    module: ModuleType = torchax
    return module


#: torchax's own ``torch.jax.is_available`` and ``device_count``, once torchax is loaded.
_TORCHAX_DEVICE: list[Any] = []


def _no_device() -> bool:
    return False


def _no_devices() -> int:
    return 0


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """torch as torchax configures it, only while torchax traces: the MHA fast path off (torchax
    turns it off globally) and ``torch.jax`` reporting torchax's device."""
    import torch

    torchax = load_torchax()
    device_module = torchax.device_module
    outside = device_module.is_available, device_module.device_count
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    device_module.is_available, device_module.device_count = _TORCHAX_DEVICE
    try:
        yield
    finally:
        device_module.is_available, device_module.device_count = outside
        torch.backends.mha.set_fastpath_enabled(previous)


@functools.cache
def bound_class() -> type:
    """The module class :func:`torchax.extract_jax` traces: ``fn`` bound to fixed inputs."""
    import torch

    class Bound(torch.nn.Module):
        """``fn`` as a module whose arguments are the task's tensors; other inputs are fixed.

        ``extract_jax`` takes modules only (attention's ``fn`` is a plain function or a
        ``functools.partial``). Non-tensor inputs (the hash table's shift and mask, the
        Eytzinger depth) are Python constants baked into the trace, as they are in torch
        eager. A module ``fn`` becomes a submodule, so its weights are extracted with it.

        A structured output (a Hugging Face ``ModelOutput``) is not a value a JAX program may
        return: the traced function returns the tensor it stands for
        (:func:`~harness.adapters.tensors.primary_output`), the one every adapter checks, and
        :attr:`output_field` says which field that was once traced.
        """

        def __init__(self, fn: Any, inputs: tuple[Any, ...]):
            super().__init__()
            self.fn = fn
            self.template = [None if isinstance(x, torch.Tensor) else x for x in inputs]
            self.output_field = ""

        def forward(self, *tensors: torch.Tensor) -> Any:
            given = iter(tensors)
            output = self.fn(*[next(given) if x is None else x for x in self.template])
            output, self.output_field = primary_output(output)
            return output

    return Bound


def wait(tree: Any) -> Any:
    """``jax.block_until_ready`` (untyped in jax's stubs): wait until every array is computed."""
    import jax

    return jax.block_until_ready(tree)  # type: ignore[no-untyped-call]


# --- moving data ----------------------------------------------------------------------------


def _array_to_torch(array: Any) -> Any:
    """One jax array as a CPU torch tensor, bit for bit (bfloat16 and float8 included)."""
    import numpy as np
    import torch

    host = np.array(array)  # a writable copy on the host (torch warns on read-only arrays)
    try:
        return torch.from_numpy(host)
    except TypeError:
        # ml_dtypes (bfloat16, float8_*) are unknown to torch.from_numpy: reinterpret the bits
        # as an unsigned integer of the same width, then view them as torch's dtype of that name.
        torch_dtype = getattr(torch, host.dtype.name, None)
        unsigned = {1: np.uint8, 2: np.uint16}.get(host.dtype.itemsize)
        if not isinstance(torch_dtype, torch.dtype) or unsigned is None:
            raise
        return torch.from_numpy(host.view(unsigned)).view(torch_dtype)


def to_torch(obj: Any) -> Any:
    """``obj`` with every jax array (or torchax tensor, or numpy array) as a CPU torch tensor,
    through tuples, lists and dicts; other leaves are kept as they are."""
    import jax
    import numpy as np
    import torch

    if isinstance(obj, jax.Array | np.ndarray):
        return _array_to_torch(obj)
    if isinstance(obj, torch.Tensor):
        inner = getattr(obj, "_elem", None)  # a torchax tensor wraps its jax array
        return _array_to_torch(inner) if isinstance(inner, jax.Array) else obj.detach().cpu()
    if isinstance(obj, tuple):
        items = [to_torch(item) for item in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if isinstance(obj, list):
        return [to_torch(item) for item in obj]
    if isinstance(obj, Mapping):
        return {key: to_torch(value) for key, value in obj.items()}
    return obj
