"""The one tensor a structured output stands for, and adapters' outputs on the host."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from harness.adapters.cpu import CpuAdapter
from harness.adapters.tensors import primary_output

HIDDEN, LOGITS, LOSS = torch.ones(2, 3), torch.zeros(2, 5), torch.tensor(0.5)


@dataclass
class Scores:
    note: str
    scores: torch.Tensor
    extra: torch.Tensor


def model_outputs() -> Any:
    return pytest.importorskip("transformers.modeling_outputs")


def test_a_base_models_output_stands_for_last_hidden_state() -> None:
    outputs = model_outputs()
    output = outputs.BaseModelOutputWithPast(last_hidden_state=HIDDEN, past_key_values=None,
                                             hidden_states=(HIDDEN, HIDDEN))
    tensor, field = primary_output(output)
    assert tensor is HIDDEN and field == "BaseModelOutputWithPast.last_hidden_state"


def test_logits_come_before_a_loss_that_comes_first() -> None:
    outputs = model_outputs()
    tensor, field = primary_output(outputs.CausalLMOutput(loss=LOSS, logits=LOGITS))
    assert tensor is LOGITS and field == "CausalLMOutput.logits"


@pytest.mark.parametrize(("output", "expected", "field"), [
    ({"note": "x", "scores": LOGITS, "hidden": HIDDEN}, LOGITS, "dict['scores']"),
    (OrderedDict(logits=LOGITS, last_hidden_state=HIDDEN), HIDDEN,
     "OrderedDict['last_hidden_state']"),
    (Scores(note="x", scores=LOGITS, extra=HIDDEN), LOGITS, "Scores.scores"),
], ids=["dict", "preferred-name", "dataclass"])
def test_dicts_and_dataclasses_stand_for_their_first_tensor(output: Any, expected: Any,
                                                            field: str) -> None:
    tensor, name = primary_output(output)
    assert tensor is expected and name == field


@pytest.mark.parametrize("output", [
    HIDDEN, (HIDDEN, LOGITS), [HIDDEN], {"count": 3}, [3, 1], None, Scores, "text",
], ids=["tensor", "tuple", "list", "dict-without-tensors", "plain-list", "none", "a-class",
        "str"])
def test_other_outputs_are_left_whole(output: Any) -> None:
    value, field = primary_output(output)
    assert value is output and field == ""


def test_the_cpu_adapter_hands_the_check_the_primary_tensor() -> None:
    adapter = CpuAdapter()
    try:
        assert adapter.to_host({"logits": LOGITS, "cache": object()}) is LOGITS
        assert adapter.to_host((HIDDEN, LOGITS)) == (HIDDEN, LOGITS)
    finally:
        adapter.close()
