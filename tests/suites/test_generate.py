"""The generate workload: our decode loop against transformers' own greedy generate, the marks,
the analytic work per phase, checks at lower precision, and bad parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from harness.workload import WorkloadError
from suites.bert import SAMPLE_TEXT
from suites.generate import (
    AGREEMENT,
    SIZES,
    agreement_check,
    generate,
    generate_memory,
    layer_weights,
    phases,
    random_model,
    shape_of,
)

TINY: dict[str, Any] = {"arch": "llama", "size": "tiny", "prompt": 8, "new_tokens": 5,
                        "batch": 2, "kv_cache": "on", "attn": "sdpa", "dtype": "float32",
                        "engine": "eager", "model_path": ""}


def tokens(task: Any) -> torch.Tensor:
    with torch.inference_mode():
        out: torch.Tensor = task.fn(*task.inputs)
    return out


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize(("kv_cache", "attn"), [("on", "sdpa"), ("off", "eager"),
                                                ("static", "sdpa")])
def test_tokens_equal_the_float32_reference_generation(arch: str, kv_cache: str,
                                                       attn: str) -> None:
    task = generate.build(**{**TINY, "arch": arch, "kv_cache": kv_cache, "attn": attn})
    out = tokens(task)
    assert out.shape == (2, 5) and out.dtype == torch.long
    assert task.check is not None and task.generation is not None
    task.check(out)  # exact agreement with transformers' generate, float32
    assert task.generation.agreement is not None
    assert task.generation.agreement(out) == 1.0
    # A call is repeatable: a static cache is reset, a dynamic one made afresh.
    assert torch.equal(tokens(task), out)


def test_the_timed_variant_marks_every_token() -> None:
    task = generate.build(**TINY)
    assert task.generation is not None
    with torch.inference_mode():
        out, marks = task.generation.timed(*task.inputs)
    assert torch.equal(out, tokens(task))
    assert len(marks) == TINY["new_tokens"] + 1
    assert all(isinstance(m, int) for m in marks) and marks == sorted(marks)


def test_a_wrong_token_fails_the_float32_check() -> None:
    task = generate.build(**TINY)
    out = tokens(task).clone()
    out[0, -1] += 1
    assert task.check is not None
    with pytest.raises(AssertionError, match=r"90\.0% of tokens .* float32 needs at least 100%"):
        task.check(out)


def test_lower_precision_is_judged_by_the_agreement_bound() -> None:
    reference = torch.tensor([[1, 2, 3, 4]])
    agreement, check = agreement_check(lambda: reference, "bfloat16")
    half = torch.tensor([[1, 2, 9, 9]])
    assert agreement(half) == 0.5
    check(half)  # 50% ≥ the bfloat16 bound
    assert AGREEMENT["bfloat16"] <= 0.5
    with pytest.raises(AssertionError, match="bfloat16 needs at least"):
        check(torch.tensor([[9, 9, 9, 9]]))
    with pytest.raises(AssertionError, match="expected tokens of shape"):
        check(torch.tensor([1, 2, 3, 4]))


def test_bfloat16_runs_and_reports_its_agreement() -> None:
    task = generate.build(**{**TINY, "dtype": "bfloat16"})
    assert task.generation is not None and task.generation.agreement is not None
    fraction = task.generation.agreement(tokens(task))
    assert 0.0 <= fraction <= 1.0
    assert task.meta["agreement_bound"] == AGREEMENT["bfloat16"]


def test_layer_weights_count_the_matmul_weights() -> None:
    model = random_model("llama", "tiny", "sdpa")
    shape = SIZES["llama"]["tiny"]
    hidden, kv = shape["hidden"], shape["kv_heads"] * shape["hidden"] // shape["heads"]
    per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * shape["intermediate"]
    assert layer_weights(model) == shape["layers"] * per_layer
    assert shape_of(model.config) == {"layers": 2, "hidden": hidden, "kv": kv,
                                      "vocab": shape["vocab"]}


def test_phase_work_by_hand() -> None:
    shape = {"layers": 1, "hidden": 4, "kv": 2, "vocab": 10}
    prefill, decode = phases(shape, weights=100, batch=1, prompt=3, new_tokens=3,
                             kv_cache="on", size=4)
    # prefill: 2·100·3 + 4·1·4·(3·4/2) + 2·4·10
    assert prefill.flops == 600 + 96 + 80
    # weights and head read once, K and V of 3 positions written (2·1·1·2 values each, 4 B)
    assert prefill.bytes == (100 + 40) * 4 + 3 * 16
    # decode steps at contexts 4 and 5: 2·100 + 4·4·c + 80 each
    assert decode.flops == (200 + 64 + 80) + (200 + 80 + 80)
    assert decode.bytes == 2 * 560 + (4 + 5) * 16
    _, off = phases(shape, weights=100, batch=1, prompt=3, new_tokens=3, kv_cache="off", size=4)
    # without the cache each step runs the whole sequence again: 4 then 5 positions
    assert off.flops == (800 + 4 * 4 * 10 + 80) + (1000 + 4 * 4 * 15 + 80)
    assert off.flops is not None and decode.flops is not None and off.flops > decode.flops


def test_task_work_is_the_sum_of_the_phases() -> None:
    task = generate.build(**TINY)
    gen = task.generation
    assert gen is not None and gen.prefill.flops and gen.decode.flops
    assert task.flops == pytest.approx(gen.prefill.flops + gen.decode.flops)
    assert task.bytes == pytest.approx((gen.prefill.bytes or 0) + (gen.decode.bytes or 0))
    assert task.items == TINY["batch"] and gen.new_tokens == TINY["new_tokens"]


def test_memory_estimate_grows_with_size_and_batch() -> None:
    small = generate_memory(**{**TINY, "size": "small"})
    assert generate_memory(**TINY) < small < generate_memory(**{**TINY, "size": "large"})
    assert small < generate_memory(**{**TINY, "size": "small", "batch": 16})


def test_bad_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"generate\.new_tokens must be an integer of at least"):
        generate.check_params({**TINY, "new_tokens": 0})
    with pytest.raises(WorkloadError, match=r"generate\.model_path .* is not a folder"):
        generate.check_params({**TINY, "model_path": str(tmp_path / "absent")})
    with pytest.raises(WorkloadError, match="exceeds the model's 4096 positions"):
        generate.build(**{**TINY, "prompt": 4000, "new_tokens": 200})
    with pytest.raises(WorkloadError, match="kv_cache takes one of on, off, static"):
        generate.parse_value("kv_cache", "maybe")


def test_local_checkpoint_with_its_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    random_model("gpt2", "tiny", "sdpa").save_pretrained(tmp_path)
    with pytest.raises(WorkloadError, match=r"gave no tokens .* \(is a tokenizer saved there"):
        generate.build(**{**TINY, "model_path": str(tmp_path)})
    words = sorted(set(SAMPLE_TEXT.read_text(encoding="utf-8").split()))
    vocab = {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(
        tmp_path)
    task = generate.build(**{**TINY, "model_path": str(tmp_path)})
    (ids,) = task.inputs
    first = vocab[SAMPLE_TEXT.read_text(encoding="utf-8").split()[0]]
    assert ids.shape == (2, 8) and ids[:, 0].tolist() == [first, first]
    assert task.meta["model"] == str(tmp_path)
    assert task.check is not None
    task.check(tokens(task))


def run_case(adapter: Any, **params: Any) -> dict[str, Any]:
    from harness.config import RunConfig, TimingOptions
    from harness.execution.loop import Runner
    from harness.plan import AdapterSpec, Plan
    from harness.workload import Case

    fast = TimingOptions(min_time_s=0.01, min_samples=3, max_time_s=1.0, max_warmup_s=0.1)
    case = Case("transformer", generate, {**TINY, **params})
    spec = AdapterSpec(adapter.name)
    runner = Runner(RunConfig(timing=fast, collect=False), Plan(cases=[case], adapters=[spec]),
                    None)
    return runner.run_case(case, spec, adapter)


def test_a_cpu_run_has_generation_figures() -> None:
    from harness.adapters.cpu import CpuAdapter

    adapter = CpuAdapter(threads=1)
    try:
        row = run_case(adapter)
    finally:
        adapter.close()
    assert row["status"] == "ok" and row["correct"] is True, row["message"]
    assert 0 < row["ttft_s"] < row["e2e_s"] and 0 < row["tpot_s"] < row["e2e_s"]
    assert row["decode_tokens_per_s"] > 0 and row["token_agreement"] == 1.0
    assert all(len(call) == TINY["new_tokens"] for call in row["token_samples_s"])
    assert row["prefill_flops"] > 0 and row["decode_bytes"] > 0


@pytest.mark.slow
def test_static_cache_compiles_and_agrees() -> None:
    task = generate.build(**{**TINY, "kv_cache": "static", "engine": "compile", "new_tokens": 3})
    assert task.check is not None
    out = tokens(task)
    task.check(out)
    assert torch.equal(tokens(task), out)


@pytest.mark.device
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to torch")
@pytest.mark.parametrize("kv_cache", ["on", "static"])
def test_cuda_marks_tokens_with_events(kv_cache: str) -> None:
    from harness.adapters.cuda import CudaAdapter

    adapter = CudaAdapter()
    try:
        row = run_case(adapter, kv_cache=kv_cache, new_tokens=8)
    finally:
        adapter.close()
    assert row["status"] == "ok" and row["correct"] is True, row["message"]
    assert 0 < row["ttft_s"] < row["e2e_s"] and row["tpot_s"] > 0
    assert all(len(call) == 8 and min(call) > 0 for call in row["token_samples_s"])
    assert row["token_agreement"] == 1.0
