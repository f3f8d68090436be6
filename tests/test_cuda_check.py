"""benchmarks/cuda_quick.sh and its preflight (benchmarks/cuda_check.py), on a host without a GPU:
the script must stop before any GPU work with the reason, install nothing fatal, and say what it
checked."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "cuda_quick.sh"
sys.path.insert(0, str(ROOT / "benchmarks"))
import cuda_check  # noqa: E402


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_the_script_fetches_no_torch_and_builds_nothing() -> None:
    text = SCRIPT.read_text()
    assert "set -e" not in text.replace("set -euo", "").replace("set -uo", "")
    assert "download.pytorch.org" not in text and "--index-url" not in text
    assert "install -e" not in text and "pip install --quiet --disable-pip-version-check \\\n" \
        "        $missing" in text


def test_missing_dependencies_are_required_unless_the_run_does_without() -> None:
    installed = {"numpy": "2.0.0"}

    def version(name: str) -> str:
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    checks = {c.name: c for c in cuda_check.dependency_checks(
        ["numpy>=1.26", "BTrees>=6", "scipy>=1.11"], version)}
    assert checks["numpy"].ok and checks["numpy"].detail == "2.0.0"
    assert not checks["btrees"].ok and not checks["btrees"].required
    assert "lookups skip" in checks["btrees"].detail
    assert not checks["scipy"].ok and checks["scipy"].required
    assert checks["scipy"].line().split()[:2] == ["scipy", "FAIL"]
    assert checks["btrees"].line().split()[:2] == ["btrees", "skip"]


def test_requirements_leave_torch_to_the_host() -> None:
    specs = cuda_check.requirements()
    assert not any(spec.startswith("torch") for spec in specs)
    assert "pytest>=8" in specs and any(spec.startswith("numpy") for spec in specs)


@pytest.mark.skipif(sys.platform != "linux", reason="the script is for Linux GPU hosts")
def test_without_a_gpu_the_script_stops_with_the_reason(tmp_path: Path) -> None:
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this torch is a CUDA build: the script would run the GPU check")
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=120, check=False,
                            env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                 "PYTHON": sys.executable, "HOME": str(tmp_path)})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is not a CUDA build" in result.stdout
    assert "error: the preflight failed" in result.stderr
    # The closing table lists the steps made, and nothing ran on a GPU.
    assert "preflight" in result.stdout and "FAIL(1)" in result.stdout
    assert "harness run" not in result.stdout
    assert not (tmp_path / "out").exists()


def test_an_old_python_is_refused_first(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\n[ \"$1\" = -V ] && echo 'Python 3.9.2' && exit 0\nexit 1\n")
    fake.chmod(0o755)
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60,
                            check=False, env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake)})
    assert result.returncode == 1
    assert "Python 3.9.2; the harness needs Python 3.11 or newer" in result.stderr
