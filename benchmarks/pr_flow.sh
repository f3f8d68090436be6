#!/usr/bin/env bash
# Plays the pull-request gate locally: a scratch git repository whose suite calls a library
# function outside the suite file, two commits (the second makes that function SLOWDOWN slower,
# or leaves it as it is with SLOWDOWN=0), then the gate's command, as the workflow runs it:
#
#   harness ab --base-ref <base commit> SUITE --markdown comment.md | tee ab.txt   (pipefail)
#
# against HEAD~1 (the pull request's base: a regression, exit 1, when SLOWDOWN > 0) and against
# HEAD (the same code: exit 0). Prints both verdicts and exits 0 only when both exit statuses
# are as expected, so tests/test_pr_flow.py and a person can run the same thing.
#
#   benchmarks/pr_flow.sh [HARNESS] [WORKDIR]     (env: SLOWDOWN=0.05, REPEAT=5, MIN_TIME=0.5;
#                                                  MIN_TIME= (empty): ab's own default)
set -euo pipefail

harness=${1:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/harness}
work=${2:-$(mktemp -d)}
slowdown=${SLOWDOWN:-0.05}
repeat=${REPEAT:-5}
min_time=${MIN_TIME-0.5}
timing=(--repeat "$repeat")
[ -n "$min_time" ] && timing+=(--min-time "$min_time")
export HARNESS_AB_CACHE=${HARNESS_AB_CACHE:-$work/ab-cache}

repo=$work/repo
rm -rf "$repo"
mkdir -p "$repo"
cd "$repo"
git init -q
git config user.email pr-flow@example.invalid
git config user.name "pr flow"

# The code under test: a pure-Python loop whose time is proportional to `rounds`.
write_library() {
  cat > mylib.py <<PY
"""The library under test: work proportional to ROUNDS."""
ROUNDS = $1


def work(data):
    total = 0
    for _ in range(ROUNDS):
        for x in data:
            total += x * x
    return total
PY
}
cat > suite.py <<'PY'
"""A suite that calls the library: the code that changes lives outside this file."""
from harness import Task, workload

import mylib


@workload(params={"n": [100]})
def library_work(n: int) -> Task:
    data = list(range(n))
    expected = mylib.work(data)

    def check(out):
        assert out == expected

    return Task(fn=lambda: mylib.work(data), check=check)
PY
write_library 100
git add mylib.py suite.py
git commit -qm "base: the library as it was"
write_library "$(python3 -c "print(round(100 * (1 + $slowdown)))")"
git commit -qam "candidate: the library ${slowdown} slower"

verdict() {  # $1: base ref; prints the gate's output, returns its exit status
  local status=0
  "$harness" ab --base-ref "$1" suite.py -a cpu "${timing[@]}" \
    --out "$work/results" --markdown "$work/comment-$2.md" 2>"$work/stderr-$2.txt" \
    | tee "$work/ab-$2.txt" || status=$?
  return "$status"
}

set +e
verdict HEAD~1 base; against_base=$?
verdict HEAD head; against_head=$?
set -e
want=0
if python3 -c "import sys; sys.exit(0 if $slowdown > 0 else 1)"; then want=1; fi
echo "against HEAD~1: exit $against_base (expected $want); against HEAD: exit $against_head (expected 0)"
[ "$against_base" -eq "$want" ] && [ "$against_head" -eq 0 ]
