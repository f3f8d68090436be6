"""LLM generation: a decoder-only model (GPT-2 or Llama-style) greedily generating tokens.

Models are built from transformers configs with seeded random weights (nothing is downloaded),
or loaded from a local checkpoint folder. Each call runs prefill over the prompt and then
exactly ``new_tokens - 1`` decode steps: greedy argmax of the raw logits, end-of-sequence
ignored, so every call does the same work. The decode loop is our own (not ``generate``), so
that a mark can be taken after every token; ``generate`` itself is the float32 reference.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import TYPE_CHECKING, Any

from harness import Task, workload
from harness.generation import mark
from harness.workload import Generation, Phase, WorkloadError, at_least
from suites.bert import SAMPLE_TEXT, validate_model_path
from suites.data import DTYPES, ENGINES, element_size, generator, torch_dtype

if TYPE_CHECKING:
    import torch


@functools.cache
def _disabled_mark() -> Any:
    import torch

    # Dynamo must never trace a clock read: under engine=compile it would be a graph break at
    # best and a constant at worst.
    return torch.compiler.disable(mark)


#: arch → size → config fields. Llama-style: grouped-query attention, SwiGLU, RMSNorm, RoPE,
#: tied embeddings; "large" is Llama 3.2 1B's shape, "small" SmolLM2 135M's. GPT-2: "small" is
#: GPT-2 (124M), "large" GPT-2 large (774M).
SIZES: dict[str, dict[str, dict[str, int]]] = {
    "llama": {
        "tiny": {"layers": 2, "hidden": 128, "heads": 4, "kv_heads": 2, "intermediate": 352,
                 "vocab": 32000},
        "small": {"layers": 30, "hidden": 576, "heads": 9, "kv_heads": 3, "intermediate": 1536,
                  "vocab": 49152},
        "large": {"layers": 16, "hidden": 2048, "heads": 32, "kv_heads": 8,
                  "intermediate": 8192, "vocab": 128256},
    },
    "gpt2": {
        "tiny": {"layers": 2, "hidden": 128, "heads": 2, "vocab": 50257},
        "small": {"layers": 12, "hidden": 768, "heads": 12, "vocab": 50257},
        "large": {"layers": 36, "hidden": 1280, "heads": 20, "vocab": 50257},
    },
}
#: kv_cache values: on (a cache that grows per token), static (preallocated to prompt +
#: new_tokens: fixed shapes, which compilers need), off (every step recomputes the whole
#: sequence: what the cache saves).
KV_CACHE = ("on", "off", "static")
#: lowest fraction of generated tokens equal to the float32 reference's, by dtype. Rounding
#: can flip a near-tie between the two most likely tokens, and from there the sequences
#: diverge; float32 itself must agree exactly.
AGREEMENT = {"float32": 1.0, "bfloat16": 0.5, "float16": 0.75}
MAX_POSITIONS = 4096


def build_config(arch: str, size: str, attn: str) -> Any:
    """A transformers config for ``arch`` and ``size`` (random weights are drawn from it)."""
    from transformers import GPT2Config, LlamaConfig

    shape = SIZES[arch][size]
    if arch == "gpt2":
        return GPT2Config(vocab_size=shape["vocab"], n_embd=shape["hidden"],
                          n_layer=shape["layers"], n_head=shape["heads"],
                          n_positions=MAX_POSITIONS, attn_implementation=attn)
    return LlamaConfig(vocab_size=shape["vocab"], hidden_size=shape["hidden"],
                       num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
                       num_key_value_heads=shape["kv_heads"],
                       intermediate_size=shape["intermediate"],
                       max_position_embeddings=MAX_POSITIONS, tie_word_embeddings=True,
                       attn_implementation=attn)


def random_model(arch: str, size: str, attn: str) -> Any:
    """A float32 causal LM with seeded random weights (the architecture's own initialiser)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(8)
        return AutoModelForCausalLM.from_config(build_config(arch, size, attn)).eval()


def checkpoint(model_path: str, attn: str) -> Any:
    """A causal LM from a local folder; ``local_files_only`` so nothing is ever fetched."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True,
                                                attn_implementation=attn,
                                                dtype="float32").eval()


@functools.cache
def _cache_keyword(model_class: type) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache``; use whichever it takes."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters \
        else "past_key_values"


@functools.cache
def _decoder_classes() -> tuple[type, type]:
    import torch

    class Decoder(torch.nn.Module):
        """Greedy generation of exactly ``new_tokens`` tokens per sequence."""

        def __init__(self, model: torch.nn.Module, new_tokens: int, kv_cache: str,
                     engine: str):
            super().__init__()
            self.model = model
            self.new_tokens = new_tokens
            self.kv_cache = kv_cache
            self.engine = engine
            # Held in a list, so that the compiled wrapper is not registered as a submodule.
            self._compiled: list[Any] = []
            self._static: dict[tuple[int, str], Any] = {}

        def _forward(self) -> Any:
            # Compiled on first use, on the device the adapter put the model on: the loop stays
            # Python, the model's forward is what torch.compile compiles.
            if self.engine != "compile":
                return self.model
            if not self._compiled:
                self._compiled.append(torch.compile(self.model))
            return self._compiled[0]

        def _cache(self, ids: torch.Tensor) -> Any:
            from transformers import DynamicCache, StaticCache

            config = self.model.config
            if self.kv_cache == "on":
                return DynamicCache(config=config)
            key = (ids.shape[0], str(ids.device))
            if key not in self._static:
                self._static[key] = StaticCache(config=config,
                                                max_cache_len=ids.shape[1] + self.new_tokens)
            cache = self._static[key]
            cache.reset()
            return cache

        # Disabled for Dynamo: an adapter compiling the whole module (engine=compile) would
        # otherwise unroll the loop; the model's forward is compiled on its own (_forward).
        @torch.compiler.disable
        def forward(self, ids: torch.Tensor) -> Any:
            return self.run(ids, timed=False)

        @torch.compiler.disable
        def run(self, ids: torch.Tensor, timed: bool) -> Any:
            """The tokens, and with ``timed`` a mark before prefill and after every token."""
            marks = [_disabled_mark()(ids.device)] if timed else None
            forward = self._forward()
            step: Any = ids
            keyword = _cache_keyword(type(self.model))
            cache = None if self.kv_cache == "off" else self._cache(ids)
            prompt = ids.shape[1]
            tokens = []
            for i in range(self.new_tokens):
                if cache is None:
                    logits = forward(input_ids=step, use_cache=False, logits_to_keep=1).logits
                else:
                    kwargs = {keyword: cache}
                    if self.kv_cache == "static":
                        start = 0 if i == 0 else prompt + i - 1
                        kwargs["cache_position"] = torch.arange(
                            start, start + step.shape[1], device=ids.device)
                    logits = forward(input_ids=step, use_cache=True, logits_to_keep=1,
                                     **kwargs).logits
                token = logits[:, -1].argmax(-1, keepdim=True)
                tokens.append(token)
                step = torch.cat([step, token], dim=1) if cache is None else token
                if marks is not None:
                    marks.append(_disabled_mark()(ids.device))
            out = torch.cat(tokens, dim=1)
            return (out, marks) if marks is not None else out

    class Timed(torch.nn.Module):
        """The same decoder, returning ``(tokens, marks)``."""

        def __init__(self, decoder: Decoder):
            super().__init__()
            self.decoder = decoder

        @torch.compiler.disable
        def forward(self, ids: torch.Tensor) -> Any:
            return self.decoder.run(ids, timed=True)

    return Decoder, Timed


def prompt_ids(model_path: str, batch: int, prompt: int, vocab: int) -> torch.Tensor:
    """Seeded random ids, or (with a checkpoint) the bundled text sample in its own tokens,
    repeated to ``prompt`` tokens; no padding, so every sequence has the prompt's length."""
    import torch

    if not model_path:
        return torch.randint(0, vocab, (batch, prompt), generator=generator(9))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    ids = tokenizer(SAMPLE_TEXT.read_text(encoding="utf-8"))["input_ids"]
    if not ids:
        raise WorkloadError(f"the tokenizer in {model_path!r} gave no tokens for "
                            f"{SAMPLE_TEXT.name} (is a tokenizer saved there?)")
    ids = (ids * (prompt // len(ids) + 1))[:prompt]
    return torch.tensor([ids] * batch)


def reference_tokens(model: Any, ids: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """transformers' own greedy ``generate`` on the float32 model on the CPU, end-of-sequence
    disabled (and so never suppressed), exactly ``new_tokens`` new tokens."""
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(do_sample=False, max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, eos_token_id=None, pad_token_id=0)
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids),
                             generation_config=config)
    return out[:, ids.shape[1]:]


def agreement_check(reference: Any, dtype: str) -> tuple[Any, Any]:
    """(fraction of tokens equal to the reference, a check holding it to AGREEMENT[dtype])."""
    import torch

    cache: list[torch.Tensor] = []

    def agreement(tokens: Any) -> float:
        if not cache:
            cache.append(reference())
        ref = cache[0]
        if not isinstance(tokens, torch.Tensor) or tokens.shape != ref.shape:
            shape = getattr(tokens, "shape", type(tokens).__name__)
            raise AssertionError(f"expected tokens of shape {tuple(ref.shape)}, got {shape}")
        return float((tokens.cpu() == ref).double().mean())

    def check(tokens: Any) -> None:
        fraction = agreement(tokens)
        bound = AGREEMENT[dtype]
        if fraction < bound:
            raise AssertionError(f"{fraction:.1%} of tokens equal the float32 reference "
                                 f"generation's; {dtype} needs at least {bound:.0%}")

    return agreement, check


def shape_of(config: Any) -> dict[str, int]:
    """Layers, hidden size, KV width (KV heads × head size) and vocabulary of any decoder."""
    heads = config.num_attention_heads
    hidden = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return {"layers": config.num_hidden_layers, "hidden": hidden, "kv": kv_heads * head_dim,
            "vocab": config.vocab_size}


def layer_weights(model: Any) -> int:
    """Matmul weights of the decoder layers (2-D parameters outside the embeddings): each is
    used once per token in a multiply-add."""
    embeddings = {id(p) for m in model.modules() if type(m).__name__ == "Embedding"
                  for p in m.parameters()}
    head = model.get_output_embeddings()
    head_ids = {id(p) for p in head.parameters()} if head is not None else set()
    return sum(p.numel() for p in model.parameters()
               if p.dim() == 2 and id(p) not in embeddings and id(p) not in head_ids)


def phases(shape: dict[str, int], weights: int, batch: int, prompt: int, new_tokens: int,
           kv_cache: str, size: int) -> tuple[Phase, Phase]:
    """Analytic FLOPs and compulsory bytes of prefill and of all decode steps of one call.

    FLOPs (work executed): 2 per weight per token through the layers; causal attention
    4·H·(c(c+1)/2) per layer for c positions attending to themselves and their past (query
    by key, weights by value), 4·H·c for one new position attending to c; the output
    projection 2·H·V for the last position only. With the cache off, every decode step runs
    the whole sequence again: that recomputation is counted, it is the work done.
    Bytes: every weight read once per forward, plus the KV cache written (prefill) or read
    whole and extended by one position (decode); the word-embedding rows gathered are left out.
    """
    layers, hidden, kv, vocab = shape["layers"], shape["hidden"], shape["kv"], shape["vocab"]
    head = 2.0 * hidden * vocab
    read_weights = (weights + hidden * vocab) * size

    def full(c: int) -> float:  # one forward over c positions
        return batch * (2.0 * weights * c + 4.0 * layers * hidden * c * (c + 1) / 2 + head)

    kv_bytes = 2.0 * layers * batch * kv * size  # K and V of one position, every layer
    prefill = Phase(full(prompt), read_weights + prompt * kv_bytes * (kv_cache != "off"))
    flops = bytes_ = 0.0
    for t in range(1, new_tokens):
        context = prompt + t  # positions the new token attends to, itself included
        if kv_cache == "off":
            flops += full(context)
            bytes_ += read_weights
        else:
            flops += batch * (2.0 * weights + 4.0 * layers * hidden * context + head)
            bytes_ += read_weights + context * kv_bytes
    return prefill, Phase(flops, bytes_)


def generate_memory(arch: str, size: str, batch: int, prompt: int, new_tokens: int, dtype: str,
                    kv_cache: str, **_: object) -> float:
    """Predicted peak bytes (random-weight sizes): the model in ``dtype`` and its float32
    reference, the KV cache of the model and of the reference, and one forward's activations
    (the widest layer for every position, in float32) and last-position logits."""
    shape = SIZES[arch].get(size, SIZES[arch]["large"])
    hidden, layers, vocab = shape["hidden"], shape["layers"], shape["vocab"]
    width = shape.get("intermediate", 4 * hidden)
    per_layer = 4 * hidden * hidden + (3 if arch == "llama" else 2) * hidden * width
    weights = vocab * hidden + layers * per_layer
    positions = batch * (prompt + new_tokens)
    cache = 2.0 * layers * positions * hidden * (element_size(dtype) + 4)
    activations = positions * width * 4 * 4 + batch * vocab * 4 * 2
    return float(weights * (element_size(dtype) + 4) + cache + activations)


@workload(params={
    "arch": ["llama", "gpt2"],
    "size": ["tiny", "small", "large"],
    "prompt": [32, 128, 512],
    "new_tokens": [16, 64, 256],
    "batch": [1, 4, 16],
    "kv_cache": list(KV_CACHE),
    "attn": ["sdpa", "eager"],
    "dtype": list(DTYPES),
    "engine": list(ENGINES),
    "model_path": [""],
}, free=["model_path"], memory=generate_memory,
    imports=["transformers", "transformers.models.llama.modeling_llama",
             "transformers.models.gpt2.modeling_gpt2"],
    validate={"model_path": validate_model_path, "batch": at_least(1), "prompt": at_least(1),
              "new_tokens": at_least(1)})
def generate(arch: str, size: str, prompt: int, new_tokens: int, batch: int, kv_cache: str,
             attn: str, dtype: str, engine: str, model_path: str) -> Task:
    """Greedy LLM generation: prefill then decode (random-weight GPT-2/Llama, or a checkpoint)."""
    base = checkpoint(model_path, attn) if model_path else random_model(arch, size, attn)
    config = base.config
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and prompt + new_tokens > positions:
        raise WorkloadError(f"generate.prompt + new_tokens = {prompt + new_tokens} exceeds the "
                            f"model's {positions} positions")
    ids = prompt_ids(model_path, batch, prompt, config.vocab_size)
    # The reference is the float32 model on the CPU, kept before any cast or device move.
    reference_model = copy.deepcopy(base)
    model = base.to(torch_dtype(dtype))
    decoder_class, timed_class = _decoder_classes()
    decoder = decoder_class(model, new_tokens, kv_cache, engine)
    agreement, check = agreement_check(
        lambda: reference_tokens(reference_model, ids, new_tokens), dtype)
    shape = shape_of(config)
    weights = layer_weights(model)
    prefill, decode = phases(shape, weights, batch, prompt, new_tokens, kv_cache,
                             element_size(dtype))
    return Task(
        fn=decoder,
        inputs=(ids,),
        items=batch,
        flops=(prefill.flops or 0.0) + (decode.flops or 0.0),
        bytes=(prefill.bytes or 0.0) + (decode.bytes or 0.0),
        check=check,
        generation=Generation(timed=timed_class(decoder),
                              batch=batch, new_tokens=new_tokens, prefill=prefill,
                              decode=decode, agreement=agreement),
        items_unit="sequences", dtype=dtype, engine=engine,
        meta={"attn": attn, "kv_cache": kv_cache,
              "parameters": sum(p.numel() for p in base.parameters()),
              "model": model_path or f"random {arch} {size}",
              "agreement_bound": AGREEMENT[dtype]},
    )
