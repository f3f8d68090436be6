"""A/B of two revisions or environments: ``harness ab --base-ref REF SUITE`` and
``--base-python PATH``.

The base side runs from a checkout of REF's tree, the candidate from the working tree; each
side's worker is a fresh interpreter of its own environment (:class:`~harness.execution.channel.
Interpreter`) whose import path puts its own code first, so a change anywhere under test (the
suite file, a library it calls, a dependency installed by ``--base-setup``) shows. Both sides run
this checkout's harness as their driver, loaded by file location: the timing procedure is the
same on both sides and an older REF need not have it. Samples alternate between the two workers
in rounds (:func:`harness.execution.interleave.take_turns`), and the rows are judged like those
of ``harness ab`` (:func:`harness.compare.compare_paired`).

Checkouts are cached per commit under :func:`cache_root` (``$HARNESS_AB_CACHE``, else the user's
cache directory): a commit's tree never changes, so a cached checkout is reused by every later
run and by every clone of the repository, and it lives outside the working tree, where tools
that walk the tree (pytest, ruff, ``git status``) would find a second copy of the code.
It is the tree's files exported through a private index (``git read-tree`` and
``checkout-index``) into a temporary folder renamed into place, not a ``git worktree``: nothing
is registered in the repository (nothing to prune when the cache is cleared), and two runs
that export the same commit at once cannot leave a half-written checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.execution.channel import Interpreter, open_worker
from harness.execution.hooks import Hooks
from harness.execution.interleave import STEERED_TARGET, draw_order, result_row, take_turns
from harness.execution.targets import case_payload

if TYPE_CHECKING:
    from harness.config import RunConfig
    from harness.execution.workers import Limits
    from harness.plan import Plan
    from harness.results import RunWriter

VARIANTS = ("baseline", "candidate")
#: written last into a finished checkout, and after a successful ``--base-setup`` (its command).
READY, SETUP_DONE = ".harness-checkout", ".harness-setup"
NO_PEAKS = "peaks are not calibrated in an A/B run (timing only)"


class RevisionError(ValueError):
    """A revision or environment that cannot be used (one line for the user)."""


@dataclass(frozen=True)
class Sides:
    """Where each side runs, and how a suite source of the working tree maps to the base."""

    base: Interpreter
    candidate: Interpreter

    def base_source(self, source: str) -> str:
        """The base's copy of a suite file inside the candidate's tree; other sources (a
        registered name, a dotted module) resolve in the base's own import path as they are."""
        path = Path(source)
        if path.is_absolute() and path.is_relative_to(self.candidate.root):
            return str(Path(self.base.root) / path.relative_to(self.candidate.root))
        return source


def cache_root() -> Path:
    """Where checkouts of revisions are kept."""
    if os.environ.get("HARNESS_AB_CACHE"):
        return Path(os.environ["HARNESS_AB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inference-harness" / "ab"


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """A git command's output; a :class:`RevisionError` with git's own message if it fails."""
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          env=env, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise RevisionError(f"git {args[0]}: {last}")
    return done.stdout.strip()


def repository_root(where: Path) -> Path:
    """The top of the git working tree holding ``where``."""
    try:
        return Path(git(where, "rev-parse", "--show-toplevel"))
    except RevisionError:
        raise RevisionError(f"--base-ref needs a git repository: {where} is not inside one"
                            ) from None
    except FileNotFoundError:
        raise RevisionError("--base-ref needs git, which is not installed") from None


def checkout(root: Path, ref: str, cache: Path | None = None) -> tuple[str, Path]:
    """The commit ``ref`` names in the repository at ``root``, and a cached checkout of it."""
    try:
        sha = git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except RevisionError:
        raise RevisionError(f"--base-ref {ref!r} names no commit in {root}") from None
    target = (cache or cache_root()) / sha
    if (target / READY).is_file():
        return sha, target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{sha}.{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    index = temporary.parent / f".{sha}.{os.getpid()}.index"
    try:
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        git(root, "read-tree", sha, env=env)
        git(root, "checkout-index", "--all", "--force", f"--prefix={temporary}/", env=env)
        (temporary / READY).write_text(f"{sha}\n", encoding="utf-8")
        try:
            temporary.rename(target)
        except OSError:  # another run finished the same checkout first: use theirs
            shutil.rmtree(temporary, ignore_errors=True)
    finally:
        index.unlink(missing_ok=True)
        shutil.rmtree(temporary, ignore_errors=True)
    return sha, target


def set_up(tree: Path, command: str) -> str:
    """Run ``--base-setup`` once per commit in its checkout (again only if the command
    changed); the Python of the environment it made beside the checkout (``.venv``), else this
    one with the checkout first on the import path."""
    venv = tree / ".venv"
    marker = tree / SETUP_DONE
    if not (marker.is_file() and marker.read_text(encoding="utf-8") == command):
        print(f"--base-setup in {tree}: {command}", file=sys.stderr)
        done = subprocess.run(["bash", "-c", command], cwd=tree, check=False,
                              env={**os.environ, "HARNESS_BASE_ENV": str(venv)})
        if done.returncode != 0:
            raise RevisionError(f"--base-setup {command!r} failed in {tree} with status "
                                f"{done.returncode}")
        marker.write_text(command, encoding="utf-8")
    python = venv / "bin" / "python"
    return str(python) if python.is_file() else sys.executable


def run_revisions(config: RunConfig, plan: Plan, sides: Sides, writer: RunWriter,
                  limits: Limits, hooks: Hooks | None = None) -> list[dict[str, Any]]:
    """Every repetition of every case on every adapter, the two sides interleaved in rounds;
    two rows each (variant ``baseline`` and ``candidate``), written as they come."""
    hooks = hooks or Hooks()
    total = len(plan.cases) * len(plan.adapters) * config.repeat
    rows: list[dict[str, Any]] = []
    index = 0
    for k in range(config.repeat):
        for spec in plan.adapters:
            for case in plan.cases:
                index += 1
                hooks.started(case, spec, index, total)
                payload = case_payload(config, plan, spec, case, limits.max_memory_bytes)
                dtype = str(case.params.get("dtype", "float32"))
                payload.update(repetition=k, peaks={dtype: NO_PEAKS})
                sources = (sides.base_source(payload["suite"]), payload["suite"])

                def opener(i: int, payload: dict[str, Any] = payload,
                           sources: tuple[str, str] = sources) -> Any:
                    where = (sides.base, sides.candidate)[i]
                    return lambda: open_worker(STEERED_TARGET, {
                        **payload, "suite": sources[i], "sent_at": time.time()}, limits, where)

                turns = take_turns([opener(0), opener(1)], VARIANTS, config.timing,
                                   draw_order(2, case.id, spec.label, k))
                got = [{**result_row(turn, case, spec, k, {}), "variant": variant}
                       for turn, variant in zip(turns, VARIANTS, strict=True)]
                for row in got:
                    writer.append(row)
                rows.extend(got)
                hooks.arrived(got[-1], index, total)
    return rows
