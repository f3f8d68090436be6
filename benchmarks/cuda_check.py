"""Preflight of ``benchmarks/cuda_quick.sh``: whether this host can run the GPU check, offline.

Checks Python, a CUDA build of torch (any recent release: the one the host has), the NVIDIA
driver through NVML, a visible GPU, and the project's other dependencies, and prints one line
per check. Exit status 0 when every required check passed, 1 otherwise (the failed lines say
why); 2 on bad arguments. ``--missing`` prints only the requirements of missing dependencies
that pip may fetch from the package registry (never torch: a GPU host brings its own build),
one per line, for the script's optional install step.

Imports nothing that initialises CUDA: torch's build is read from its version file, the GPU
count and driver come from NVML.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Dependencies the quick suite and the GPU tests can do without (and what goes instead).
OPTIONAL = {
    "btrees": "the ordered-index lookups skip without BTrees",
    "pytest-benchmark": "only the pytest-benchmark bridge needs it",
}
#: Needed for the tests step besides the project's own dependencies.
TEST_REQUIREMENTS = ("pytest>=8",)
MIN_PYTHON = (3, 11)


@dataclass(frozen=True)
class Check:
    """One line of the preflight: what was checked, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str
    required: bool = True
    #: the requirement a dependency check is about (pip's spelling); empty for other checks
    spec: str = ""

    def line(self) -> str:
        status = "ok" if self.ok else ("FAIL" if self.required else "skip")
        return f"{self.name:<28} {status:<5} {self.detail}"


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The project's dependencies (from pyproject.toml) and the tests', torch left out."""
    with pyproject.open("rb") as f:
        wanted = [*tomllib.load(f)["project"]["dependencies"], *TEST_REQUIREMENTS]
    return [spec for spec in wanted if _name(spec) != "torch"]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].strip().lower()


def dependency_checks(specs: list[str],
                      version: Callable[[str], str] = importlib.metadata.version) -> list[Check]:
    """One check per requirement: installed (with its version) or missing."""
    checks = []
    for spec in specs:
        name = _name(spec)
        try:
            found = version(name)
        except importlib.metadata.PackageNotFoundError:
            why = OPTIONAL.get(name)
            detail = f"not installed ({spec})" + (f": {why}" if why else "")
            checks.append(Check(name, False, detail, required=why is None, spec=spec))
            continue
        checks.append(Check(name, True, found, required=name not in OPTIONAL, spec=spec))
    return checks


def gpu_checks() -> list[Check]:
    """Python, torch's build, the driver (NVML) and the cuda adapter's own verdict."""
    sys.path.insert(0, str(ROOT))
    from harness import nvml
    from harness.adapters.cuda import CudaAdapter, driver_cuda_version
    from harness.adapters.torch_build import torch_build

    checks = [Check("python", sys.version_info >= MIN_PYTHON,
                    f"{sys.version.split()[0]} (needs {'.'.join(map(str, MIN_PYTHON))}+)")]
    build = torch_build()
    if build is None:
        checks.append(Check("torch", False, "not installed: this check needs the host's CUDA "
                                            "build of torch (pip install torch gives one on "
                                            "Linux x86_64)"))
    else:
        checks.append(Check("torch", build.cuda is not None,
                            f"{build.version}, CUDA {build.cuda}" if build.cuda else
                            f"{build.version} is not a CUDA build"))
    ok, why = nvml.probe()
    driver, _ = driver_cuda_version()
    checks.append(Check("nvidia driver (NVML)", ok,
                        f"{len(nvml.identity())} GPU(s), supports CUDA {driver}" if ok else why))
    if build is not None and build.cuda is not None and ok:
        usable, reason = CudaAdapter.available()
        checks.append(Check("cuda adapter", usable, "available" if usable else reason))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", action="store_true",
                        help="print the requirements of missing dependencies, one per line")
    args = parser.parse_args(argv)
    deps = dependency_checks(requirements())
    if args.missing:
        for check in deps:
            if not check.ok:
                print(check.spec)
        return 0
    checks = [*gpu_checks(), *deps]
    print(f"{'check':<28} {'':<5} found")
    for check in checks:
        print(check.line())
    failed = [check for check in checks if check.required and not check.ok]
    if failed:
        print(f"preflight failed: {', '.join(check.name for check in failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
