"""The mapping table from each profiler's native names to categories, and its extension."""

from __future__ import annotations

import pytest

from harness.profiling import categories
from harness.profiling.categories import (
    CATEGORIES,
    RULES,
    categorize,
    categorize_xla,
    register,
)


@pytest.mark.parametrize("vocabulary, name, category", [
    ("torch", "aten::addmm", "matmul"),
    ("torch", "aten::bmm", "matmul"),
    ("torch", "aten::linear", "matmul"),
    ("torch", "aten::_scaled_dot_product_flash_attention_for_cpu", "attention"),
    ("torch", "aten::scaled_dot_product_attention", "attention"),
    ("torch", "aten::native_layer_norm", "normalization"),
    ("torch", "aten::gelu", "activation"),
    ("torch", "aten::_softmax", "activation"),
    ("torch", "aten::embedding", "lookup"),
    ("torch", "aten::index_select", "lookup"),
    ("torch", "aten::sum", "reduction"),
    ("torch", "aten::copy_", "memory"),
    ("torch", "aten::transpose", "memory"),
    ("torch", "aten::add", "elementwise"),
    ("torch", "aten::mul", "elementwise"),
    ("torch", "aten::where", "elementwise"),
    ("torch", "aten::frobnicate", "other"),
    ("onnxruntime", "MatMul", "matmul"),
    ("onnxruntime", "FusedMatMul", "matmul"),
    ("onnxruntime", "Gemm", "matmul"),
    ("onnxruntime", "Attention", "attention"),
    ("onnxruntime", "SkipLayerNormalization", "normalization"),
    ("onnxruntime", "Gelu", "activation"),
    ("onnxruntime", "Softmax", "activation"),
    ("onnxruntime", "Gather", "lookup"),
    ("onnxruntime", "ReduceMean", "reduction"),
    ("onnxruntime", "Reshape", "memory"),
    ("onnxruntime", "Cast", "memory"),
    ("onnxruntime", "Add", "elementwise"),
    ("onnxruntime", "Where", "elementwise"),
    ("cuda", "Memcpy HtoD (Pageable -> Device)", "memory"),
    ("cuda", "Memset (Device)", "memory"),
    ("cuda", "ampere_sgemm_128x64_tn", "matmul"),
    ("cuda", "void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_128x128_32x3_nn_align4>",
     "matmul"),
    ("cuda", "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64>>", "attention"),
    ("cuda", "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float>",
     "normalization"),
    ("cuda", "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float>>", "reduction"),
    ("cuda", "void at::native::vectorized_elementwise_kernel<4, at::native::AddFunctor<float>>",
     "elementwise"),
    ("python", "suites.lookup.probe", "host"),
])
def test_native_names_map_to_their_category(vocabulary: str, name: str, category: str) -> None:
    assert categorize(vocabulary, name) == category


@pytest.mark.parametrize("lineage, opcodes, category", [
    ("jit(f)/linear/...a,ba->...b/dot_general", "dot", "matmul"),
    # XLA fuses the softmax into the scores' matmul: attention lineage decides.
    ("jit(f)/scaled_dot_product_attention/aten::_softmax/reduce_max",
     "dot reduce exponential", "attention"),
    ("jit(f)/aten::native_layer_norm/reduce_sum", "reduce add", "normalization"),
    ("jit(f)/aten::gelu/mul", "multiply erf add", "activation"),
    ("jit(f)/aten::add.Tensor/add", "gather add select", "lookup"),
    ("", "transpose copy bitcast", "memory"),
    ("", "reduce add", "reduction"),
    ("", "add multiply", "elementwise"),
    ("jit(f)/aten::frobnicate", "custom-call", "other"),
])
def test_xla_operations_map_by_lineage_and_contents(lineage: str, opcodes: str,
                                                    category: str) -> None:
    assert categorize_xla(lineage, opcodes) == category


def test_every_category_is_documented_and_every_rule_names_a_known_one() -> None:
    doc = categories.__doc__ or ""
    for category in CATEGORIES:
        assert f"\n{category} " in doc
    for rules in RULES.values():
        for rule in rules:
            assert rule.category in CATEGORIES


def test_a_registered_rule_comes_before_the_built_in_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RULES, "python", list(RULES["python"]))
    monkeypatch.setitem(RULES, "onnxruntime", list(RULES["onnxruntime"]))
    register("python", r"^suites\.lookup\.", "lookup")
    register("onnxruntime", r"^MyFusedGelu$", "matmul")
    assert categorize("python", "suites.lookup.probe") == "lookup"
    assert categorize("python", "suites.other.f") == "host"
    assert categorize("onnxruntime", "MyFusedGelu") == "matmul"


@pytest.mark.parametrize("args, message", [
    (("nope", "x", "matmul"), "unknown profiler vocabulary"),
    (("torch", "x", "fast"), "unknown category"),
])
def test_registering_a_bad_rule_is_refused(args: tuple[str, str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        register(*args)
