"""The run modes' common entry points: what a run refuses before it starts, and what the
process running cases inline does with its adapters."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness import nvml, plugins
from harness.adapters import AdapterError
from harness.adapters import cuda as cuda_module
from harness.adapters.cuda import CudaAdapter
from harness.adapters.torch_build import TorchBuild
from harness.cli import main
from harness.config import RunConfig
from harness.execution import ExecutionError, Limits, Mode, execute, open_run, prepare
from harness.plan import PlanError
from harness.results import read_context, read_rows
from tests.execution.test_local import SOURCE, plan_of
from tests.execution.test_loop import FAST, ClosingAdapter
from tests.fakes import FakeCuda, FakeNvml

CAPPED = Mode(limits=Limits(max_memory_bytes=2 * 2**30))


@pytest.fixture
def gpu_here(monkeypatch: pytest.MonkeyPatch) -> FakeCuda:
    """A CUDA build of torch seeing one H200 through NVML; any CUDA start fails the test."""
    fake = FakeNvml(uuids=("GPU-0000",))
    monkeypatch.setattr(nvml, "load", lambda module=None: fake.module)
    monkeypatch.setattr(cuda_module, "torch_build",
                        lambda: TorchBuild("2.13.0+cu128", "12.8", None))
    return FakeCuda(forbid_init=True).install(monkeypatch)


def test_bad_cuda_options_are_refused_without_starting_cuda(tmp_path: Path,
                                                            gpu_here: FakeCuda) -> None:
    CudaAdapter.check_options({"device": 0, "graphs": True})
    with pytest.raises(AdapterError, match="cuda:device=3 does not exist: 1 GPU"):
        CudaAdapter.check_options({"device": 3})
    with pytest.raises(AdapterError, match="cuda:graphs must be true or false"):
        CudaAdapter.check_options({"graphs": 1})
    with pytest.raises(AdapterError, match="adapter 'cuda' has no option 'threads'"):
        CudaAdapter.check_options({"threads": 1})
    plan = plan_of("cuda", "neg")
    plan.adapters[0] = plan.adapters[0].__class__("cuda", {"device": 2})
    with pytest.raises(PlanError, match="cuda:device=2 does not exist"):
        open_run(RunConfig(timing=FAST, out=tmp_path), plan, Mode())
    assert not gpu_here.initialised


def test_a_host_adapters_options_are_checked_by_building_it(tmp_path: Path) -> None:
    plan = plan_of("cpu", "neg")
    plan.adapters[0] = plan.adapters[0].__class__("cpu", {"threads": 0})
    with pytest.raises(PlanError, match="cpu:threads must be a positive integer"):
        open_run(RunConfig(timing=FAST, out=tmp_path), plan, Mode())


def test_a_memory_cap_is_refused_for_cuda_before_anything_starts(gpu_here: FakeCuda) -> None:
    with pytest.raises(PlanError) as refused:
        prepare(plan_of("cuda", "neg"), CAPPED)
    message = str(refused.value)
    assert message.startswith("--max-memory caps each worker's address space (RLIMIT_AS), "
                              "and adapter 'cuda' cannot run under such a cap: CUDA reserves")
    assert "\n" not in message
    # Inline, no worker is capped: nothing to refuse.
    prepare(plan_of("cuda", "neg"), Mode(isolate=False, limits=CAPPED.limits))


def test_the_command_line_refuses_cuda_with_a_memory_cap(
        tmp_path: Path, gpu_here: FakeCuda, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["run", "-s", SOURCE, "-a", "cuda", "--max-memory", "2G",
                   "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("harness: error: --max-memory caps each worker's address space")
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # no run folder


class InlineClosing(ClosingAdapter):
    name: ClassVar[str] = "inline-closing"


def test_an_error_closing_an_inline_adapter_is_reported_after_its_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(plugins.checkout_entry_points()["harness.adapters"], "inline-closing",
                        f"{__name__}:InlineClosing")
    config = RunConfig(timing=FAST, collect=False, out=tmp_path)
    plan = plan_of("inline-closing", "neg")
    mode = Mode(isolate=False)
    writer = open_run(config, plan, mode)
    with pytest.raises(ExecutionError) as failed:
        execute(config, plan, writer, mode)
    assert str(failed.value).startswith(
        "close failed (inline-closing): RuntimeError: CUDA error: unspecified launch failure")
    rows = read_rows(writer.path)
    assert [r["status"] for r in rows] == ["ok", "ok"]  # written before the close
    assert read_context(writer.path)["adapters"]["inline-closing"]["name"] == "inline-closing"


def test_inline_the_running_process_records_its_adapters_info(tmp_path: Path) -> None:
    config = RunConfig(timing=FAST, collect=False, out=tmp_path)
    plan = plan_of("cpu", "neg")
    mode = Mode(isolate=False)
    writer = open_run(config, plan, mode)
    assert read_context(writer.path)["adapters"] == {}
    execute(config, plan, writer, mode)
    info: dict[str, Any] = read_context(writer.path)["adapters"]["cpu"]
    assert info["name"] == "cpu" and info["threads"] >= 1


@pytest.mark.parametrize(("mode", "interleaved", "note"), [
    (Mode(), True, None),
    (Mode(interleave=False), False, None),
    (Mode(isolate=False), False, "--no-isolate runs every adapter in this one process"),
    (Mode(cluster="ray://head:10001"), False, "a cluster run places each case on a node"),
])
def test_the_context_says_whether_the_adapters_were_interleaved(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: Mode, interleaved: bool,
        note: str | None) -> None:
    plan = plan_of("cpu", "neg")
    plan.adapters.append(plan.adapters[0].__class__("cpu", {"threads": 1}))
    writer = open_run(RunConfig(timing=FAST, out=tmp_path), plan, mode)
    writer.close()
    context = read_context(writer.path)
    assert context["interleaved"] is interleaved
    assert context["config"]["interleave"] is mode.interleave
    err = capsys.readouterr().err
    assert (note in err) if note else "not interleaved" not in err
    # One adapter: nothing to interleave, and nothing to say about it.
    writer = open_run(RunConfig(timing=FAST, out=tmp_path / "one"), plan_of("cpu", "neg"), mode)
    writer.close()
    assert read_context(writer.path)["interleaved"] is False
    assert "not interleaved" not in capsys.readouterr().err
