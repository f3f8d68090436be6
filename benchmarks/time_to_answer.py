"""Time to an answer: `harness run` on BERT base to a ±2% median, against the samples' own time.

Runs ``harness run -w bert -p size=base -p batch=1 -p seq=128 -a cpu --precision 2%`` and
splits its wall time: the timed samples themselves (``sampling_s``), warm-up, the first call,
and everything else (interpreter and worker start-up, building the model, the correctness
check, peak calibration, the memory pass). Target (issue 7): total overhead under 20% of the
samples' time.

    .venv/bin/python benchmarks/time_to_answer.py [--precision 0.02] [--no-collect]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", type=float, default=0.02)
    parser.add_argument("--no-collect", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "harness", "run", "-w", "bert", "-p", "size=base",
                   "-p", "batch=1", "-p", "seq=128", "-a", "cpu", "--precision",
                   str(args.precision), "--out", tmp, *(["--no-collect"] * args.no_collect)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"harness run failed: {done.stderr.strip().splitlines()[-1]}")
        (row,) = harness.load(Path(tmp)).itertuples()
    half = (row.latency_ci_high_s - row.latency_ci_low_s) / 2 / row.latency_median_s
    parts = {"samples (timed)": row.sampling_s, "warm-up": row.warmup_s,
             "first call": row.first_call_s}
    parts["everything else"] = wall - sum(parts.values())
    print(f"{'part':<18}  {'seconds':>8}  {'of samples':>10}")
    for name, seconds in parts.items():
        print(f"{name:<18}  {seconds:>8.2f}  {seconds / row.sampling_s:>9.0%}")
    print(f"{'wall':<18}  {wall:>8.2f}")
    overhead = (wall - row.sampling_s) / row.sampling_s
    ok = overhead < 0.2 and half <= args.precision
    print(f"{'PASS' if ok else 'FAIL'}: BERT base median {row.latency_median_s * 1e3:.1f} ms "
          f"±{half:.1%} from {row.n_samples:.0f} samples in {wall:.1f} s wall; overhead "
          f"{overhead:.0%} of the {row.sampling_s:.2f} s of samples (target < 20%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
