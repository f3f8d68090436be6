"""Ready-made correctness checks for tasks: compare an adapter's output with a reference."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from harness.probe import vary  # Task.vary documents harness.checks.vary as its default
from harness.workload import Check

__all__ = ["close_to", "relative_error", "same_output", "vary"]


def _non_finite(out: Any) -> str:
    """``3 of 1024 values are not finite (2 NaN, 1 +inf)``, counts of each kind that occurs."""
    import torch

    kinds = {"NaN": torch.isnan(out), "+inf": torch.isposinf(out), "-inf": torch.isneginf(out)}
    counts = ", ".join(f"{int(mask.sum())} {name}" for name, mask in kinds.items()
                       if bool(mask.any()))
    return (f"{int((~torch.isfinite(out)).sum())} of {out.numel()} values are not finite "
            f"({counts})")


def close_to(reference: Callable[[], Any], rtol: float, atol: float) -> Check:
    """A check that the output tensor matches ``reference()`` elementwise within tolerances.

    ``reference`` is called once, on first use, so building a task stays cheap. The comparison
    runs in float64 on the host: |out - ref| <= atol + rtol * |ref|, and every value finite.
    """
    cache: list[Any] = []

    def check(output: Any) -> None:
        import torch

        if not cache:
            cache.append(reference().detach().to("cpu", torch.float64))
        ref = cache[0]
        if not isinstance(output, torch.Tensor):
            raise AssertionError(f"expected a tensor, got {type(output).__name__}")
        out = output.detach().to("cpu", torch.float64)
        if out.shape != ref.shape:
            raise AssertionError(f"shape {tuple(out.shape)} differs from {tuple(ref.shape)}")
        if not bool(torch.isfinite(out).all()):
            raise AssertionError(_non_finite(out))
        diff = (out - ref).abs()
        bad = ~(diff <= atol + rtol * ref.abs())  # NaN compares False, so it counts as bad
        if bool(bad.any()):
            # Only a non-finite reference is left to make a difference NaN or infinite: say so
            # rather than print the largest float.
            worst = float(torch.nan_to_num(diff, nan=math.inf, posinf=math.inf).max())
            raise AssertionError(
                f"{int(bad.sum())} of {out.numel()} values off the reference "
                f"(max abs diff {worst:.3g}; rtol {rtol:g}, atol {atol:g})"
            )

    return check


def relative_error(reference: Callable[[], Any], tol: float,
                   select: Callable[[Any], Any] | None = None) -> Check:
    """A check that ‖out − ref‖₂ / ‖ref‖₂ ≤ ``tol`` (in float64 on the host), all values finite.

    Suited to deep models in reduced precision, where a few elements drift past any elementwise
    bound while the output as a whole is right. ``select`` picks the compared part of both
    tensors (e.g. unpadded positions); ``reference`` is called once, on first use.
    """
    cache: list[Any] = []

    def check(output: Any) -> None:
        import torch

        if not cache:
            ref = reference().detach().to("cpu", torch.float64)
            cache.append(select(ref) if select else ref)
        ref = cache[0]
        if not isinstance(output, torch.Tensor):
            raise AssertionError(f"expected a tensor, got {type(output).__name__}")
        out = output.detach().to("cpu", torch.float64)
        out = select(out) if select else out
        if out.shape != ref.shape:
            raise AssertionError(f"shape {tuple(out.shape)} differs from {tuple(ref.shape)}")
        if not bool(torch.isfinite(out).all()):
            raise AssertionError(_non_finite(out))
        error = float(torch.linalg.vector_norm(out - ref) / torch.linalg.vector_norm(ref))
        if not error <= tol:
            raise AssertionError(f"relative error {error:.3g} exceeds {tol:g}")

    return check


def same_output(a: Any, b: Any) -> bool:
    """True when two outputs (tensors, arrays, numbers or nests of them) are exactly equal."""
    import numpy as np
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a.cpu(), b.cpu()))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_output(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_output(a[k], b[k]) for k in a)
    try:
        return bool(a == b)
    except Exception:  # an object without a meaningful equality: cannot tell
        return False
