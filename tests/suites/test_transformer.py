"""The transformer suite: analytic work sizes, references, and checks that catch wrong output."""

from __future__ import annotations

import pytest
import torch

from harness import Skip
from suites.transformer import attention, attention_reference, ffn


def test_attention_flops_and_bytes() -> None:
    task = attention.build(batch=2, heads=3, seq=16, head_dim=8, dtype="float32", causal=False,
                           impl="sdpa", engine="eager")
    assert task.flops == 4 * 2 * 3 * 16 * 16 * 8
    assert task.bytes == 4 * 2 * 3 * 16 * 8 * 4
    assert task.items == 2
    causal = attention.build(batch=2, heads=3, seq=16, head_dim=8, dtype="bfloat16", causal=True,
                             impl="sdpa", engine="eager")
    assert causal.flops == 4 * 2 * 3 * (16 * 17 / 2) * 8
    assert causal.bytes == 4 * 2 * 3 * 16 * 8 * 2


@pytest.mark.parametrize(("impl", "kernel"), [
    ("sdpa", None), ("math", None), ("sdpa_flash", "SDPA FLASH_ATTENTION"),
    ("sdpa_efficient", "SDPA EFFICIENT_ATTENTION"), ("sdpa_math", "SDPA MATH"),
    ("sdpa_cudnn", "SDPA CUDNN_ATTENTION"),
])
def test_a_pinned_sdpa_back_end_is_declared_as_a_torch_kernel(impl: str,
                                                              kernel: str | None) -> None:
    task = attention.build(batch=1, heads=1, seq=4, head_dim=8, dtype="float32", causal=False,
                           impl=impl, engine="eager")
    assert task.torch_kernel == kernel
    assert task.row_meta()["impl"] == impl and "torch_kernel" not in task.row_meta()


def test_attention_reference_agrees_with_torch_on_a_causal_case() -> None:
    q, k, v = (torch.randn(1, 2, 5, 4, dtype=torch.float64) for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(attention_reference(q, k, v, causal=True), expected)


@pytest.mark.parametrize("impl", ["sdpa", "math", "sdpa_flash", "sdpa_math"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_attention_check_passes_on_its_output_and_fails_on_a_perturbed_one(
        dtype: str, impl: str) -> None:
    task = attention.build(batch=1, heads=2, seq=32, head_dim=16, dtype=dtype, causal=True,
                           impl=impl, engine="eager")
    assert task.check is not None
    out = task.fn(*task.inputs)
    task.check(out)
    with pytest.raises(AssertionError, match="values off the reference"):
        task.check(out + 0.1)


def test_a_back_end_without_a_kernel_here_is_a_skip() -> None:
    # SDPA's memory-efficient back end has CUDA kernels only.
    task = attention.build(batch=1, heads=2, seq=8, head_dim=4, dtype="float32", causal=False,
                           impl="sdpa_efficient", engine="eager")
    expected = r"EFFICIENT_ATTENTION back end has no kernel for torch\.float32"
    with pytest.raises(Skip, match=expected):
        task.fn(*task.inputs)


def test_attention_check_rejects_wrong_shape_and_nan() -> None:
    task = attention.build(batch=1, heads=2, seq=8, head_dim=4, dtype="float32", causal=False,
                           impl="sdpa", engine="eager")
    assert task.check is not None
    out = task.fn(*task.inputs)
    with pytest.raises(AssertionError, match="shape"):
        task.check(out[:, :1])
    out[0, 0, 0, 0] = float("nan")
    with pytest.raises(AssertionError, match="1 of"):
        task.check(out)


def test_ffn_sizes_and_check() -> None:
    task = ffn.build(tokens=4, hidden=8, intermediate=32, dtype="float32", engine="eager")
    assert task.flops == 4 * 4 * 8 * 32
    assert task.bytes == (2 * 8 * 32 + 8 + 32 + 2 * 4 * 8) * 4
    assert task.items == 4
    assert task.check is not None
    out = task.fn(*task.inputs)
    task.check(out)
    with pytest.raises(AssertionError):
        task.check(out * 1.01)


def test_ffn_weights_are_seeded_and_leave_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = ffn.build(tokens=2, hidden=4, intermediate=8, dtype="float32", engine="eager")
    after = torch.rand(1)
    b = ffn.build(tokens=2, hidden=4, intermediate=8, dtype="float32", engine="eager")
    assert torch.equal(before, after)
    assert torch.equal(a.fn[0].weight, b.fn[0].weight)
