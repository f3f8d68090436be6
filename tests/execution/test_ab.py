"""A/B runs: pairing, interleaved sampling, the paired comparison, and `harness ab` end to end."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import Task, workload
from harness.compare import Options
from harness.config import TimingOptions
from harness.execution.ab import PairingError, pair_cases
from harness.paired import compare_paired
from harness.timer import Timer, measure_pair
from harness.workload import Case
from tests.fakes import FakeClock


@workload(params={"n": [1, 2]})
def w(n: int) -> Task:
    return Task(fn=lambda: n)


@workload(params={"n": [1, 2]}, name="other")
def other(n: int) -> Task:
    return Task(fn=lambda: n)


def test_cases_pair_by_workload_and_parameters() -> None:
    base = [Case("a", w, {"n": 1}), Case("a", w, {"n": 2}), Case("a", other, {"n": 1})]
    cand = [Case("b", w, {"n": 2}), Case("b", w, {"n": 3})]
    assert [(x.id, y.id) for x, y in pair_cases(base, cand)] == [("a/w[n=2]", "b/w[n=2]")]
    with pytest.raises(PairingError, match="share no workload"):
        pair_cases(base, [Case("b", w, {"n": 9})])


def test_samples_alternate_and_flip_order_every_round() -> None:
    clock = FakeClock()
    order: list[str] = []

    def step(name: str, cost_s: float) -> Any:
        def run() -> str:
            order.append(name)
            clock.advance(cost_s)
            return name
        return run

    timing = TimingOptions(min_sample_s=1e-3, min_time_s=0.01, min_samples=4, max_time_s=1.0,
                           max_warmup_s=0.0)
    a, b = measure_pair(Timer(timing, clock), (step("a", 1e-3), step("b", 2e-3)), lambda: None)
    assert len(a.samples_s) == len(b.samples_s) >= 4
    assert a.samples_s[0] == pytest.approx(1e-3) and b.samples_s[0] == pytest.approx(2e-3)
    tail = order[-8:]  # sampling: a b, b a, a b, b a
    assert tail in (["a", "b", "b", "a", "a", "b", "b", "a"],
                    ["b", "a", "a", "b", "b", "a", "a", "b"])
    assert a.output == "a" and b.output == "b"


def test_the_side_drawn_first_calls_warms_up_and_samples_first() -> None:
    clock = FakeClock()
    order: list[str] = []

    def step(name: str) -> Any:
        def run() -> str:
            order.append(name)
            clock.advance(1e-3)
            return name
        return run

    timing = TimingOptions(min_sample_s=1e-3, min_time_s=0.004, min_samples=2, max_time_s=1.0,
                           max_warmup_s=0.0, warmup_window=1)
    a, b = measure_pair(Timer(timing, clock), (step("a"), step("b")), lambda: None, first=1)
    assert order[:2] == ["b", "a"]  # first calls
    assert order[-4:] == ["b", "a", "a", "b"]  # round 0 starts with the side drawn first
    assert (a.output, b.output) == ("a", "b")


def test_the_first_side_is_drawn_per_repetition_seeded() -> None:
    from harness.execution.interleave import draw_order

    firsts = [draw_order(2, "s/w[n=1]", "cpu", k)[0] for k in range(20)]
    assert 0 < sum(firsts) < 20  # both sides go first in some repetitions
    assert firsts == [draw_order(2, "s/w[n=1]", "cpu", k)[0] for k in range(20)]


def paired_rows(effect: float, drift: float, reps: int = 5, n: int = 80,
                seed: int = 0, builds: list[float] | None = None) -> list[dict[str, Any]]:
    """Interleaved samples under a machine drift shared by both sides (±drift over time);
    ``builds`` scales the candidate of each repetition (what differs between two builds)."""
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(reps):
        speed = np.exp(np.cumsum(rng.normal(0, drift, n)))  # the machine's slow wander
        build = builds[rep] if builds else 1.0
        for variant, scale in (("baseline", 1.0), ("candidate", effect * build)):
            samples = 1e-3 * scale * speed * np.exp(rng.normal(0, 0.01, n))
            rows.append({"suite": "s", "case_id": "s/w[n=1]", "adapter": "cpu",
                         "status": "ok", "repetition": rep, "variant": variant,
                         "samples_s": samples.tolist()})
    return rows


def test_paired_comparison_sees_a_small_slowdown_through_large_drift() -> None:
    (only,) = compare_paired(paired_rows(1.06, drift=0.05)).comparisons
    assert only.verdict == "slower" and only.ratio == pytest.approx(1.06, abs=0.01)
    assert compare_paired(paired_rows(1.06, drift=0.05)).method == "paired"


def test_repetitions_that_disagree_raise_the_threshold() -> None:
    # A/A where each repetition's builds differ by a few percent (layout, a neighbour's
    # burst): each repetition alone looks "changed", but their spread says that is noise.
    builds = [1.04, 0.97, 1.03, 0.96, 1.05]
    options = Options(threshold=0.02)  # harness ab's default
    (only,) = compare_paired(paired_rows(1.0, drift=0.02, builds=builds), options).comparisons
    assert only.noise > 0.02 and only.delta == only.noise
    assert only.verdict not in ("slower", "faster")
    # Repetitions that agree keep δ at the threshold, and a 5% slowdown stands out.
    (steady,) = compare_paired(paired_rows(1.05, drift=0.02), options).comparisons
    assert steady.delta == 0.02 and steady.verdict == "slower"


def test_paired_a_a_is_same_and_failures_are_missing() -> None:
    (only,) = compare_paired(paired_rows(1.0, drift=0.05, seed=3)).comparisons
    assert only.verdict == "same"
    rows = paired_rows(1.0, drift=0.01)
    rows[1].update(status="error", message="boom", samples_s=None)
    (missing,) = compare_paired(rows).comparisons
    assert missing.verdict == "missing" and missing.note == "candidate: error: boom"
    assert math.isnan(missing.ratio)


SUITE = '''
from harness import Task, workload

def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total

@workload(params={{"n": [5000]}})
def loop(n):
    return Task(fn=spin, inputs=(int(n * {extra}),), check=lambda out: None)

@workload(params={{"n": [5000]}})
def steady(n):
    return Task(fn=spin, inputs=(n,), check=lambda out: None)
'''


@pytest.mark.parametrize("isolation", [[], ["--no-isolate"]])
def test_harness_ab_flags_the_changed_workload_alone(tmp_path: Path,
                                                     isolation: list[str]) -> None:
    for name, extra in (("a", 1.0), ("b", 1.25)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "demo.py").write_text(SUITE.format(extra=extra))
    result = subprocess.run(
        [sys.executable, "-m", "harness", "ab", str(tmp_path / "a" / "demo.py"),
         str(tmp_path / "b" / "demo.py"), "-a", "cpu:threads=1", "--repeat", "3",
         "--min-time", "0.1", "--out", str(tmp_path / "out"), *isolation],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    verdicts = {line.split()[0]: line.split()[2] for line in result.stdout.splitlines()
                if line.startswith("demo/")}
    assert verdicts["demo/loop[n=5000]"] == "slower"
    # Not flagged; at the default 2% threshold, 3 × 0.1 s may not be enough to call it "same".
    assert verdicts["demo/steady[n=5000]"] in ("same", "inconclusive")


def test_an_a_b_pair_gives_two_measured_rows_with_reasons_for_what_it_skips() -> None:
    from harness.adapters.cpu import CpuAdapter
    from harness.config import RunConfig
    from harness.execution.ab import run_pair
    from harness.plan import AdapterSpec

    def spin(n: int) -> int:
        return sum(range(n))

    @workload(params={"n": [2000]}, name="spin")
    def build(n: int) -> Task:
        return Task(fn=spin, inputs=(n,), flops=float(n), bytes=8.0 * n,
                    check=lambda out: None)

    fast = TimingOptions(min_time_s=0.02, min_samples=5, max_time_s=0.5, max_warmup_s=0.05)
    adapter = CpuAdapter(threads=1)
    try:
        rows = run_pair(RunConfig(timing=fast, collect=False), AdapterSpec("cpu"), adapter,
                        (Case("a", build, {"n": 2000}), Case("b", build, {"n": 2000})))
    finally:
        adapter.close()
    assert [r["variant"] for r in rows] == ["baseline", "candidate"]
    for row in rows:
        assert row["status"] == "ok" and row["latency_median_s"] > 0
        assert row["achieved_flops_per_s"] == pytest.approx(2000 / row["latency_median_s"])
        assert math.isnan(row["peak_fraction"])
        assert row["missing"]["peak_fraction"] == ("peaks are not calibrated in an A/B run "
                                                   "(timing only)")
        assert "not measured in an A/B run" in row["missing"]["energy_j"]
    assert len(rows[0]["samples_s"]) == len(rows[1]["samples_s"])  # interleaved: pairs
