"""Does the regression gate tell noise from a real 10% slowdown? Checked end to end.

Writes one small suite twice into a temporary folder, the second copy with one workload doing
10% more work (a real code change, same case ids), then checks both ways of comparing:

- sequential runs (``harness run --repeat`` twice, then ``harness compare``): A/A must flag
  nothing; A/B is reported, but on a machine whose speed drifts between runs it may stay
  inconclusive (never a false alarm);
- interleaved A/B runs (``harness ab``): A/A must flag nothing, and A/B must flag the changed
  workload alone, with exit status 1.

Prints the comparisons and ends with one summary line. Usage::

    .venv/bin/python benchmarks/compare_check.py [--repeat 5] [--min-time 0.5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

SUITE = '''"""A comparison check suite: four CPU workloads of about a millisecond each."""
from harness import Task, workload

EXTRA = {extra!r}  # work multiplier of the `loop` workload: the "code change"


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


@workload(params={{"n": [20_000]}})
def loop(n: int) -> Task:
    m = int(n * EXTRA)
    return Task(fn=spin, inputs=(m,), check=lambda out: None)


@workload(params={{"n": [20_000]}})
def loop_b(n: int) -> Task:
    return Task(fn=spin, inputs=(n,), check=lambda out: None)


@workload(params={{"n": [200_000]}})
def sort(n: int) -> Task:
    import numpy as np
    data = np.random.default_rng(0).random(n)
    return Task(fn=np.sort, inputs=(data,), check=lambda out: None)


@workload(params={{"n": [256]}})
def matmul(n: int) -> Task:
    import torch
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0))
    return Task(fn=torch.mm, inputs=(a, a), check=lambda out: None)
'''


def run(suite: Path, out: Path, args: argparse.Namespace) -> Path:
    command = [sys.executable, "-m", "harness", "run", "-s", str(suite), "-a", "cpu:threads=1",
               "--repeat", str(args.repeat), "--min-time", str(args.min_time), "--no-collect",
               "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1].removeprefix("run folder: "))


def compare(base: Path, cand: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "harness", "compare", str(base), str(cand)],
                          capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


def ab(base: Path, cand: Path, out: Path, args: argparse.Namespace) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "harness", "ab", str(base), str(cand),
                           "-a", "cpu:threads=1", "--repeat", str(args.repeat), "--min-time",
                           str(args.min_time), "--out", str(out)],
                          capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


def flagged(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines() if " slower " in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, extra in (("a", 1.0), ("b", 1.1)):
            (root / name).mkdir()
            (root / name / "check.py").write_text(SUITE.format(extra=extra))
        out = root / "results"
        base = run(root / "a" / "check.py", out, args)
        again = run(root / "a" / "check.py", out, args)
        slower = run(root / "b" / "check.py", out, args)
        aa_status, aa = compare(base, again)
        ab_status, seq = compare(base, slower)
        a, b = root / "a" / "check.py", root / "b" / "check.py"
        iaa_status, iaa = ab(a, a, out, args)
        iab_status, iab = ab(a, b, out, args)
    print("sequential A/A (same code, two runs):\n" + aa)
    print("sequential A/B (loop made 10% slower):\n" + seq)
    print("interleaved A/A (harness ab, same code):\n" + iaa)
    print("interleaved A/B (harness ab, loop made 10% slower):\n" + iab)
    want = ["check/loop[n=20000]"]
    ok = (aa_status == 0 and not flagged(aa) and iaa_status == 0 and not flagged(iaa)
          and iab_status == 1 and flagged(iab) == want)
    print(f"{'PASS' if ok else 'FAIL'}: sequential A/A flagged {len(flagged(aa))}, sequential "
          f"A/B flagged {flagged(seq) or 'nothing'} (exit {ab_status}); interleaved A/A flagged "
          f"{len(flagged(iaa))}, interleaved A/B flagged {flagged(iab) or 'nothing'} (exit "
          f"{iab_status}); expected no flag in A/A and only {want[0]} with exit 1 interleaved")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
