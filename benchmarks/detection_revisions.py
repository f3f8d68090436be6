"""Detection study of the pull-request gate, through git revisions: ``harness ab --base-ref``.

Each trial plays ``benchmarks/pr_flow.sh`` once: a fresh scratch repository whose suite calls a
library function in another file, a base commit and a commit that makes the function
``--slowdown`` slower, then the gate at ``harness ab``'s default settings (5 repetitions, its own
default sampling time) twice: against ``HEAD~1`` (a true slowdown: should exit 1) and against
``HEAD`` (the same code on both sides, an A/A trial: should exit 0). Each side runs from its own
checkout of its commit, as in CI.

Prints, per trial, both verdict lines, then the detection rate, the false-alarm count, the
realised change of the detections (median paired ratio) and whether each flagged change held
the true slowdown in its interval, with one-sided 95% bounds (Clopper-Pearson) on the rates:
20 trials with 0 alarms bound the true false-alarm rate below 14%, not "0%".

    .venv/bin/python benchmarks/detection_revisions.py [--trials 20] [--slowdown 0.05]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: "slower  774 µs  849 µs  +5.5%  +4.0% … +7.3%": the change and its interval, in percent.
CHANGE = re.compile(r"([+−-]\d+(?:\.\d+)?)%\s+\(?([+−-]\d+(?:\.\d+)?)%\s*…\s*([+−-]\d+(?:\.\d+)?)%")


def percent(text: str) -> float:
    return float(text.replace("−", "-"))


def verdict(path: Path) -> tuple[str, tuple[float, float, float] | None]:
    """The gate's verdict line for the one case, and its (change, low, high) in percent."""
    text = path.read_text() if path.is_file() else ""
    for line in text.splitlines():
        if "library_work" in line or "no confirmed regression" in line:
            found = CHANGE.search(line)
            values = tuple(percent(g) for g in found.groups()) if found else None
            return " ".join(line.split()), values  # type: ignore[return-value]
    return (text.strip().splitlines() or ["(no output)"])[-1], None


def upper_bound(k: int, n: int) -> float:
    """One-sided 95% Clopper-Pearson upper bound on a rate seen k times in n."""
    from scipy.stats import beta  # type: ignore[import-untyped]

    return 1.0 if k == n else float(beta.ppf(0.95, k + 1, n - k))


def lower_bound(k: int, n: int) -> float:
    from scipy.stats import beta

    return 0.0 if k == 0 else float(beta.ppf(0.05, k, n - k + 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--slowdown", type=float, default=0.05)
    parser.add_argument("--harness", default=str(ROOT / ".venv" / "bin" / "harness"))
    args = parser.parse_args()
    env = {**os.environ, "SLOWDOWN": str(args.slowdown), "REPEAT": "5", "MIN_TIME": ""}
    detected = alarms = held = 0
    changes: list[float] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        for trial in range(1, args.trials + 1):
            work = Path(scratch) / f"trial-{trial}"
            work.mkdir()
            subprocess.run(["bash", str(ROOT / "benchmarks" / "pr_flow.sh"), args.harness,
                            str(work)], env=env, capture_output=True, text=True, check=False)
            base_line, base = verdict(work / "ab-base.txt")
            head_line, _ = verdict(work / "ab-head.txt")
            flagged = "slower" in base_line
            alarm = "slower" in head_line or "faster" in head_line
            detected += flagged
            alarms += alarm
            if flagged and base is not None:
                changes.append(base[0])
                held += base[1] <= args.slowdown * 100 <= base[2]
            print(f"trial {trial:2d}  vs HEAD~1: {base_line}\n          vs HEAD:   {head_line}",
                  flush=True)
    n = args.trials
    minutes = (time.monotonic() - started) / 60
    print(f"\n{n} trials in {minutes:.0f} min, load average now "
          f"{os.getloadavg()[0]:.1f}")
    print(f"true {args.slowdown:.0%} slowdown flagged: {detected}/{n} "
          f"(95% lower bound {lower_bound(detected, n):.0%})")
    if changes:
        changes.sort()
        print(f"  flagged changes: median {changes[len(changes) // 2]:+.1f}%, range "
              f"{changes[0]:+.1f}% … {changes[-1]:+.1f}%; the true slowdown inside the "
              f"interval in {held}/{len(changes)}")
    print(f"A/A false alarms: {alarms}/{n} (95% upper bound {upper_bound(alarms, n):.0%})")
    return 0 if detected >= 0.9 * n and alarms == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
