"""Seeded synthetic data and the dtype vocabulary shared by the suites."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "bfloat16", "float16")
#: eager: run as written; compile: the adapter compiles it first (torch.compile on torch
#: adapters); compile time lands in first_call_s, never in latency.
ENGINES = ("eager", "compile")

#: (rtol, atol) for comparing against a float64 reference; half precisions keep ~3 digits.
TOLERANCES = {"float32": (1e-4, 1e-4), "bfloat16": (2e-2, 2e-2), "float16": (5e-3, 5e-3)}

SEED = 0


def torch_dtype(name: str) -> torch.dtype:
    """``"bfloat16"`` → ``torch.bfloat16``."""
    import torch

    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    dtype: torch.dtype = getattr(torch, name)
    return dtype


def element_size(name: str) -> int:
    """Bytes per element of a dtype name."""
    return {"float32": 4, "bfloat16": 2, "float16": 2}[name]


def generator(seed: int = SEED) -> torch.Generator:
    """A CPU generator seeded the same way every time, so every run sees the same data."""
    import torch

    return torch.Generator().manual_seed(seed)


def randn(*shape: int, dtype: str = "float32", seed: int = SEED) -> torch.Tensor:
    """Standard-normal values, generated in float32 and then cast (same values for any dtype)."""
    import torch

    values = torch.randn(*shape, generator=generator(seed), dtype=torch.float32)
    return values.to(torch_dtype(dtype))
