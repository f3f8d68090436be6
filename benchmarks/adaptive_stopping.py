"""Adaptive stopping: the quick suite with fixed sampling against ``--precision``.

Runs ``harness run --quick -a cpu`` twice in a row, once with the default stopping rule (1 s
and 20 samples per case) and once with ``--precision P`` (stop once the median's 95% CI is
within ±P), and prints per case the samples taken, the sampling time and the precision reached,
then one summary line. Target (issue 7): with ``--precision 2%`` every case the machine's noise
allows reaches ±2%, in less wall time than fixed sampling.

    .venv/bin/python benchmarks/adaptive_stopping.py [--precision 0.02] [-a cpu]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness


def run(out: Path, adapter: str, extra: list[str]) -> tuple[float, Path]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "harness", "run", "--quick", "-a", adapter,
                           "--out", str(out), *extra], capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"harness run failed: {done.stderr.strip().splitlines()[-1]}")
    return wall, Path(done.stdout.strip().splitlines()[-1].removeprefix("run folder: "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", type=float, default=0.02)
    parser.add_argument("-a", "--adapter", default="cpu")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fixed_wall, fixed = run(Path(tmp) / "fixed", args.adapter, [])
        adaptive_wall, adaptive = run(Path(tmp) / "adaptive", args.adapter,
                                      ["--precision", str(args.precision)])
        frames = {"fixed": harness.load(fixed), "adaptive": harness.load(adaptive)}
    for frame in frames.values():
        frame["ci"] = ((frame.latency_ci_high_s - frame.latency_ci_low_s) / 2
                       / frame.latency_median_s)
    columns = ["case_id", "n_samples", "sampling_s", "ci"]
    joined = frames["fixed"][columns].merge(frames["adaptive"][columns], on="case_id",
                                            suffixes=("_f", "_a")).set_index("case_id")
    print(f"{'case':<60}  {'fixed n':>7}  {'s':>5}  {'±CI':>6}  {'adapt n':>7}  {'s':>5}  "
          f"{'±CI':>6}")
    for case, row in joined.iterrows():
        print(f"{str(case)[:60]:<60}  {row.n_samples_f:>7.0f}  {row.sampling_s_f:>5.2f}  "
              f"{row.ci_f * 100:>5.2f}%  {row.n_samples_a:>7.0f}  {row.sampling_s_a:>5.2f}  "
              f"{row.ci_a * 100:>5.2f}%")
    reached = int((joined.ci_a <= args.precision).sum())
    fixed_reached = int((joined.ci_f <= args.precision).sum())
    ok = reached == len(joined) and adaptive_wall < fixed_wall
    print(f"{'PASS' if ok else 'FAIL'}: --precision {args.precision:.0%}: {reached} of "
          f"{len(joined)} cases within ±{args.precision:.0%} in {adaptive_wall:.1f} s wall "
          f"({joined.sampling_s_a.sum():.1f} s sampling); fixed sampling: {fixed_reached} of "
          f"{len(joined)} in {fixed_wall:.1f} s ({joined.sampling_s_f.sum():.1f} s sampling)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
