"""Transformer building blocks: scaled-dot-product attention and the feed-forward block."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from harness import Skip, Task, workload
from harness.checks import close_to
from harness.workload import at_least
from suites.data import DTYPES, ENGINES, TOLERANCES, element_size, randn, torch_dtype

if TYPE_CHECKING:
    import torch


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        causal: bool) -> torch.Tensor:
    """Plain attention in float64: softmax(q kᵀ / √d) v, with a lower-triangular mask if causal."""
    import torch

    q, k, v = (t.to(torch.float64) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        seq_q, seq_k = scores.shape[-2:]
        mask = torch.ones(seq_q, seq_k, dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def math_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   causal: bool) -> torch.Tensor:
    """Unfused attention in the inputs' dtype: matmul, softmax, matmul (S×S scores in memory)."""
    import torch

    scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        seq_q, seq_k = scores.shape[-2:]
        mask = torch.ones(seq_q, seq_k, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


#: attention ``impl`` → the SDPA back end it pins (None: plain math, or SDPA's own choice).
SDPA_BACKENDS = {
    "sdpa": None, "sdpa_flash": "FLASH_ATTENTION", "sdpa_efficient": "EFFICIENT_ATTENTION",
    "sdpa_math": "MATH", "sdpa_cudnn": "CUDNN_ATTENTION",
}
ATTENTION_IMPLS = ("sdpa", "math", *[name for name in SDPA_BACKENDS if name != "sdpa"])


def attention_fn(impl: str, causal: bool) -> Callable[..., torch.Tensor]:
    """The callable for one attention implementation; an absent SDPA back end becomes a Skip."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if impl == "math":
        return functools.partial(math_attention, causal=causal)
    backend = SDPA_BACKENDS[impl]

    def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    if backend is None:
        return sdpa
    pinned = [getattr(SDPBackend, backend)]

    def pinned_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        # Entering the context costs about a microsecond per call; it is part of the figure.
        try:
            with sdpa_kernel(pinned):
                return sdpa(q, k, v)
        except RuntimeError as exc:
            if "No viable backend" in str(exc) or "No available kernel" in str(exc):
                raise Skip(f"SDPA {backend} back end has no kernel for {q.dtype} on "
                           f"{q.device.type}") from None
            raise

    return pinned_sdpa


def attention_memory(batch: int, heads: int, seq: int, head_dim: int, dtype: str, impl: str,
                     **_: object) -> float:
    """Predicted peak bytes: q, k, v and the output in ``dtype``, the S×S scores of unfused
    attention, and the float64 reference (its inputs, output and scores)."""
    size = element_size(dtype)
    vectors = 4.0 * batch * heads * seq * head_dim
    scores = float(batch * heads * seq * seq)
    unfused = impl in ("math", "sdpa_math")
    return vectors * (size + 8) + scores * (2 * size * unfused + 16)


def ffn_memory(tokens: int, hidden: int, intermediate: int, dtype: str, **_: object) -> float:
    """Predicted peak bytes: weights, input, hidden activation and output, in ``dtype`` and in
    the float64 reference."""
    elements = 2.0 * hidden * intermediate + tokens * intermediate + 2.0 * tokens * hidden
    return elements * (element_size(dtype) + 8)


POSITIVE = at_least(1)


@workload(params={
    "batch": [1, 8, 32],
    "heads": [12],
    "seq": [128, 512, 2048],
    "head_dim": [64],
    "dtype": list(DTYPES),
    "causal": [False, True],
    "impl": list(ATTENTION_IMPLS),
    "engine": list(ENGINES),
}, quick={"impl": ["sdpa", "math"]}, memory=attention_memory,
    validate={"batch": POSITIVE, "heads": POSITIVE, "seq": POSITIVE, "head_dim": POSITIVE})
def attention(batch: int, heads: int, seq: int, head_dim: int, dtype: str,
              causal: bool, impl: str, engine: str) -> Task:
    """Scaled-dot-product attention over batch × heads × seq × head_dim: SDPA (fused) vs math."""
    q, k, v = (randn(batch, heads, seq, head_dim, dtype=dtype, seed=s) for s in (1, 2, 3))

    # Two matmuls of 2·S·S·D FLOPs per head (q kᵀ and p v); softmax's O(S²) work is left out,
    # as is customary. A causal mask leaves S(S+1)/2 of the S² score pairs as useful work.
    pairs = seq * (seq + 1) / 2 if causal else seq * seq
    rtol, atol = TOLERANCES[dtype]
    backend = SDPA_BACKENDS.get(impl)
    return Task(
        fn=attention_fn(impl, causal),
        inputs=(q, k, v),
        items=batch,
        flops=4.0 * batch * heads * pairs * head_dim,
        # Compulsory traffic: read q, k, v once and write the output once. The math version
        # also writes and reads the S×S scores; that extra traffic is what fusion saves.
        bytes=4.0 * batch * heads * seq * head_dim * element_size(dtype),
        check=close_to(lambda: attention_reference(q, k, v, causal), rtol, atol),
        meta={"impl": impl}, items_unit="sequences", dtype=dtype, engine=engine,
        # A pinned SDPA back end is one of torch's own kernels: graph compilers refuse it.
        torch_kernel=f"SDPA {backend}" if backend else None,
    )


def ffn_reference(x: torch.Tensor, block: torch.nn.Sequential) -> torch.Tensor:
    """Linear → GELU (exact, erf form) → Linear, in float64 from the block's own weights."""
    import torch

    first, _, second = block
    h = x.to(torch.float64) @ first.weight.to(torch.float64).T + first.bias.to(torch.float64)
    h = 0.5 * h * (1.0 + torch.erf(h / math.sqrt(2.0)))
    return h @ second.weight.to(torch.float64).T + second.bias.to(torch.float64)


@workload(params={
    "tokens": [128, 512, 2048],
    "hidden": [768, 1024],
    "intermediate": [3072, 4096],
    "dtype": list(DTYPES),
    "engine": list(ENGINES),
}, memory=ffn_memory,
    validate={"tokens": POSITIVE, "hidden": POSITIVE, "intermediate": POSITIVE})
def ffn(tokens: int, hidden: int, intermediate: int, dtype: str, engine: str) -> Task:
    """The transformer feed-forward block: Linear(hidden→intermediate), GELU, Linear(back)."""
    import torch

    # Module initialisers draw from the global generator: seed it without disturbing the caller.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        block = torch.nn.Sequential(
            torch.nn.Linear(hidden, intermediate),
            torch.nn.GELU(),
            torch.nn.Linear(intermediate, hidden),
        )
    block = block.to(torch_dtype(dtype)).eval()
    x = randn(tokens, hidden, dtype=dtype, seed=5)
    rtol, atol = TOLERANCES[dtype]
    size = element_size(dtype)
    return Task(
        fn=block,
        inputs=(x,),
        items=tokens,
        # Two matmuls of 2·T·H·I FLOPs; bias adds and GELU (O(T·I)) are left out.
        flops=4.0 * tokens * hidden * intermediate,
        # Compulsory traffic: both weight matrices and biases, the input and the output.
        bytes=float((2 * hidden * intermediate + hidden + intermediate + 2 * tokens * hidden)
                    * size),
        check=close_to(lambda: ffn_reference(x, block), rtol, atol),
        items_unit="tokens", dtype=dtype, engine=engine,
    )


# BERT and LLM generation live in their own modules (the largest workloads) but belong to
# this suite.
from suites.bert import bert  # noqa: E402, F401
from suites.generate import generate  # noqa: E402, F401
