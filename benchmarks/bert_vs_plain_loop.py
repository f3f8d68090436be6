"""Does `harness run` report what a plain loop sees? BERT on cpu, timed both ways in one process.

The harness path is exactly what `harness run -w bert -p size=base -p batch=1 -p seq=128 -a cpu`
does (plan → runner → timer, in this process); the reference is a bare
`torch.inference_mode()` loop around the same model and inputs. The two alternate for several
rounds so that drift on a shared machine hits both alike. Prints a table and one summary line.

    .venv/bin/python benchmarks/bert_vs_plain_loop.py [--size base] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from harness.adapters.cpu import CpuAdapter
from harness.config import RunConfig
from harness.execution.loop import Runner
from harness.plan import AdapterSpec, make_plan
from harness.results import RunWriter


def plain_loop(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], seconds: float) -> float:
    """Median per-call latency of a bare loop: warm up, then time each call."""
    times = []
    with torch.inference_mode():
        for _ in range(5):
            model(*inputs)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 20:
            t0 = time.perf_counter()
            model(*inputs)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="base")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    config = RunConfig(suites=("transformer",), workloads=("bert",), adapters=("cpu",),
                       params={"size": (args.size,), "batch": ("1",), "seq": ("128",)},
                       collect=False)
    plan = make_plan(config)
    (case,) = plan.cases
    adapter = CpuAdapter()
    task = case.build()  # the plain loop times this same model and inputs
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        writer = RunWriter(Path(tmp), {})
        runner = Runner(config, plan, writer)
        for round_ in range(1, args.rounds + 1):
            harness_median = runner.run_case(case, AdapterSpec("cpu"), adapter)["latency_median_s"]
            loop_median = plain_loop(task.fn, task.inputs, seconds=2.0)
            rows.append((round_, harness_median, loop_median))
        writer.close()
    adapter.close()

    print(f"bert size={args.size} batch=1 seq=128 on cpu, threads={torch.get_num_threads()}")
    print(f"{'round':>5}  {'harness median':>15}  {'plain loop median':>18}  {'ratio':>6}")
    for round_, h, p in rows:
        print(f"{round_:>5}  {h * 1e3:>12.3f} ms  {p * 1e3:>15.3f} ms  {h / p:>6.3f}")
    ratio = statistics.median(h for _, h, _ in rows) / statistics.median(p for _, _, p in rows)
    verdict = "within" if abs(ratio - 1) <= 0.15 else "OUTSIDE"
    print(f"summary: harness/plain-loop median ratio {ratio:.3f} ({verdict} the ±15% target)")


if __name__ == "__main__":
    main()
