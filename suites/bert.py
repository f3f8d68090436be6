"""BERT inference: ``BertModel`` from a config with random weights, or a local checkpoint."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import Task, workload
from harness.checks import relative_error
from harness.workload import WorkloadError, at_least
from suites.data import DTYPES, ENGINES, element_size, generator, torch_dtype

if TYPE_CHECKING:
    import torch

#: size → (layers, hidden, attention heads); intermediate is 4 × hidden, as in the papers.
SIZES = {"tiny": (2, 128, 2), "base": (12, 768, 12), "large": (24, 1024, 16)}
#: relative L2 error allowed against the float32 reference, by dtype (reduced precision drifts
#: through the layers; an elementwise bound would fail on a handful of outliers).
TOLERANCES = {"float32": 1e-4, "bfloat16": 6e-2, "float16": 1e-2}
SAMPLE_TEXT = Path(__file__).with_name("sample.txt")
VOCAB = 30522  # bert-base-uncased's vocabulary size, so embeddings have their real cost


@functools.cache
def _last_hidden_class() -> type:
    import torch

    class LastHidden(torch.nn.Module):
        """``BertModel`` returning only the last hidden state: the tensor every adapter compares."""

        def __init__(self, bert: torch.nn.Module):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.bert(input_ids=input_ids,
                                          attention_mask=attention_mask).last_hidden_state
            return out

    return LastHidden


def last_hidden(model: Any) -> Any:
    """Wrap ``model`` (torch is imported only when a case is built, never at suite import)."""
    return _last_hidden_class()(model).eval()


def forward_flops(layers: int, hidden: int, intermediate: int, batch: int, seq: int) -> float:
    """Matmul FLOPs of one forward pass (padding included: HF BERT computes padded positions).

    Per layer and sequence: q, k, v and output projections 4 · 2·S·H², attention scores and
    weighted sum 2 · 2·S²·H, feed-forward 2 · 2·S·H·I; plus the pooler's 2·H². LayerNorm,
    softmax, GELU and embeddings are O(S·H) and left out.
    """
    per_layer = 8.0 * seq * hidden**2 + 4.0 * seq**2 * hidden + 4.0 * seq * hidden * intermediate
    return batch * (layers * per_layer + 2.0 * hidden**2)


def random_model(size: str, attn: str) -> Any:
    """A float32 ``BertModel`` of ``size`` with seeded random weights; nothing is downloaded.

    Weights follow BERT's own initialisation (normal with ``initializer_range`` for linear and
    embedding weights, zero biases, unit LayerNorms), drawn here in one pass: the constructor's
    default initialisers, which transformers then overwrites, would draw every weight twice and
    take over a second for BERT base.
    """
    import torch
    from transformers import BertConfig, BertModel

    layers, hidden, heads = SIZES[size]
    config = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=4 * hidden,
                        max_position_embeddings=512, attn_implementation=attn)
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # an older transformers: its own (slower) initialisation
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(6)
            return BertModel(config).eval()
    with no_init_weights():
        model = BertModel(config)
    init_like_bert(model, config.initializer_range, seed=6)
    return model.eval()


def init_like_bert(model: torch.nn.Module, std: float, seed: int) -> None:
    """Fill every parameter as BERT's ``_init_weights`` does, from a seeded generator; raises
    if a parameter belongs to a module kind this does not know (it would stay uninitialised)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    done: set[int] = set()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear | torch.nn.Embedding):
                module.weight.normal_(0.0, std, generator=generator)
                done.add(id(module.weight))
                if isinstance(module, torch.nn.Embedding) and module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()
            elif isinstance(module, torch.nn.LayerNorm):
                module.weight.fill_(1.0)
                done.add(id(module.weight))
            else:
                continue
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
                done.add(id(module.bias))
    left = [name for name, p in model.named_parameters() if id(p) not in done]
    if left:
        raise RuntimeError(f"random BERT: no initialisation for {', '.join(left[:3])}")


def checkpoint(model_path: str, attn: str) -> Any:
    """A real checkpoint from a local folder; ``local_files_only`` so nothing is ever fetched."""
    from transformers import BertModel

    return BertModel.from_pretrained(model_path, local_files_only=True,
                                     attn_implementation=attn).eval()


def validate_model_path(model_path: str) -> None:
    """Fail before the run starts when ``model_path`` is not a usable local checkpoint folder
    (the workload's check names the parameter: ``bert.model_path '...' is not a folder``)."""
    if not model_path:
        return
    path = Path(model_path)
    if not path.is_dir():
        raise WorkloadError(f"{model_path!r} is not a folder")
    if not (path / "config.json").is_file():
        raise WorkloadError(f"{model_path!r} has no config.json (not a checkpoint)")


def synthetic_inputs(batch: int, seq: int, padding: float, vocab: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded token ids and a mask whose last ``padding`` fraction of each sequence is padding."""
    import torch

    ids = torch.randint(1, vocab, (batch, seq), generator=generator(7))
    mask = torch.ones(batch, seq, dtype=torch.long)
    padded = round(padding * seq)
    if padded:
        mask[:, seq - padded:] = 0
        ids[:, seq - padded:] = 0  # [PAD]
    return ids, mask


def tokenized_inputs(model_path: str, batch: int, seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled text sample, tokenised by the checkpoint's own tokenizer, padded to ``seq``."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    lines = [line for line in SAMPLE_TEXT.read_text(encoding="utf-8").splitlines() if line]
    texts = [lines[i % len(lines)] for i in range(batch)]
    encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=seq,
                        return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def bert_memory(size: str, batch: int, seq: int, dtype: str, **_: object) -> float:
    """Predicted peak bytes (random-weight sizes): the model in ``dtype`` plus its float32
    reference copy, and per layer the activations and attention scores of one forward pass,
    for the model and the reference."""
    layers, hidden, heads = SIZES.get(size, SIZES["large"])
    weights = VOCAB * hidden + layers * 12 * hidden * hidden
    activations = batch * seq * (4 * hidden) * 4 * 3 + batch * heads * seq * seq * 4 * 2
    return float(weights * (element_size(dtype) + 4) + 2 * activations)


@workload(params={
    "size": list(SIZES),
    "batch": [1, 8],
    "seq": [128, 512],
    "padding": [0.0, 0.5],
    "dtype": list(DTYPES),
    "attn": ["sdpa", "eager"],
    "engine": list(ENGINES),
    "model_path": [""],
}, free=["model_path"], memory=bert_memory,
    imports=["transformers", "transformers.models.bert.modeling_bert"],
    validate={"model_path": validate_model_path, "batch": at_least(1), "seq": at_least(1)})
def bert(size: str, batch: int, seq: int, padding: float, dtype: str, attn: str, engine: str,
         model_path: str) -> Task:
    """BERT encoder forward pass (random weights from a config, or a local checkpoint)."""
    import torch

    if not 0.0 <= padding < 1.0:
        raise WorkloadError(f"bert.padding must be in [0, 1), got {padding}")
    base = checkpoint(model_path, attn) if model_path else random_model(size, attn)
    config = base.config
    if seq > config.max_position_embeddings:
        raise WorkloadError(f"bert.seq {seq} exceeds the model's "
                            f"{config.max_position_embeddings} positions")
    if model_path:
        ids, mask = tokenized_inputs(model_path, batch, seq)
    else:
        ids, mask = synthetic_inputs(batch, seq, padding, config.vocab_size)
    # The reference is the float32 model on the CPU; kept before any cast or device move.
    reference_model = last_hidden(copy.deepcopy(base))
    model = last_hidden(base.to(torch_dtype(dtype)))
    valid = mask.bool()

    def reference() -> torch.Tensor:
        with torch.inference_mode():
            out: torch.Tensor = reference_model(ids, mask)
            return out

    weights = sum(p.numel() for p in base.parameters())
    # A forward pass gathers only batch × seq rows of the word-embedding table, not all of it.
    word_rows = base.embeddings.word_embeddings.weight.numel()
    touched = weights - word_rows + min(batch * seq, config.vocab_size) * config.hidden_size
    return Task(
        fn=model,
        inputs=(ids, mask),
        items=batch,
        flops=forward_flops(config.num_hidden_layers, config.hidden_size,
                            config.intermediate_size, batch, seq),
        # Compulsory traffic: every weight touched once, ids and mask in (int64), hidden
        # states out.
        bytes=float(touched * element_size(dtype) + 2 * batch * seq * 8
                    + batch * seq * config.hidden_size * element_size(dtype)),
        # Padded positions carry no meaning: only real tokens are compared.
        check=relative_error(reference, TOLERANCES[dtype], select=lambda t: t[valid]),
        items_unit="sequences", dtype=dtype, engine=engine,
        meta={"parameters": weights, "model": model_path or f"random {size}"},
    )
