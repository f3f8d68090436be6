"""Calibrated peaks kept per machine, so a run does not spend seconds re-measuring the roof.

A peak calibration (a large matmul and a 128 MiB copy, see :mod:`harness.roofline`) takes a
few seconds per adapter and dtype: more than many cases' sampling. The roof belongs to the
hardware and its software stack, so a calibration is reused while both are the same: the key
holds the host name, CPU model and core count, the CPUs this process may use, the GPUs (each by
name and UUID from NVML, with the variables that choose and order the visible ones), the float32
matmul precision (TF32 set by torch or by environment gets another roof), the versions of the
packages that run the work, and the adapter's label and options. Entries
expire after :data:`MAX_AGE_S`; ``harness run --recalibrate`` measures again and replaces them.
A reused figure says so in its source, with the time it was measured.

The cache is a JSON file under ``$HARNESS_CACHE_DIR``, else ``$XDG_CACHE_HOME/inference-harness``,
else ``~/.cache/inference-harness``. A cache that cannot be read or written is ignored: the
peaks are then calibrated, as without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.roofline import Peaks

#: a week: long enough to cover a working session's runs, short enough that a changed machine
#: (a BIOS setting, a new kernel) is noticed without anyone remembering to recalibrate.
MAX_AGE_S = 7 * 24 * 3600
FILE = "peaks.json"
MARK = "cached:"
#: Variables that turn TF32 on or off for float32 matmuls behind torch's back.
TF32_VARIABLES = ("NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE")


def cache_dir() -> Path:
    """Where the cache lives (see the module docstring)."""
    explicit = os.environ.get("HARNESS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inference-harness"


def machine_key(label: str, options: dict[str, Any], dtype: str) -> str:
    """A digest of everything that makes a calibration valid for this adapter and dtype."""
    from harness import nvml
    from harness.environment import cpu_model, package_versions

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    parts = {
        "host": socket.gethostname(), "cpu": cpu_model(), "cores": os.cpu_count(),
        "usable_cores": usable, "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpu_order": os.environ.get("CUDA_DEVICE_ORDER"), "gpu_identity": nvml.identity(),
        "matmul_precision": matmul_precision(),
        "packages": package_versions(), "adapter": label, "options": options, "dtype": dtype,
    }
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def matmul_precision() -> dict[str, str | None]:
    """torch's float32 matmul precision and the variables that override it.

    Read without importing torch: a process that has not imported it runs torch's default
    (``highest``), so a run's parent (which looks calibrations up) and its workers (which store
    them) key alike.
    """
    torch = sys.modules.get("torch")
    precision = torch.get_float32_matmul_precision() if torch is not None else "highest"
    return {"torch": precision, **{name: os.environ.get(name) for name in TF32_VARIABLES}}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def lookup(label: str, options: dict[str, Any], dtype: str,
           now: float | None = None) -> Peaks | None:
    """The cached peaks for this machine, adapter and dtype, if fresh; else None."""
    entry = _read(cache_dir() / FILE).get(machine_key(label, options, dtype))
    if not isinstance(entry, dict):
        return None
    now = time.time() if now is None else now
    try:
        measured_at = float(entry["measured_at"])
        peaks = Peaks(float(entry["flops_per_s"]), float(entry["bytes_per_s"]),
                      str(entry["source"]))
    except (TypeError, KeyError, ValueError):
        return None
    if not 0 <= now - measured_at <= MAX_AGE_S:
        return None
    if peaks.source.startswith("datasheet:"):
        return None  # older caches kept GPU/TPU datasheet figures: a ceiling, not a calibration
    when = datetime.fromtimestamp(measured_at, UTC).isoformat(timespec="seconds")
    return Peaks(peaks.flops_per_s, peaks.bytes_per_s,
                 f"{MARK} {peaks.source}; measured on this machine at {when} "
                 "(harness run --recalibrate measures again)")


def store(label: str, options: dict[str, Any], dtype: str, peaks: Peaks,
          now: float | None = None) -> None:
    """Keep a fresh calibration; a figure that itself came from the cache is not re-stored."""
    if peaks.source.startswith(MARK):
        return
    path = cache_dir() / FILE
    data = _read(path)
    data[machine_key(label, options, dtype)] = {
        **asdict(peaks), "measured_at": time.time() if now is None else now,
        "adapter": label, "dtype": dtype}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole to a temporary file and renamed: a reader never sees half a file.
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        pass  # an unwritable cache costs a calibration next time, nothing else
