"""The cpu adapter: thread count set and recorded, engines, options parsing."""

from __future__ import annotations

import pytest
import torch

from harness import Task
from harness.adapters import AdapterError
from harness.adapters.cpu import CpuAdapter


def test_threads_are_set_recorded_and_restored() -> None:
    before = torch.get_num_threads()
    adapter = CpuAdapter(threads=1)
    assert torch.get_num_threads() == 1
    assert adapter.info()["threads"] == 1
    assert adapter.config == {"threads": 1}
    adapter.close()
    assert torch.get_num_threads() == before


def test_default_threads_are_torch_defaults_and_recorded() -> None:
    adapter = CpuAdapter()
    assert adapter.config["threads"] == torch.get_num_threads()
    adapter.close()


@pytest.mark.parametrize(
    ("text", "message"),
    [("threads=x", "cpu:threads takes an integer"), ("cores=1", "has no option 'cores'"),
     ("threads", "not of the form key=value")],
)
def test_bad_options(text: str, message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        CpuAdapter.parse_options(text)


def test_options_parse_typed() -> None:
    assert CpuAdapter.parse_options("threads=3") == {"threads": 3}


def test_steps_run_in_inference_mode() -> None:
    adapter = CpuAdapter(threads=1)
    weight = torch.ones(2, requires_grad=True)
    step = adapter.prepare(Task(fn=lambda x: x * weight, inputs=(torch.ones(2),)))
    with adapter.running():
        out = step()
    assert not out.requires_grad
    adapter.close()


def test_unknown_engine_is_not_supported() -> None:
    adapter = CpuAdapter(threads=1)
    ok, reason = adapter.supports(Task(fn=abs, engine="tensorrt"))
    assert not ok and "no engine 'tensorrt'" in reason
    adapter.close()


@pytest.mark.slow
def test_compile_engine_compiles_and_agrees() -> None:
    adapter = CpuAdapter(threads=1)
    x = torch.randn(64)
    step = adapter.prepare(Task(fn=torch.nn.GELU(), inputs=(x,), engine="compile"))
    with adapter.running():
        out = step()
    torch.testing.assert_close(out, torch.nn.functional.gelu(x))
    adapter.close()


def test_ceiling_is_the_host_cpus_at_the_adapters_thread_count(
        host_ceiling_calls: list[tuple[str, int | None]]) -> None:
    adapter = CpuAdapter(threads=1)
    try:
        assert adapter.ceiling("bfloat16").flops_per_s == 1e12
    finally:
        adapter.close()
    assert host_ceiling_calls == [("bfloat16", 1)]
