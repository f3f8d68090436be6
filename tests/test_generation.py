"""The generation pass: figures from per-token marks, reasons for empty ones, the runner's rows,
and graph-compiling adapters skipping generation with the reason."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness import Task, workload
from harness.adapters import GENERATION_REASON, Adapter, Step, graph_support
from harness.config import RunConfig, TimingOptions
from harness.execution.loop import Runner
from harness.generation import figures, intervals_s, mark, phase_roofline
from harness.plan import AdapterSpec, Plan
from harness.results import RunWriter, load
from harness.roofline import Ceiling, Peaks
from harness.workload import Case, Generation, Phase

FAST = TimingOptions(min_time_s=0.005, min_samples=3, max_time_s=0.5, max_warmup_s=0.05)
MS = 1_000_000  # nanoseconds


class Scripted:
    """A 'generation' whose marks are scripted: prefill 5 ms, then 2 ms per decode step."""

    def __init__(self, new_tokens: int):
        self.new_tokens = new_tokens
        self.calls = 0

    def __call__(self, prompt: list[int]) -> tuple[list[int], list[int]]:
        self.calls += 1
        base = self.calls * 1000 * MS
        marks = [base, base + 5 * MS] + [base + (5 + 2 * i) * MS
                                         for i in range(1, self.new_tokens)]
        return [len(prompt)] * self.new_tokens, marks


def scripted_generation(new_tokens: int, batch: int = 2) -> Generation:
    return Generation(timed=Scripted(new_tokens), batch=batch, new_tokens=new_tokens,
                      prefill=Phase(flops=1e9, bytes=1e6), decode=Phase(flops=1e6, bytes=1e8),
                      agreement=lambda tokens: 0.75)


class HostAdapter(Adapter):
    name: ClassVar[str] = "host"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    def prepare(self, task: Task) -> Step:
        fn, inputs = task.fn, task.inputs
        return lambda: fn(*inputs)

    def peaks(self, dtype: str) -> Peaks:
        return Peaks(flops_per_s=1e12, bytes_per_s=1e11, source="fake")

    def ceiling(self, dtype: str) -> Ceiling:
        return Ceiling(2e12, "fake datasheet", 2e11, "fake memory")


@workload(params={"new_tokens": [4, 1]})
def scripted(new_tokens: int) -> Task:
    return Task(fn=lambda prompt: [len(prompt)] * new_tokens, inputs=([1, 2, 3],), items=2,
                generation=scripted_generation(new_tokens))


def test_intervals_from_nanoseconds_and_from_events() -> None:
    assert intervals_s([0, 5 * MS, 7 * MS]) == pytest.approx([5e-3, 2e-3])

    class Event:  # torch.cuda.Event's reading: milliseconds to a later event
        def __init__(self, at_ms: float):
            self.at_ms = at_ms

        def elapsed_time(self, end: Event) -> float:
            return end.at_ms - self.at_ms

    assert intervals_s([Event(1.0), Event(4.0), Event(4.5)]) == pytest.approx([3e-3, 0.5e-3])


def test_mark_reads_the_host_clock_on_cpu_and_refuses_unknown_devices() -> None:
    class Device:
        def __init__(self, kind: str):
            self.type = kind

    first, second = mark(Device("cpu")), mark(Device("cpu"))
    assert isinstance(first, int) and second >= first
    with pytest.raises(RuntimeError, match="no per-token clock for device 'mps'"):
        mark(Device("mps"))


def test_figures_from_scripted_calls() -> None:
    gen = scripted_generation(4, batch=2)
    calls = [[5e-3, 2e-3, 2e-3, 2e-3]] * 6 + [[9e-3, 4e-3, 4e-3, 4e-3]]
    values, missing = figures(gen, calls)
    assert values["ttft_s"] == pytest.approx(5e-3)
    assert values["tpot_s"] == pytest.approx(2e-3)
    assert values["e2e_s"] == pytest.approx(11e-3)
    # batch × decode steps ÷ median decode time: 2 × 3 ÷ 6 ms.
    assert values["decode_tokens_per_s"] == pytest.approx(1000.0)
    assert values["tpot_ci_low_s"] <= values["tpot_s"] <= values["tpot_ci_high_s"]
    assert values["generate_calls"] == 7 and values["token_samples_s"] == calls
    assert not missing


def test_one_token_has_no_decode_figures_and_says_why() -> None:
    values, missing = figures(scripted_generation(1), [[5e-3]] * 6)
    assert values["ttft_s"] == pytest.approx(5e-3)
    for column in ("tpot_s", "tpot_p99_s", "decode_tokens_per_s"):
        assert math.isnan(values[column])
        assert "no decode step" in missing[column]


def test_too_few_calls_leave_the_interval_empty_with_the_reason() -> None:
    values, missing = figures(scripted_generation(3), [[5e-3, 2e-3, 2e-3]] * 3)
    assert math.isnan(values["ttft_ci_low_s"]) and "fewer than 6" in missing["ttft_ci_low_s"]
    assert values["tpot_s"] == pytest.approx(2e-3)


def test_phase_roofline_uses_each_phase_time() -> None:
    gen = scripted_generation(4)
    row = {"ttft_s": 1e-3, "tpot_s": 2e-3}
    missing: dict[str, str] = {}
    peaks = Peaks(flops_per_s=1e12, bytes_per_s=1e11, source="fake")
    ceiling = Ceiling(2e12, "fake datasheet", 2e11, "fake memory")
    values = phase_roofline(gen, row, peaks, ceiling, missing)
    # prefill: 1e9 FLOP in 1 ms = 1e12 FLOP/s, half the compute ceiling.
    assert values["prefill_peak_fraction"] == pytest.approx(0.5)
    # decode: 1e8 B in 3 × 2 ms ≈ 1.67e10 B/s of 2e11.
    assert values["decode_peak_fraction"] == pytest.approx(1e8 / 6e-3 / 2e11)
    unknown = Ceiling.unknown("no ceiling on this adapter")
    values = phase_roofline(gen, row, "no peaks on this adapter", unknown, missing)
    assert math.isnan(values["prefill_peak_fraction"])
    assert missing["prefill_peak_fraction"] == "no ceiling on this adapter"
    # A phase faster than the ceiling proves the ceiling wrong: no fraction over 1.
    values = phase_roofline(gen, row, peaks, Ceiling(5e11, "too low", 2e11, "m"), missing)
    assert math.isnan(values["prefill_peak_fraction"])
    assert missing["prefill_peak_fraction"].startswith("the ceiling is wrong")


def test_the_runner_adds_generation_figures_to_the_row(tmp_path: Path) -> None:
    config = RunConfig(timing=FAST, collect=False, out=tmp_path)
    cases = [Case("demo", scripted, p) for p in scripted.grid("full")]
    writer = RunWriter(tmp_path, {})
    rows = Runner(config, Plan(cases=cases, adapters=[AdapterSpec("host")]), writer).run(
        {"host": HostAdapter()})
    writer.close()
    four, one = rows
    assert four["status"] == "ok", four["message"]
    assert four["ttft_s"] == pytest.approx(5e-3) and four["tpot_s"] == pytest.approx(2e-3)
    assert four["token_agreement"] == 0.75
    assert four["generate_calls"] >= FAST.min_samples
    assert all(len(call) == 4 for call in four["token_samples_s"])
    assert four["prefill_peak_fraction"] == pytest.approx(1e9 / 5e-3 / 2e12)  # vs the ceiling
    assert "generation" in four["meta"]["phases_s"]
    assert "no decode step" in one["missing"]["tpot_s"]
    assert "no decode step" in one["missing"]["decode_peak_fraction"]
    frame = load(writer.path)
    assert frame["ttft_s"].iloc[0] == pytest.approx(5e-3)
    assert json.loads(json.dumps(frame["token_samples_s"].iloc[0]))  # kept as a list


def test_cuda_graphs_leave_generation_figures_empty_with_the_reason(tmp_path: Path) -> None:
    class Graphs(HostAdapter):
        options: ClassVar[dict[str, Any]] = {"graphs": True}

    config = RunConfig(timing=FAST, collect=False, out=tmp_path)
    case = Case("demo", scripted, {"new_tokens": 4})
    row = Runner(config, Plan(cases=[case], adapters=[AdapterSpec("host")]), None).run_case(
        case, AdapterSpec("host"), Graphs())
    assert row["status"] == "ok" and "ttft_s" in row["missing"]
    assert "CUDA graph replays the whole call" in row["missing"]["ttft_s"]


def test_graph_compiling_adapters_skip_generation_with_the_reason() -> None:
    task = Task(fn=len, generation=scripted_generation(4), host_only=False)
    ok, reason = graph_support(task, "host only", "engine {engine}", "impl {impl}")
    assert (ok, reason) == (False, GENERATION_REASON)
    assert graph_support(Task(fn=len, host_only=False), "host only", "engine {engine}",
                         "impl {impl}") == (True, "")
