"""Interleaved runs: the steered timer, rounds A B C C B A with one side at a time, generations,
speedups with intervals, merged rows, and `harness run` with two adapters end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.config import TimingOptions
from harness.execution.interleave import (
    GENERATIONS,
    SteeredTimer,
    Turn,
    draw_order,
    generation_timing,
    merge_rows,
    reference_index,
    speedup,
    take_turns,
)
from harness.plan import AdapterSpec
from tests.fakes import FakeClock

TIMING = TimingOptions(min_time_s=0.01, max_time_s=1.0, min_samples=4)


class FakePort:
    """The parent's messages, given in advance; what the worker sent, recorded."""

    def __init__(self, messages: list[dict[str, Any]]):
        self.inbox, self.sent = list(messages), []  # type: ignore[var-annotated]

    def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def recv(self) -> dict[str, Any]:
        return self.inbox.pop(0)


def test_the_steered_timer_samples_only_when_told_and_stops_when_told() -> None:
    clock = FakeClock()
    calls = []

    def step() -> int:
        calls.append(clock.now)
        clock.advance(0.002)
        return len(calls)

    port = FakePort([{"op": "sample"}] * 3 + [{"op": "stop", "capped": True}])
    timer = SteeredTimer(TimingOptions(), port)  # type: ignore[arg-type]
    timer.clock = clock
    before = len(calls)
    samples, total, capped = timer.sample(step, lambda: None, loops=2)
    assert port.sent[0] == {"ready": 2}
    assert [m["ns"] for m in port.sent[1:]] == samples == [4_000_000] * 3
    assert len(calls) - before == 6 and total == 12_000_000 and capped
    # the checked outputs: samples 1 and the last, as the plain timer keeps them
    assert [i for i, _ in timer.sampled_outputs] == [0, 2]


class FakeChannel:
    """A side whose samples cost ``cost`` seconds; every request is logged in order."""

    def __init__(self, name: str, cost: float, log: list[str], fail_after: int | None = None,
                 ready: bool = True):
        self.name, self.cost, self.log, self.fail_after = name, cost, log, fail_after
        self.ready, self.done, self.taken = ready, False, 0
        self.reply: dict[str, Any] | None = None
        log.append(f"open {name}")

    def recv(self) -> dict[str, Any]:
        if not self.ready:
            self.done = True
            return {"row": {"status": "skipped"}}
        reply, self.reply = self.reply, None
        return reply or {"ready": 1}

    def send(self, message: dict[str, Any]) -> None:
        self.reply = self.answer(message)

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        return self.recv()

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        if message["op"] == "stop":
            self.log.append(f"stop {self.name}")
            self.done = True
            return {"row": {"status": "ok", "name": self.name, "capped": message["capped"]}}
        self.log.append(self.name)
        self.taken += 1
        if self.fail_after is not None and self.taken > self.fail_after:
            self.done = True
            return {"error": "the worker was killed by SIGKILL"}
        return {"ns": int(self.cost * 1e9)}


def opened(channels: dict[str, FakeChannel], log: list[str], **kwargs: Any) -> Any:
    def make(name: str, cost: float) -> Any:
        def opener() -> FakeChannel:
            channels[name] = FakeChannel(name, cost, log, **kwargs.get(name, {}))
            return channels[name]
        return opener
    return make


def test_rounds_alternate_a_b_c_c_b_a_one_side_at_a_time_in_the_drawn_order() -> None:
    log: list[str] = []
    channels: dict[str, FakeChannel] = {}
    make = opened(channels, log)
    turns = take_turns([make("A", 0.004), make("B", 0.004), make("C", 0.004)], "ABC",
                       TIMING, order=[1, 0, 2])
    assert log[:3] == ["open B", "open A", "open C"]  # each opened (and warmed up) alone
    rounds = log[3:log.index("stop B")]
    assert rounds[:9] == ["B", "A", "C", "C", "A", "B", "B", "A", "C"]
    assert len(rounds) % 3 == 0
    n = len(rounds) // 3
    # 4 rounds give each side 16 ms >= the 10 ms minimum; min_samples is 4
    assert n == 4 and all(len(t.samples_ns) == n for t in turns)
    assert [t.label for t in turns] == ["A", "B", "C"]
    assert log[-3:] == ["stop B", "stop A", "stop C"]
    assert all(t.result and t.result["row"]["capped"] is False for t in turns)


def test_a_side_that_dies_or_is_skipped_leaves_the_rounds_and_the_others_go_on() -> None:
    log: list[str] = []
    channels: dict[str, FakeChannel] = {}
    make = opened(channels, log, B={"fail_after": 2}, C={"ready": False})
    turns = take_turns([make("A", 0.001), make("B", 0.001), make("C", 0.001)], "ABC",
                       TIMING, order=[0, 1, 2])
    assert turns[1].result == {"error": "the worker was killed by SIGKILL"}
    assert len(turns[1].samples_ns) == 2 and turns[2].samples_ns == []
    assert turns[2].result == {"row": {"status": "skipped"}}
    assert len(turns[0].samples_ns) == 10  # 10 ms of 1 ms samples
    assert "C" not in log and "stop C" not in log


def test_the_time_cap_stops_the_rounds_and_says_so() -> None:
    log: list[str] = []
    make = opened({}, log)
    slow = TimingOptions(min_time_s=0.0, max_time_s=0.05, min_samples=10**9)
    turns = take_turns([make("A", 0.0), make("B", 0.0)], "AB", slow, order=[0, 1])
    assert all(t.result and t.result["row"]["capped"] is True for t in turns)


def turn(label: str, per_call_s: list[float]) -> Turn:
    return Turn(label, loops=1, samples_ns=[round(x * 1e9) for x in per_call_s])


def test_the_speedup_is_the_median_of_generation_medians_with_their_interval() -> None:
    factors = [1.9, 2.0, 2.1, 1.95, 2.05, 2.2]
    ref = [turn("cpu", [1e-3] * 9) for _ in factors]
    other = [turn("x", [1e-3 / f] * 9) for f in factors]
    value, low, high, reason = speedup(ref, other)
    assert value == pytest.approx(statistics_median(factors), rel=1e-5)
    assert (low, high) == pytest.approx((1.9, 2.2), rel=1e-5) and reason == ""
    value, low, high, reason = speedup(ref[:5], other[:5])
    assert math.isnan(low) and "5 generations are too few" in reason
    assert not math.isnan(value)


def statistics_median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def test_rounds_that_pair_drift_cancel_it() -> None:
    # the machine slows 3x halfway; each round sees it on both sides alike
    drift = [1.0] * 10 + [3.0] * 10
    ref = [turn("cpu", [1e-3 * d for d in drift])] * GENERATIONS
    other = [turn("x", [0.5e-3 * d for d in drift])] * GENERATIONS
    assert speedup(ref, other)[:3] == pytest.approx((2.0, 2.0, 2.0))


def test_generations_split_the_sampling_and_orders_differ_but_repeat() -> None:
    timing = generation_timing(TimingOptions(min_time_s=1.2, max_time_s=6.0, min_samples=20))
    assert timing.min_time_s == pytest.approx(1.2 / GENERATIONS)
    assert timing.max_time_s == pytest.approx(1.0) and timing.min_samples == 5
    orders = {tuple(draw_order(2, "case", 0, g)) for g in range(GENERATIONS)}
    assert orders == {(0, 1), (1, 0)}
    assert draw_order(3, "case", 1) == draw_order(3, "case", 1)


def test_the_reference_is_matched_by_label_then_name_else_the_first() -> None:
    specs = [AdapterSpec("cpu", {"threads": 1}), AdapterSpec("cpu", {}), AdapterSpec("onnxruntime")]
    assert reference_index(specs, "cpu") == 1
    assert reference_index(specs, "cpu:threads=1") == 0
    assert reference_index(specs, "onnxruntime") == 2
    assert reference_index(specs, "tpu") == 0


def row(samples: list[float], **extra: Any) -> dict[str, Any]:
    return {"status": "ok", "message": "", "correct": True, "items": 1, "samples_s": samples,
            "sampling_s": sum(samples), "warmup_s": 0.1, "warmup_steady": True,
            "flops": 2e6, "bytes": math.nan, "latency_median_s": 9.0, "peak_flops_per_s": 1e9,
            "peak_bytes_per_s": 1e9, "peak_source": "test", "first_call_s": 0.5,
            "missing": {"bytes": "none"}, "meta": {}, **extra}


def test_merged_rows_summarise_every_generations_samples() -> None:
    merged = merge_rows([row([1e-3] * 6), row([3e-3] * 6, first_call_s=0.01)])
    assert merged["n_samples"] == 12 and len(merged["samples_s"]) == 12
    assert merged["latency_median_s"] == pytest.approx(2e-3)
    assert merged["first_call_s"] == 0.5  # the cold first call is the first generation's
    assert merged["warmup_s"] == pytest.approx(0.2)
    assert merged["achieved_flops_per_s"] == pytest.approx(1e9)
    assert merged["attainable_fraction"] == pytest.approx(1.0)  # of the measured roof
    assert merged["meta"]["generations"] == 2


def test_a_failed_or_wrong_generation_shows_in_the_merged_row() -> None:
    failed = merge_rows([row([1e-3] * 6), {"status": "error", "message": "timing failed: X"}])
    assert failed["status"] == "error"
    assert failed["message"] == "timing failed: X; in worker generation 2 of 2"
    wrong = merge_rows([row([1e-3] * 6), row([1e-3] * 6, correct=False, message="check failed")])
    assert wrong["correct"] is False and wrong["message"] == "check failed"


SUITE = '''
from harness import Task, workload


@workload(params={"n": [3000]})
def loop(n: int) -> Task:
    data = list(range(n))
    return Task(fn=lambda: sum(x * x for x in data), check=lambda out: None)
'''


def run_harness(tmp_path: Path, *extra: str) -> tuple[int, str, list[dict[str, Any]]]:
    suite = tmp_path / "suite.py"
    suite.write_text(SUITE)
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "run", "-s", str(suite), "-a", "cpu",
         "-a", "cpu:threads=1", "--min-time", "0.06", "--no-collect", "--out", str(out),
         *extra], capture_output=True, text=True, timeout=600)
    rows = [json.loads(line) for run in out.iterdir()
            for line in (run / "rows.jsonl").read_text().splitlines()]
    return done.returncode, done.stdout, rows


@pytest.mark.slow
def test_a_run_with_two_adapters_is_interleaved_and_prints_speedups(tmp_path: Path) -> None:
    status, out, rows = run_harness(tmp_path)
    assert status == 0, out
    by_label = {r["adapter_label"]: r for r in rows}
    assert set(by_label) == {"cpu", "cpu:threads=1"}
    assert all(r["interleaved"] is True and r["speedup_reference"] == "cpu" for r in rows)
    other = by_label["cpu:threads=1"]
    assert other["speedup_ci_low"] <= other["speedup"] <= other["speedup_ci_high"]
    assert 0.5 < other["speedup"] < 2  # the same hardware and code
    assert by_label["cpu"]["speedup"] is None  # NaN in the row, null in JSON
    assert "reference" in by_label["cpu"]["missing"]["speedup"]
    # each row is a plain row: its own samples, latency and check
    assert all(r["n_samples"] >= 20 and r["correct"] is True and r["status"] == "ok"
               for r in rows)
    assert all(r["meta"]["generations"] == GENERATIONS for r in rows)
    assert "vs cpu" in out and "reference" in out and "×" in out


@pytest.mark.slow
def test_no_interleave_runs_adapters_one_after_the_other(tmp_path: Path) -> None:
    status, out, rows = run_harness(tmp_path, "--no-interleave")
    assert status == 0, out
    assert all(r.get("interleaved") is None and r.get("speedup") is None for r in rows)


def test_a_side_whose_worker_cannot_start_gets_an_error_and_the_others_run() -> None:
    log: list[str] = []
    make = opened({}, log)

    def broken() -> Any:
        raise FileNotFoundError("no such interpreter: /nowhere/python")

    turns = take_turns([make("A", 0.002), broken], "AB", TIMING, order=[1, 0])
    assert turns[1].result == {"error": "the worker could not start: no such interpreter: "
                                        "/nowhere/python"}
    assert len(turns[0].samples_ns) == 5 and turns[0].result is not None


def test_merged_rows_hold_the_median_against_the_generations_ceiling() -> None:
    ceiling = {"peak_flops_ceiling": 4e9, "peak_bytes_ceiling": math.nan,
               "ceiling_source": "FLOP/s: test; bytes/s: unknown (test)"}
    merged = merge_rows([row([1e-3] * 6, **ceiling), row([3e-3] * 6, **ceiling)])
    assert merged["peak_fraction"] == pytest.approx(0.25)  # 1 GFLOP/s of a 4 GFLOP/s ceiling
    assert merged["ceiling_source"] == ceiling["ceiling_source"]
