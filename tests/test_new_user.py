"""A new user's own suite file, run as users run it: a plain Python function and an unwrapped
Hugging Face model on ``cpu``, ``onnxruntime`` and ``xla-cpu``.

The model (a tiny GPT-2 from a config: random weights, nothing downloaded) returns a
``ModelOutput`` holding a cache; it is measured and checked on all three adapters. The function
(a sort of a list) is measured on ``cpu`` and skipped with the reason on the graph adapters,
which never run it. The run exits 0.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Found, not imported: torchax imported into this process would change torch for the tests
# that follow it (torch.compile then looks for a "jax" device).
for _module in ("transformers", "onnxruntime", "torchax"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"{_module} is not installed", allow_module_level=True)

SUITE = textwrap.dedent('''
    """A new user's suite: a plain Python sort and an unwrapped small GPT-2."""
    import random

    from harness import Task, workload


    @workload(params={"n": [1000]})
    def sort_list(n: int) -> Task:
        """Sorts a list of random floats."""
        rng = random.Random(0)
        xs = [rng.random() for _ in range(n)]
        expected = sorted(xs)

        def check(out):
            assert out == expected, "not sorted"

        return Task(fn=sorted, inputs=(xs,), items=n, check=check, items_unit="elements")


    @workload(params={"seq": [16]}, imports=("transformers",))
    def gpt2(seq: int) -> Task:
        """A tiny GPT-2 from a config, returning its ModelOutput."""
        import torch
        from transformers import GPT2Config, GPT2Model

        torch.manual_seed(0)
        config = GPT2Config(n_layer=2, n_head=2, n_embd=64, vocab_size=1000, n_positions=64,
                            bos_token_id=0, eos_token_id=0)
        model = GPT2Model(config).eval()
        ids = torch.randint(0, 1000, (1, seq))
        with torch.inference_mode():
            expected = model(ids).last_hidden_state

        def check(out):
            torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)

        return Task(fn=model, inputs=(ids,), check=check, items_unit="sequences")
''')


@pytest.mark.slow
def test_a_plain_function_and_an_unwrapped_model_on_three_adapters(tmp_path: Path) -> None:
    suite = tmp_path / "my_suite.py"
    suite.write_text(SUITE, encoding="utf-8")
    env = {**os.environ, "HARNESS_ONNX_CACHE": str(tmp_path / "onnx")}
    # One worker per case and adapter (--no-interleave): the same run_case path, a sixth of
    # the worker starts of interleaved generations.
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "-s", str(suite), "-a", "cpu",
         "-a", "onnxruntime", "-a", "xla-cpu", "--no-interleave", "--no-collect",
         "--min-time", "0.01", "--max-time", "0.1", "--out", str(tmp_path / "results")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = (tmp_path / "results").iterdir()
    rows = {(r["workload"], r["adapter"]): r
            for r in map(json.loads, (run / "rows.jsonl").read_text().splitlines())}
    field = "BaseModelOutputWithPastAndCrossAttentions.last_hidden_state"
    for adapter in ("cpu", "onnxruntime", "xla-cpu"):
        model = rows[("gpt2", adapter)]
        assert (model["status"], model["correct"]) == ("ok", True), model["message"]
        assert model["meta"]["output_field"] == field
        assert f"used {field} as the output" in model["message"]
    plain = rows[("sort_list", "cpu")]
    assert (plain["status"], plain["correct"]) == ("ok", True) and plain["meta"]["host_only"]
    # The changed-input probe changes values, so a sort is not called a constant answer.
    assert plain["output_varies"] is True and "did not change" not in (plain["message"] or "")
    for adapter, runtime in (("onnxruntime", "ONNX Runtime"), ("xla-cpu", "XLA")):
        skipped = rows[("sort_list", adapter)]
        assert skipped["status"] == "skipped"
        assert skipped["message"].startswith(f"plain Python function: {runtime} never runs it")
    assert "elements/s" in result.stdout and "sequences/s" in result.stdout
