"""The run's context: host, CPU, Python and package versions, git SHA, command line, start time."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Variables that shape results, by prefix: threading, device choice and order (CUDA_VISIBLE_*,
#: CUDA_DEVICE_ORDER), lazy module loading (CUDA_MODULE_LOADING), TF32 overrides, the allocator.
ENV_PREFIXES = ("OMP_", "MKL_", "OPENBLAS_", "CUDA_", "XLA_", "JAX_", "NVIDIA_TF32_OVERRIDE",
                "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "PYTORCH_CUDA_ALLOC_CONF")
PACKAGES = ("inference-harness", "torch", "transformers", "numpy", "pandas", "psutil",
            "nvidia-ml-py", "jax", "jaxlib", "onnxruntime", "pytest-benchmark")


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo on Linux, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape results; absent ones are left out."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_sha(where: Path | None = None) -> str | None:
    """The commit of the project's checkout (with ``-dirty`` when it has changes), if any."""
    where = where or Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def collect(argv: list[str] | None = None) -> dict[str, Any]:
    """Everything about this machine and process that a reader needs to trust a run's figures."""
    try:
        import psutil

        memory_bytes: int | None = int(psutil.virtual_memory().total)
        physical = psutil.cpu_count(logical=False)
    except ImportError:
        memory_bytes, physical = None, None
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": list(sys.argv if argv is None else argv),
        "host": socket.gethostname(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "cpu_model": cpu_model(),
        "cpu_physical_cores": physical,
        "cpu_logical_cores": os.cpu_count(),
        "cpu_affinity": affinity,
        "memory_bytes": memory_bytes,
        "packages": package_versions(),
        "git_sha": git_sha(),
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)},
    }
