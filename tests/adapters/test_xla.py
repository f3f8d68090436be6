"""The xla-cpu and tpu adapters: availability reasons, what they refuse, every quick built-in
case through torchax on XLA:CPU, compile time, 64-bit keys, moving data, and torch's globals.

Nothing here needs a TPU: the tpu adapter is checked for its reasons and datasheet only.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# torchax is looked up, not imported: importing it outside the adapter would change torch's
# global state for every later test in this process (the thing these adapters must not do).
jax = pytest.importorskip("jax",
                          reason="jax is not installed; pip install 'inference-harness[xla]'")
if importlib.util.find_spec("torchax") is None:
    pytest.skip("torchax is not installed; pip install 'inference-harness[xla]'",
                allow_module_level=True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from harness import Task, plugins  # noqa: E402
from harness.adapters import AdapterError  # noqa: E402
from harness.adapters.torchax_bridge import to_torch  # noqa: E402
from harness.adapters.xla import (  # noqa: E402
    TpuAdapter,
    XlaAdapter,
    XlaCpuAdapter,
    tpu_datasheet_ceiling,
)
from harness.config import RunConfig, TimingOptions  # noqa: E402
from harness.execution.loop import Runner  # noqa: E402
from harness.plan import AdapterSpec, Plan  # noqa: E402
from harness.results import RunWriter  # noqa: E402
from harness.roofline import Peaks  # noqa: E402
from harness.workload import Case  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def adapter() -> Iterator[XlaCpuAdapter]:
    """One adapter for the module: its warm-up compile is paid once."""
    made = XlaCpuAdapter()
    yield made
    made.close()


def case(workload: str, **params: Any) -> Case:
    """The first quick case of a built-in workload, with ``params`` replacing its values."""
    for suite in plugins.all_suites():
        if workload in suite.workloads:
            wl = suite.workloads[workload]
            return Case(suite=suite.name, workload=wl, params={**wl.grid("quick")[0], **params})
    raise LookupError(workload)


def fake_find_spec(monkeypatch: pytest.MonkeyPatch, missing: set[str],
                   present: frozenset[str] = frozenset()) -> None:
    """``importlib.util.find_spec`` answering None for ``missing`` and a spec for ``present``."""
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        if name in missing:
            return None
        if name in present:
            return importlib.machinery.ModuleSpec(name, None)
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


# --- availability ---------------------------------------------------------------------------


def test_xla_cpu_is_available_here() -> None:
    assert XlaCpuAdapter.available() == (True, "")


@pytest.mark.parametrize("module", ["jax", "jaxlib", "torchax"])
def test_xla_cpu_names_what_is_missing_and_how_to_get_it(monkeypatch: pytest.MonkeyPatch,
                                                         module: str) -> None:
    fake_find_spec(monkeypatch, {module})
    assert XlaCpuAdapter.available() == (
        False, f"{module} is not installed; pip install 'inference-harness[xla]'")


def test_tpu_without_jax_points_at_the_tpu_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_find_spec(monkeypatch, {"jax"})
    assert TpuAdapter.available() == (
        False, "jax is not installed; on a Cloud TPU VM: pip install 'inference-harness[tpu]'")


def test_tpu_without_libtpu_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_find_spec(monkeypatch, {"libtpu"})
    monkeypatch.delenv("TPU_LIBRARY_PATH", raising=False)
    assert TpuAdapter.available() == (
        False, "libtpu is not installed (jax has no TPU runtime); "
               "on a Cloud TPU VM: pip install 'inference-harness[tpu]'")


def test_tpu_with_libtpu_but_no_chip_names_the_backends_here(
        monkeypatch: pytest.MonkeyPatch) -> None:
    if any(d.platform == "tpu" for d in jax.devices()):
        pytest.skip("this machine has a TPU")
    fake_find_spec(monkeypatch, set(), present=frozenset({"libtpu"}))
    ok, reason = TpuAdapter.available()
    assert not ok
    backends = ", ".join(sorted({d.platform for d in jax.devices()}))
    assert reason.startswith(
        f"no TPU device: jax.devices('tpu') found none (backends here: {backends})")


def test_availability_imports_neither_jax_nor_torch() -> None:
    code = ("import sys\n"
            "from harness.adapters.xla import TpuAdapter, XlaCpuAdapter\n"
            "print(XlaCpuAdapter.available(), TpuAdapter.available())\n"
            "print(sorted(m for m in ('jax', 'torch', 'torchax') if m in sys.modules))\n")
    if importlib.util.find_spec("libtpu") is not None:
        pytest.skip("libtpu is installed: the tpu check imports jax by design")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out[-1] == "[]"


# --- options and names ----------------------------------------------------------------------


def test_devices_are_named_by_platform_and_index(adapter: XlaCpuAdapter) -> None:
    assert adapter.device == "xla:cpu:0"
    assert TpuAdapter().device == "tpu:0"  # constructible without a TPU; fails on first use


@pytest.mark.parametrize(("options", "message"), [
    ({"device": -1}, "xla-cpu:device must be a non-negative integer"),
    ({"device": 7}, r"xla-cpu:device=7 does not exist: 1 cpu device\(s\) visible"),
    ({"matmul_precision": "fast"}, "xla-cpu:matmul_precision must be one of"),
])
def test_bad_options_are_refused(options: dict[str, Any], message: str) -> None:
    if options.get("device") == 7 and len(jax.devices("cpu")) != 1:
        pytest.skip("this process has more than one XLA:CPU device")
    with pytest.raises(AdapterError, match=message):
        XlaCpuAdapter(**options)


def test_options_parse_typed() -> None:
    assert XlaCpuAdapter.parse_options("device=0,matmul_precision=high") == {
        "device": 0, "matmul_precision": "high"}


def test_info_records_versions_platform_and_device(adapter: XlaCpuAdapter) -> None:
    info = adapter.info()
    assert info["platform"] == "cpu" and info["device_kind"] == "cpu"
    assert info["device_count"] == len(jax.devices("cpu"))
    assert info["jax"] == jax.__version__
    assert info["jaxlib"] and info["torchax"]
    assert info["matmul_precision"] == "highest"


# --- what the adapters refuse ---------------------------------------------------------------


@pytest.mark.parametrize(("workload", "params"), [
    ("hash_lookup", {"impl": "dict"}), ("hash_lookup", {"impl": "pandas"}),
    ("btree_lookup", {"impl": "btree"}),
])
def test_host_only_impls_are_skipped(adapter: XlaCpuAdapter, workload: str,
                                     params: dict[str, Any]) -> None:
    assert adapter.supports(case(workload, **params).build()) == (
        False, "runs Python objects on the host; there is nothing for XLA to compile")


def test_a_plain_python_function_is_skipped_not_traced(adapter: XlaCpuAdapter) -> None:
    # Traced, a sort of Python floats is a constant: a figure XLA never computed.
    ok, reason = adapter.supports(Task(fn=sorted, inputs=([3.0, 1.0, 2.0],)))
    assert not ok and reason.startswith("plain Python function: XLA never runs it")


def test_a_model_output_comes_back_as_its_primary_tensor(adapter: XlaCpuAdapter) -> None:
    outputs = pytest.importorskip("transformers.modeling_outputs")

    class Head(torch.nn.Module):
        """Returns a ModelOutput with a loss first, as a model given labels does."""

        def forward(self, x: torch.Tensor) -> Any:
            return outputs.CausalLMOutput(loss=x.sum(), logits=x * 2)

    x = torch.arange(6.0).reshape(2, 3)
    step = adapter.prepare(Task(fn=Head(), inputs=(x,)))
    with adapter.running():
        torch.testing.assert_close(adapter.to_host(step()), x * 2)
    assert adapter.case_meta() == {"output_field": "CausalLMOutput.logits"}


def test_torch_compile_engine_is_skipped(adapter: XlaCpuAdapter) -> None:
    ok, reason = adapter.supports(Task(fn=abs, engine="compile", host_only=False))
    assert not ok
    assert reason == ("engine 'compile' is a torch engine; the xla-cpu adapter always compiles "
                      "through XLA (run engine=eager)")


@pytest.mark.parametrize("impl", ["sdpa_flash", "sdpa_efficient", "sdpa_math", "sdpa_cudnn"])
def test_pinned_sdpa_back_ends_are_skipped(impl: str) -> None:
    task = case("attention", impl=impl, batch=1, seq=4).build()
    ok, reason = TpuAdapter().supports(task)
    assert not ok
    assert reason == (f"the task pins torch's own {task.torch_kernel} kernel, which XLA does not "
                      "have: XLA lowers the torch operations itself")


@pytest.mark.parametrize("impl", ["sdpa", "math"])
def test_sdpa_and_math_attention_are_supported(adapter: XlaCpuAdapter, impl: str) -> None:
    task = case("attention", impl=impl, batch=1, seq=4).build()
    assert adapter.supports(task) == (True, "")


# --- every quick built-in case the adapter supports passes its check --------------------------


QUICK = [
    case("attention", impl="sdpa"), case("attention", impl="math"),
    case("attention", impl="sdpa", causal=True, dtype="bfloat16"),
    case("ffn"), case("ffn", dtype="float16"), case("bert"),
    case("hash_lookup", impl="torch"),
    case("btree_lookup", impl="searchsorted", op="point"),
    case("btree_lookup", impl="searchsorted", op="range"),
    case("btree_lookup", impl="eytzinger", op="point"),
    case("btree_lookup", impl="eytzinger", op="range"),
]


@pytest.mark.parametrize("built_in", QUICK, ids=lambda c: c.id)
def test_quick_case_passes_its_check_on_xla_cpu(adapter: XlaCpuAdapter, built_in: Case) -> None:
    task = built_in.build()
    assert adapter.supports(task) == (True, "")
    adapter.compile_s = None
    step = adapter.prepare(task)
    assert adapter.compile_s is not None and adapter.compile_s > 0
    with adapter.running():
        output = step()
        adapter.synchronize()
        assert task.check is not None
        task.check(adapter.to_host(output))


def test_64_bit_keys_survive_and_64_bit_mode_stays_scoped(adapter: XlaCpuAdapter) -> None:
    big = torch.tensor([(1 << 62) + 1, -(1 << 62) - 3], dtype=torch.int64)
    step = adapter.prepare(Task(fn=lambda x: x + 1, inputs=(big,)))
    with adapter.running():
        host = adapter.to_host(step())
    assert host.dtype == torch.int64 and host.tolist() == [(1 << 62) + 2, -(1 << 62) - 2]
    assert jax.config.jax_enable_x64 is False  # the process-wide flag was never set


def test_float32_work_stays_float32_under_64_bit_mode(adapter: XlaCpuAdapter) -> None:
    task = case("attention", impl="math").build()
    compiled, _, _ = adapter._compile(task.fn, task.inputs)
    kinds = set(re.findall(r"\b([fsu]\d+)\[", compiled.as_text()))
    assert "f32" in kinds and "f64" not in kinds


def test_non_tensor_inputs_are_constants_of_the_trace(adapter: XlaCpuAdapter) -> None:
    def shift(x: torch.Tensor, by: int, scale: float) -> torch.Tensor:
        return (x >> by) * scale

    x = torch.arange(8, dtype=torch.int64) * 16
    step = adapter.prepare(Task(fn=shift, inputs=(x, 2, 0.5)))
    with adapter.running():
        torch.testing.assert_close(adapter.to_host(step()), (x >> 2) * 0.5)


# --- torch's global state -------------------------------------------------------------------


def test_torch_fastpath_flag_is_untouched_but_off_while_tracing(adapter: XlaCpuAdapter) -> None:
    seen: list[bool] = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.backends.mha.get_fastpath_enabled())
            return x * 2

    before = torch.backends.mha.get_fastpath_enabled()
    step = adapter.prepare(Task(fn=Probe(), inputs=(torch.ones(3),)))
    with adapter.running():
        step()
    assert seen == [False]  # traced once, with the fast path off as torchax requires
    assert torch.backends.mha.get_fastpath_enabled() is before


def test_importing_torchax_leaves_torch_as_it_was() -> None:
    """In a fresh interpreter (torchax's import runs once per process): torch's fast path,
    decomposition table, environment and accelerator are the same before and after using the
    adapter."""
    code = """
import json, os, torch, torch._decomp as d
def state():
    tables = d.global_decomposition_table
    return {"fastpath": torch.backends.mha.get_fastpath_enabled(),
            "decomps": {k: {str(op): id(f) for op, f in v.items()} for k, v in tables.items()},
            "env": os.environ.get("ENABLE_RUNTIME_UPTIME_TELEMETRY"),
            "accelerator": torch.accelerator.is_available()}
before = state()
from harness import Task
from harness.adapters.xla import XlaCpuAdapter
adapter = XlaCpuAdapter()
step = adapter.prepare(Task(fn=torch.nn.Linear(4, 2), inputs=(torch.ones(3, 4),)))
with adapter.running():
    step()
import torchax
print(json.dumps({"equal": before == state(), "torchax": "torchax" in dir()}))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert json.loads(out[-1]) == {"equal": True, "torchax": True}


@pytest.mark.slow
def test_torch_compile_on_the_cpu_still_works_after_torchax(adapter: XlaCpuAdapter) -> None:
    """torchax's ``jax`` accelerator made torch.compile fail for the cpu adapter in the same
    process ("PyTorch is not linked with support for jax devices") until it was hidden."""
    from harness.adapters.cpu import CpuAdapter

    step = adapter.prepare(Task(fn=torch.nn.GELU(), inputs=(torch.ones(4),)))
    with adapter.running():
        step()
    cpu = CpuAdapter(threads=1)
    x = torch.randn(64)
    compiled = cpu.prepare(Task(fn=torch.nn.GELU(), inputs=(x,), engine="compile"))
    with cpu.running():
        torch.testing.assert_close(compiled(), torch.nn.functional.gelu(x))
    cpu.close()


# --- moving data ----------------------------------------------------------------------------


def test_to_host_converts_through_containers() -> None:
    with jax.enable_x64(True):
        ints = jnp.asarray(np.array([1 << 40, -1], dtype=np.int64))
    floats = jnp.arange(4, dtype=jnp.float32)
    out = to_torch({"a": (floats, [ints, 3]), "b": np.ones(2, np.float16), "c": "text"})
    assert set(out) == {"a", "b", "c"}
    first, (second, three) = out["a"]
    assert isinstance(first, torch.Tensor) and first.dtype == torch.float32
    assert first.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert second.dtype == torch.int64 and second.tolist() == [1 << 40, -1]
    assert three == 3 and out["c"] == "text"
    assert out["b"].dtype == torch.float16
    first += 1  # a writable copy: the check may do anything with it
    assert float(floats[0]) == 0.0


def test_to_host_keeps_bfloat16_bit_for_bit() -> None:
    values = torch.randn(16).to(torch.bfloat16)
    array = jnp.asarray(values.float().numpy()).astype(jnp.bfloat16)
    back = to_torch(array)
    assert back.dtype == torch.bfloat16
    assert torch.equal(back.view(torch.int16), values.view(torch.int16))


# --- device memory, energy, peaks -----------------------------------------------------------


def test_xla_cpu_has_no_device_memory_counters_or_energy(adapter: XlaCpuAdapter) -> None:
    adapter.reset_memory_stats()
    assert adapter.memory_stats() == {}
    assert adapter.collectors() == []


def test_tpu_memory_stats_map_jax_peaks(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeTpu:
        device_kind = "TPU v5 lite"

        def memory_stats(self) -> dict[str, int]:
            return {"bytes_in_use": 5, "peak_bytes_in_use": 70, "bytes_limit": 100}

    tpu = TpuAdapter()
    monkeypatch.setattr(tpu, "_resolved", FakeTpu())
    assert tpu.memory_stats() == {"peak_device_bytes": 70}
    assert tpu.ceiling("bfloat16").flops_per_s == 197e12


@pytest.mark.parametrize(("kind", "flops", "bandwidth"), [
    ("TPU v4", 275e12, 1.2e12), ("TPU v5 lite", 197e12, 819e9), ("TPU v5e", 197e12, 819e9),
    ("TPU v5p", 459e12, 2.76e12), ("TPU v6 lite", 918e12, 1.64e12),
])
def test_tpu_datasheet_ceiling_by_device_kind(kind: str, flops: float, bandwidth: float) -> None:
    ceiling = tpu_datasheet_ceiling(kind, "bfloat16")
    assert (ceiling.flops_per_s, ceiling.bytes_per_s) == (flops, bandwidth)
    assert ceiling.flops_note.startswith("datasheet: Cloud TPU")
    # float32 matmuls run on the MXU as bfloat16 passes: the bfloat16 rate bounds them.
    assert tpu_datasheet_ceiling(kind, "float32").flops_per_s == flops


def test_tpu_datasheet_has_no_other_dtypes_or_kinds() -> None:
    int8 = tpu_datasheet_ceiling("TPU v4", "int8")
    assert int8.flops_per_s is None and int8.bytes_per_s == 1.2e12
    v3 = tpu_datasheet_ceiling("TPU v3", "bfloat16")
    assert v3.flops_per_s is None and v3.source == "unknown: no datasheet entry for 'TPU v3'"


def test_xla_cpu_ceiling_is_the_host_cpus(
        adapter: XlaCpuAdapter, host_ceiling_calls: list[tuple[str, int | None]]) -> None:
    assert adapter.ceiling("float32").flops_per_s == 1e12
    assert host_ceiling_calls == [("float32", None)]  # XLA's pool spans every usable core


@pytest.mark.slow
def test_xla_cpu_peaks_are_measured_through_xla(adapter: XlaCpuAdapter) -> None:
    own = XlaAdapter.peaks(adapter, "float32")
    assert own.source.startswith("measured through XLA: matmul 2048x2048 float32")
    assert own.flops_per_s > 1e8 and own.bytes_per_s > 1e8


def test_xla_cpu_roof_is_the_best_of_xla_and_torch_on_this_cpu(
        adapter: XlaCpuAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.adapters import cpu

    xla = Peaks(flops_per_s=2e11, bytes_per_s=3e10, source="xla")
    torch_cpu = Peaks(flops_per_s=3e11, bytes_per_s=2e10, source="torch")
    monkeypatch.setattr(XlaAdapter, "peaks", lambda self, dtype: xla)
    monkeypatch.setattr(cpu, "host_peaks", lambda dtype: torch_cpu)
    peaks = adapter.peaks("float32")
    assert (peaks.flops_per_s, peaks.bytes_per_s) == (3e11, 3e10)
    assert peaks.source.startswith("best of 2 calibrations")


# --- through the runner ---------------------------------------------------------------------


def test_runner_row_has_compile_time_and_precise_reasons(
        adapter: XlaCpuAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = TimingOptions(min_time_s=0.01, min_samples=3, max_time_s=0.5, max_warmup_s=0.05)
    config = RunConfig(timing=fast, collect=False, out=tmp_path)
    lookup = case("btree_lookup", impl="eytzinger", op="point")
    runner = Runner(config, Plan(cases=[lookup], adapters=[AdapterSpec("xla-cpu")]),
                    RunWriter(tmp_path, {}))
    monkeypatch.setattr(adapter, "peaks", lambda dtype: Peaks(1e12, 1e11, "fixed"))
    row = runner.run_case(lookup, AdapterSpec("xla-cpu"), adapter)
    assert row["status"] == "ok" and row["correct"] is True, row["message"]
    assert row["device"] == "xla:cpu:0"
    assert row["compile_s"] > 0 and "compile_s" not in row["missing"]
    assert row["first_call_s"] > 0 and not math.isnan(row["latency_median_s"])
    assert row["missing"]["peak_device_bytes"] == "the xla-cpu adapter has no device memory"

