#!/usr/bin/env bash
# The quick suite on the `cuda` adapter (beside `cpu`), then the GPU tests: one call on a machine
# with an NVIDIA driver and a CUDA build of torch already installed (any recent release). Needs
# no network: it installs nothing but missing pure-Python dependencies from the package registry,
# and goes on without them where it can. Prints the preflight's checks, `harness list adapters`,
# the run's table, the tests' summary and, last, a table of the steps it ran and their outcome.
#
#   benchmarks/cuda_quick.sh [OUT_DIR]      # OUT_DIR defaults to results/
#
# Environment: PYTHON (default python3: the interpreter that has the CUDA torch), RUN_TIMEOUT
# (default 420 s) and TEST_TIMEOUT (default 120 s) bound the two long steps, so the whole call
# ends within 10 minutes. Exit status: 0 when every step passed; 1 with the failed step's reason.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONUNBUFFERED=1
# The checkout itself, not an installed copy: no build step (pip's build isolation would fetch
# setuptools), and harness.plugins registers the built-in adapters and suites without metadata.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT_DIR="${1:-${OUT_DIR:-results}}"
PY="${PYTHON:-python3}"
RUN_TIMEOUT="${RUN_TIMEOUT:-420}"
TEST_TIMEOUT="${TEST_TIMEOUT:-120}"
SUMMARY=()
STATUS=0
BEGAN=$SECONDS

# Runs "$@" as step $1 (a name), records its outcome and time for the closing table.
step() {
    local name=$1 started=$SECONDS rc
    shift
    echo "== $name"
    "$@"
    rc=$?
    local outcome="ok"
    if [ "$rc" -eq 124 ]; then outcome="TIMEOUT"; elif [ "$rc" -ne 0 ]; then outcome="FAIL($rc)"; fi
    SUMMARY+=("$(printf '%-36s %-9s %5ss' "$name" "$outcome" $((SECONDS - started)))")
    return "$rc"
}

summary() {
    echo
    printf '%-36s %-9s %6s\n' "step" "outcome" "time"
    printf '%s\n' "${SUMMARY[@]}"
    echo "total: $((SECONDS - BEGAN)) s; exit status $STATUS"
}

fail() {
    echo "error: $*" >&2
    STATUS=1
    summary
    exit 1
}

# 1. Python 3.11 or newer (the harness needs it), before anything imports the project.
step "python >= 3.11" "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "$PY is $("$PY" -V 2>&1 || echo missing); the harness needs Python 3.11 or newer (set PYTHON)"

# 2. The GPU as the driver sees it (nvidia-smi ships with the driver); informational.
if command -v nvidia-smi >/dev/null 2>&1; then
    step "nvidia-smi" nvidia-smi --query-gpu=index,name,uuid,driver_version,power.limit,memory.total,mig.mode.current --format=csv
else
    echo "warning: nvidia-smi not found; the preflight asks NVML directly" >&2
fi

# 3. Missing pure-Python dependencies from the registry, if it can be reached; never torch, and
#    a failure here is not fatal: the preflight says whether what is missing matters.
missing=$("$PY" benchmarks/cuda_check.py --missing)
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086  # one argument per requirement
    step "pip install (missing deps)" "$PY" -m pip install --quiet --disable-pip-version-check \
        $missing || echo "warning: could not install: $missing (offline?); going on" >&2
fi

# 4. Preflight: torch's CUDA build, the driver, a visible GPU, the dependencies.
step "preflight" "$PY" benchmarks/cuda_check.py ||
    fail "the preflight failed (see the FAIL lines above): nothing ran on the GPU"

# 5. Which adapters are available here, and why not; cuda must be one of them.
adapters=$("$PY" -m harness list adapters) || fail "harness list adapters failed"
echo "$adapters"
grep -Eq '^ +cuda +yes' <<<"$adapters" ||
    fail "the cuda adapter is not available here (see its line above)"

# 6. The quick suite on cuda and cpu; the table goes to stdout. A failed case must not skip the
#    tests below, so the status is kept and returned at the end.
step "harness run --quick -a cuda -a cpu" timeout "$RUN_TIMEOUT" \
    "$PY" -m harness run --quick -a cuda -a cpu --out "$OUT_DIR" || STATUS=1

# 7. The GPU tests of the adapter and its NVML collector (they skip without a GPU).
step "pytest -m device (cuda)" timeout "$TEST_TIMEOUT" \
    "$PY" -m pytest -m device -q -rs -p no:cacheprovider tests/adapters/test_cuda.py || STATUS=1

summary
exit "$STATUS"
