"""BERT: work sizes, padding, reduced precision, checks that catch wrong output, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.workload import WorkloadError
from suites.bert import bert, forward_flops, random_model, synthetic_inputs, validate_model_path

TINY = {"size": "tiny", "batch": 2, "seq": 16, "padding": 0.0, "dtype": "float32",
        "attn": "sdpa", "engine": "eager", "model_path": ""}


def run(task: object) -> torch.Tensor:
    with torch.inference_mode():
        return task.fn(*task.inputs)  # type: ignore[attr-defined,no-any-return]


def test_forward_flops_of_bert_base_at_128_tokens() -> None:
    # The well-known ~22 GFLOP (11 GMAC) per 128-token sequence for bert-base.
    flops = forward_flops(12, 768, 3072, 1, 128)
    assert flops == 12 * (8 * 128 * 768**2 + 4 * 128**2 * 768 + 4 * 128 * 768 * 3072) + 2 * 768**2
    assert 21e9 < flops < 23e9


def test_padding_masks_the_tail_of_each_sequence() -> None:
    ids, mask = synthetic_inputs(batch=2, seq=10, padding=0.3, vocab=100)
    assert mask[:, 7:].sum() == 0 and mask[:, :7].all()
    assert (ids[:, 7:] == 0).all() and (ids[:, :7] > 0).all()


@pytest.mark.parametrize(("dtype", "attn"), [("float32", "sdpa"), ("float32", "eager"),
                                             ("bfloat16", "sdpa")])
def test_check_passes_on_real_output_and_fails_on_a_perturbed_one(dtype: str, attn: str) -> None:
    task = bert.build(**{**TINY, "dtype": dtype, "attn": attn, "padding": 0.25})
    assert task.check is not None
    out = run(task)
    assert out.shape == (2, 16, 128)
    task.check(out)
    with pytest.raises(AssertionError, match="relative error"):
        task.check(out + 0.2 * out.abs().mean())


def test_padded_positions_are_not_compared() -> None:
    task = bert.build(**{**TINY, "padding": 0.5})
    assert task.check is not None
    out = run(task).clone()
    out[:, 8:] = 1e6  # garbage where the mask is zero
    task.check(out)


def test_weights_are_seeded() -> None:
    a, b = random_model("tiny", "sdpa"), random_model("tiny", "sdpa")
    assert torch.equal(a.encoder.layer[0].attention.self.query.weight,
                       b.encoder.layer[0].attention.self.query.weight)


def test_bad_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="is not a folder"):
        validate_model_path(str(tmp_path / "absent"))
    with pytest.raises(WorkloadError, match=r"has no config\.json"):
        validate_model_path(str(tmp_path))
    with pytest.raises(WorkloadError, match="padding must be in"):
        bert.build(**{**TINY, "padding": 1.0})
    with pytest.raises(WorkloadError, match="exceeds the model's 512 positions"):
        bert.build(**{**TINY, "seq": 1024})


def test_local_checkpoint_with_its_tokenizer(tmp_path: Path) -> None:
    random_model("tiny", "sdpa").save_pretrained(tmp_path)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "is", "of"]
    words += [chr(c) for c in range(ord("a"), ord("z") + 1)]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    validate_model_path(str(tmp_path))
    task = bert.build(**{**TINY, "seq": 64, "model_path": str(tmp_path)})
    ids, mask = task.inputs
    assert ids[:, 0].tolist() == [2, 2]  # [CLS] from the checkpoint's own tokenizer
    assert 0 < int(mask.sum()) < ids.numel()  # the sample is tokenised and padded to seq
    assert task.meta["model"] == str(tmp_path)
    assert task.check is not None
    task.check(run(task))


def test_random_weights_follow_berts_initialisation_and_the_seed() -> None:
    model = random_model("tiny", "sdpa")
    again = random_model("tiny", "sdpa")
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(),
                                                 strict=True))
    query = model.encoder.layer[0].attention.self.query
    with torch.no_grad():
        std = float(query.weight.std())
    assert std == pytest.approx(0.02, rel=0.05)
    assert not query.bias.any()
    assert torch.equal(model.embeddings.LayerNorm.weight,
                       torch.ones_like(model.embeddings.LayerNorm.weight))
    assert not model.embeddings.word_embeddings.weight[0].any()  # [PAD] row
    assert model.embeddings.position_ids[0, :3].tolist() == [0, 1, 2]


def test_a_parameter_of_an_unknown_kind_is_an_error_not_garbage() -> None:
    from suites.bert import init_like_bert

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Conv1d(1, 1, 1))
    with pytest.raises(RuntimeError, match=r"no initialisation for 1\.weight"):
        init_like_bert(model, 0.02, seed=0)
