"""Time to an answer: `harness run` on BERT base to a ±2% median, against the samples' own time.

Runs ``harness run -w bert -p size=base -p batch=1 -p seq=128 -a cpu --precision 2%`` twice
with a fresh peak cache: the first run is a first run on this machine (it calibrates the CPU's
peaks), the second finds them cached. Each run's wall time is split with the row's own stage
times (``meta.phases_s``): the timed samples (``sampling_s``), warm-up, the first call with the
loop calibration, building the model, preparing, the correctness check, the changed-input
probe, the memory pass, the worker's start, and the rest (interpreter start-up and imports of
the command itself, planning, the run's context, writing and printing). Target (issue 7):
total overhead under 20% of the samples' time.

    .venv/bin/python benchmarks/time_to_answer.py [--precision 0.02] [--no-collect]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness


def one_run(precision: float, no_collect: bool, cache: Path) -> tuple[float, Any]:
    """Wall seconds of one ``harness run`` and its row."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "harness", "run", "-w", "bert", "-p", "size=base",
                   "-p", "batch=1", "-p", "seq=128", "-a", "cpu", "--precision",
                   str(precision), "--out", tmp, *(["--no-collect"] * no_collect)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              env={**os.environ, "HARNESS_CACHE_DIR": str(cache)})
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"harness run failed: {done.stderr.strip().splitlines()[-1]}")
        (row,) = harness.load(Path(tmp)).itertuples()
    return wall, row


def parts(wall: float, row: Any) -> dict[str, float]:
    """Where the wall time went, from the row's own figures."""
    meta = json.loads(row.meta) if isinstance(row.meta, str) else row.meta
    phases = dict(meta.get("phases_s", {}))
    timing = phases.pop("timing", row.sampling_s + row.warmup_s + row.first_call_s)
    out = {"samples (timed)": row.sampling_s, "warm-up": row.warmup_s,
           "first call + loop calibration": timing - row.sampling_s - row.warmup_s}
    names = {"worker_start": "worker start", "worker_setup": "adapter start",
             "build": "build (model)", "setup": "device counters' set-up (idle power)",
             "prepare": "prepare", "check": "check",
             "probe": "changed-input probe", "collectors": "memory pass",
             "peaks": "peaks (cached or calibrated)"}
    for key, label in names.items():
        if key in phases:
            out[label] = phases[key]
    out["start-up, planning, writing"] = wall - sum(out.values())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", type=float, default=0.02)
    parser.add_argument("--no-collect", action="store_true")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as cache:
        for label in ("first run (peaks calibrated)", "next run (peaks cached)"):
            wall, row = one_run(args.precision, args.no_collect, Path(cache))
            results.append((label, wall, row, parts(wall, row)))
    names = list(results[0][3])
    print(f"{'seconds':<32}" + "".join(f"{label[:28]:>30}" for label, *_ in results))
    for name in names:
        cells = [(r[3].get(name, 0.0), r[3].get(name, 0.0) / r[2].sampling_s) for r in results]
        print(f"{name:<32}" + "".join(f"{s:>22.2f} ({f:>5.0%})" for s, f in cells))
    print(f"{'wall':<32}" + "".join(f"{r[1]:>30.2f}" for r in results))
    lines = []
    ok = True
    for label, wall, row, _ in results:
        half = (row.latency_ci_high_s - row.latency_ci_low_s) / 2 / row.latency_median_s
        overhead = (wall - row.sampling_s) / row.sampling_s
        ok = ok and overhead < 0.2 and half <= args.precision
        lines.append(f"{label}: median {row.latency_median_s * 1e3:.1f} ms ±{half:.1%} from "
                     f"{row.n_samples:.0f} samples, {wall:.1f} s wall, overhead {overhead:.0%} "
                     f"of {row.sampling_s:.2f} s of samples")
    print(f"\n{'PASS' if ok else 'MISSED'} (target: overhead < 20% of the samples' time): "
          + "; ".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
