"""Where each profiler's operator names go: the one mapping table from native names to
categories, and how suites and adapters extend it.

Categories (:data:`CATEGORIES`):

==============  ===========================================================================
matmul          matrix products: GEMM, batched GEMM, convolutions, linear layers
attention       fused attention kernels (SDPA, flash attention, ORT's Attention)
normalization   layer, RMS, batch and group normalisation
activation      GELU, ReLU, SiLU, tanh, sigmoid, softmax, erf
elementwise     pointwise arithmetic: add, mul, div, where, comparisons
reduction       sums, means, maxima over an axis
memory          copies, layout (transpose, reshape, concat, slice), casts, memcpy/memset
lookup          gathers, embeddings, index_select, searches, hash probes
host            Python and framework overhead: time inside a call that no operator accounts for
other           an operator no rule names
unattributed    profiled wall time that no event accounts for (shown, never dropped)
==============  ===========================================================================

Each vocabulary has its own ordered rules (:data:`RULES`): ``torch`` (aten operator names, also
matched against the torch lineage XLA keeps in its metadata), ``xla`` (HLO opcodes inside an
instruction or fusion), ``onnxruntime`` (ONNX op types), ``cuda`` (GPU kernel names, after HTA's
rules for memory kernels) and ``python`` (cProfile function names). The first rule whose
pattern matches (``re.search``, case-insensitive) decides; a name no rule matches is ``other``
(``host`` for Python functions). :func:`register` puts a suite's or adapter's own rule first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES: tuple[str, ...] = (
    "matmul", "attention", "normalization", "activation", "elementwise", "reduction",
    "memory", "lookup", "host", "other", "unattributed",
)
VOCABULARIES = ("torch", "xla", "onnxruntime", "cuda", "python")


@dataclass(frozen=True)
class Rule:
    """Names matching ``pattern`` (a regular expression, searched case-insensitively) belong to
    ``category``."""

    pattern: str
    category: str


def _rules(*pairs: tuple[str, str]) -> list[Rule]:
    return [Rule(pattern, category) for pattern, category in pairs]


#: vocabulary → its rules, in the order they are tried.
RULES: dict[str, list[Rule]] = {
    "torch": _rules(
        (r"scaled_dot_product|flash_attention|efficient_attention|_attention\b|\battention",
         "attention"),
        (r"::(mm|addmm|bmm|baddbmm|matmul|linear|conv\w*|_convolution|einsum|addmv|mv|dot)\b"
         r"|^(mm|addmm|bmm|linear|dot_general)\b|\blinear\b|dot_general", "matmul"),
        (r"norm\b|_norm|norm_", "normalization"),
        (r"gelu|relu|silu|sigmoid|tanh|softmax|erf\b|hardswish|mish|elu\b", "activation"),
        (r"embedding|index_select|gather|searchsorted|bucketize|take\b|index\b", "lookup"),
        (r"::(sum|mean|amax|amin|max|min|argmax|argmin|prod|var|std|cumsum|all|any)\b"
         r"|reduce", "reduction"),
        (r"::(copy_|clone|contiguous|to|_to_copy|transpose|t|permute|view|reshape|expand|"
         r"as_strided|cat|stack|slice|select|split|chunk|unsqueeze|squeeze|flatten|empty|"
         r"empty_like|zeros|ones|fill_|zero_|detach|narrow|unbind|alias|_unsafe_view|"
         r"resolve_conj|resolve_neg|lift_fresh|pad|constant_pad_nd|roll|repeat)\b", "memory"),
        (r"::(add|sub|mul|div|rsub|neg|pow|sqrt|rsqrt|exp|log|abs|where|eq|ne|lt|le|gt|ge|"
         r"masked_fill|clamp|maximum|minimum|bitwise_\w+|logical_\w+|floor|ceil|round|sign|"
         r"reciprocal|remainder|fmod|__and__|__or__|isnan|rsqrt_)_?\b", "elementwise"),
    ),
    "xla": _rules(
        (r"\b(dot|convolution)\b|__cublas|gemm|matmul", "matmul"),
        (r"\b(gather|scatter|dynamic-slice|dynamic-update-slice|sort)\b", "lookup"),
        (r"\b(reduce|reduce-window|all-reduce)\b", "reduction"),
        (r"^(\s*\b(copy|transpose|bitcast|reshape|broadcast|concatenate|slice|pad|convert|"
         r"tuple|get-tuple-element|parameter|constant|iota|copy-start|copy-done)\b)+\s*$",
         "memory"),
        (r"\b(exponential|tanh|logistic|erf)\b", "activation"),
        (r"\b(add|subtract|multiply|divide|maximum|minimum|compare|select|power|sqrt|rsqrt|"
         r"negate|abs|and|or|not|log|floor|ceil|clamp)\b", "elementwise"),
    ),
    "onnxruntime": _rules(
        (r"attention", "attention"),
        (r"matmul|gemm|conv", "matmul"),
        (r"norm", "normalization"),
        (r"gelu|relu|sigmoid|tanh|softmax|erf|silu|swish|elu", "activation"),
        (r"gather|embed|scatter|topk", "lookup"),
        (r"^reduce|argmax|argmin", "reduction"),
        (r"^(transpose|reshape|concat|slice|split|squeeze|unsqueeze|expand|identity|cast|"
         r"flatten|pad|tile|shape|constantofshape|memcpy\w*|dequantizelinear|quantizelinear)$",
         "memory"),
        (r"^(add|sub|mul|div|pow|sqrt|where|equal|less|greater|and|or|not|isnan|isinf|"
         r"neg|abs|exp|log|min|max|clip|bitshift|mod|reciprocal)$", "elementwise"),
    ),
    "cuda": _rules(
        (r"^(memcpy|memset|dma)|memcpy|memset", "memory"),
        (r"flash|fmha|attention|sdpa|mha_", "attention"),
        (r"gemm|cutlass|cublas|sm\d+_xmma|matmul|conv|wgmma|hmma|s884|s1688|s16816", "matmul"),
        (r"layer_norm|layernorm|rms_?norm|batch_?norm|group_?norm", "normalization"),
        (r"gelu|relu|silu|sigmoid|tanh|softmax|erf", "activation"),
        (r"gather|index|embedding|scatter", "lookup"),
        (r"reduce|sum_kernel|mean_kernel|max_kernel|argmax", "reduction"),
        (r"copy|transpose|cat_|catarray|permute|cast", "memory"),
        (r"elementwise|vectorized|unrolled|pointwise|triton_poi", "elementwise"),
    ),
    "python": [],
}
#: the category of a name no rule matches, per vocabulary.
FALLBACK = {"python": "host"}


def register(vocabulary: str, pattern: str, category: str) -> None:
    """Put a rule before the built-in ones: names of ``vocabulary`` matching ``pattern`` belong
    to ``category``. A suite registers its own Python functions (``python``) or custom
    operators; an adapter its runtime's kernel names."""
    if vocabulary not in RULES:
        raise ValueError(f"unknown profiler vocabulary {vocabulary!r}; "
                         f"one of {', '.join(RULES)}")
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")
    re.compile(pattern)  # a bad pattern fails here, not when a profile is read
    RULES[vocabulary].insert(0, Rule(pattern, category))


def categorize(vocabulary: str, name: str) -> str:
    """The category of the native name ``name`` in ``vocabulary``."""
    for rule in RULES[vocabulary]:
        if re.search(rule.pattern, name, re.IGNORECASE):
            return rule.category
    return FALLBACK.get(vocabulary, "other")


def categorize_xla(lineage: str, opcodes: str) -> str:
    """An XLA instruction's category, from the torch lineage its metadata keeps (``op_name``,
    e.g. ``jit(f)/aten::native_layer_norm/reduce_sum``) and the opcodes it contains (a fusion's
    whole body, space-separated).

    Attention lineage comes first (XLA fuses the softmax with the scores' matmul); then any
    matrix product inside makes it ``matmul`` (the rest of a fusion rides on the matmul's
    loop); a gather inside makes it ``lookup`` (an embedding's sum rides on its gathers); then
    the torch operator it came from; then what its opcodes do."""
    torch_side = categorize("torch", lineage) if lineage else "other"
    if torch_side == "attention":
        return "attention"
    by_opcodes = categorize("xla", opcodes) if opcodes else "other"
    if by_opcodes in ("matmul", "lookup"):
        return by_opcodes
    return torch_side if torch_side != "other" else by_opcodes
