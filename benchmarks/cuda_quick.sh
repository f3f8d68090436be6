#!/usr/bin/env bash
# The quick suite on the `cuda` adapter (beside `cpu`), then the GPU tests: one call on a machine
# with an NVIDIA GPU. Prints `harness list adapters`, the run's table and the tests' summary.
#
#   benchmarks/cuda_quick.sh [OUT_DIR]      # OUT_DIR defaults to results/
#
# Environment: PYTHON (default python3), VENV (default .venv-cuda, used only when PYTHON is not
# already a virtual environment holding a CUDA build of torch), TORCH_INDEX_URL (where a CUDA
# build of torch comes from). Takes a few minutes once torch is there; a CUDA torch download
# (~2.5 GB) adds its own time. Exit status: 0 when the run and the tests passed.
set -euo pipefail

# Run from the repository root, wherever this is called from; print Python's output as it comes.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONUNBUFFERED=1
OUT_DIR="${1:-${OUT_DIR:-results}}"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv-cuda}"
TORCH_VERSION="2.13.0"
TORCH_INDEX_URL="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cu128}"

# 1. The GPU as the driver sees it (nvidia-smi ships with the driver): a quick sanity check.
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=index,name,driver_version,power.limit,memory.total --format=csv
else
    echo "warning: nvidia-smi not found: is the NVIDIA driver installed?" >&2
fi

# 2. Choose the environment. GPU images usually ship a CUDA torch inside a virtual environment
#    (and often have no network): use that one as it is. Otherwise make $VENV, which sees the
#    system's packages, so that a system-wide CUDA torch is reused rather than downloaded; the
#    CPU-only .venv that `make` builds is left alone.
has_cuda_torch() { "$1" -c 'import sys, torch; sys.exit(torch.version.cuda is None)' 2>/dev/null; }
in_venv() { "$1" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)'; }
if in_venv "$PYTHON" && has_cuda_torch "$PYTHON"; then
    PY="$PYTHON"
else
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV"
    PY="$VENV/bin/python"
fi
echo "python: $("$PY" -c 'import sys; print(sys.executable)')"

# 3. A CUDA build of torch, only where the present torch is missing or CPU-only.
if ! has_cuda_torch "$PY"; then
    echo "installing torch==$TORCH_VERSION (CUDA) from $TORCH_INDEX_URL"
    "$PY" -m pip install --quiet --disable-pip-version-check \
        "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX_URL"
fi
"$PY" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}")'

# 4. The project, editable. --no-deps keeps pip from replacing a working CUDA torch (pyproject
#    asks for torch>=2.13; an image's older CUDA build still runs the harness); its other
#    dependencies (and pytest) are installed only where missing, so that nothing is fetched
#    when the image already has them.
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps -e .
missing=$("$PY" - <<'EOF'
import importlib.metadata
import re
import tomllib

with open("pyproject.toml", "rb") as f:
    wanted = tomllib.load(f)["project"]["dependencies"] + ["pytest>=8"]
missing = []
for spec in wanted:
    name = re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]
    if name == "torch":
        continue
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        missing.append(spec)
print(" ".join(missing))
EOF
)
if [ -n "$missing" ]; then
    echo "installing missing dependencies: $missing"
    # shellcheck disable=SC2086  # one argument per requirement
    "$PY" -m pip install --quiet --disable-pip-version-check $missing
fi

# 5. Which adapters are available here, and why not; stop early when cuda is not one of them.
HARNESS=("$PY" -m harness)
adapters=$("${HARNESS[@]}" list adapters)
echo "$adapters"
if ! grep -Eq '^ +cuda +yes' <<<"$adapters"; then
    echo "error: the cuda adapter is not available here (see its line above; if there is" \
         "none, it is not registered in harness/plugins.py and pyproject.toml)" >&2
    exit 1
fi

# 6. The quick suite on cuda and cpu; the table goes to stdout. A failed case must not skip the
#    tests below, so the status is kept and returned at the end.
status=0
"${HARNESS[@]}" run --quick -a cuda -a cpu --out "$OUT_DIR" || status=$?

# 7. The GPU tests of the adapter and its NVML collector (they skip without a GPU).
"$PY" -m pytest -m device -q -rs tests/adapters/test_cuda.py || status=$?

exit "$status"
