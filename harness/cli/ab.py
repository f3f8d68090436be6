"""``harness ab``: two versions of a suite timed interleaved, and their paired comparison."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.common import (
    UsageError,
    add_selection,
    fraction,
    parse_params,
    positive_seconds,
    seconds,
    writing,
)
from harness.config import RunConfig, TimingOptions

if TYPE_CHECKING:
    from harness.execution.revisions import Sides


def add_parser(sub: Any) -> None:
    ab = sub.add_parser("ab", help="time two versions of a suite interleaved and compare them")
    ab.add_argument("baseline", help="the baseline suite: a name, dotted module or .py file "
                                     "(with --base-ref or --base-python: the one suite, run "
                                     "on both sides)")
    ab.add_argument("candidate", nargs="?",
                    help="the candidate suite, with the same workloads (not with --base-ref "
                         "or --base-python)")
    ab.add_argument("--base-ref", metavar="REF",
                    help="run the baseline from this git revision's tree (cached per commit) "
                         "and the candidate from the working tree")
    ab.add_argument("--base-python", metavar="PATH",
                    help="run the baseline with this Python (an existing environment)")
    ab.add_argument("--base-setup", metavar="CMD",
                    help="with --base-ref, run CMD once per commit in its checkout to build its "
                         "environment (kept there as .venv; $HARNESS_BASE_ENV names it), e.g. "
                         "'make setup'")
    add_selection(ab)
    ab.add_argument("--full", action="store_true", help="the full grids (default: quick)")
    ab.add_argument("--repeat", type=int, default=5, metavar="N",
                    help="repetitions, each case in a fresh worker every time (default 5)")
    ab.add_argument("--min-time", type=seconds, metavar="S",
                    help=f"minimum sampling time per side (default {TimingOptions().min_time_s:g} "
                         "s; the other sampling settings are harness run's defaults)")
    ab.add_argument("--out", type=Path, default=Path("results"), metavar="DIR",
                    help="results directory (default: results/)")
    ab.add_argument("--no-isolate", dest="isolate", action="store_false",
                    help="run every pair in this process (default: each side in a worker "
                         "process of its own)")
    ab.add_argument("--timeout", type=positive_seconds, metavar="S",
                    help="kill a pair after S seconds (default 600)")
    ab.add_argument("--threshold", type=fraction, default=0.02, metavar="PCT",
                    help="smallest change flagged (default 2%%: pairs cancel drift; the spread "
                         "of the repetitions' paired ratios raises it where larger)")
    ab.add_argument("--alpha", type=float, default=0.01, metavar="A",
                    help="false-discovery rate across cases (default 0.01)")
    ab.add_argument("--max-missing", type=fraction, default=0.0, metavar="PCT",
                    help="fail when the candidate side lacks more than this fraction of the "
                         "cases the baseline side measured (default 0%%)")
    ab.add_argument("--markdown", type=Path, metavar="FILE",
                    help="also write the comparison as Markdown (CI summary, PR comment)")


def command(args: argparse.Namespace) -> int:
    from harness import environment
    from harness.compare import Options
    from harness.execution import Limits
    from harness.execution.ab import PairingError, run_ab
    from harness.execution.revisions import run_revisions
    from harness.paired import compare_paired
    from harness.plan import make_plan
    from harness.progress import Progress
    from harness.report.comparison import render_markdown, render_text
    from harness.results import RunWriter

    timing = TimingOptions()
    if args.min_time is not None:
        timing = dataclasses.replace(timing, min_time_s=args.min_time,
                                     max_time_s=max(timing.max_time_s, args.min_time))
    try:
        options = Options(threshold=args.threshold, alpha=args.alpha,
                          max_missing=args.max_missing)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    revisions = args.base_ref is not None or args.base_python is not None
    suites = (args.baseline,) if revisions else (args.baseline, args.candidate)
    if revisions and args.candidate is not None:
        raise UsageError("--base-ref and --base-python take one suite, run on both sides; "
                         f"drop {args.candidate!r}")
    if not revisions and args.candidate is None:
        raise UsageError("give two suites (baseline, candidate), or one with --base-ref REF "
                         "or --base-python PATH")
    if args.base_setup is not None and args.base_ref is None:
        raise UsageError("--base-setup builds the environment of --base-ref's checkout; "
                         "add --base-ref")
    configs = [RunConfig(suites=(suite,), workloads=tuple(args.workload),
                         adapters=tuple(args.adapter), params=parse_params(args.param),
                         preset="full" if args.full else "quick", out=args.out, timing=timing,
                         collect=False, repeat=args.repeat)
               for suite in suites]
    sides = _sides(args) if revisions else None
    if sides is not None:  # the suite is loaded here too, to plan: its imports as the worker's
        sys.path.insert(0, sides.candidate.root)
    plans = [make_plan(config) for config in configs]
    context = environment.collect()
    context["config"] = {"ab": list(suites), "workloads": args.workload,
                         "adapters": [s.label for s in plans[-1].adapters],
                         "params": configs[-1].params, "preset": configs[-1].preset,
                         "timing": timing.__dict__, "repeat": args.repeat}
    if sides is not None:
        context["config"]["base"] = {"ref": args.base_ref, "root": sides.base.root,
                                     "python": sides.base.python, "setup": args.base_setup}
    writer = RunWriter(args.out, context)
    progress = Progress(0, sys.stderr)
    limits = Limits(timeout_s=args.timeout or Limits.timeout_s)
    try:
        if sides is not None:
            rows = run_revisions(configs[0], plans[0], sides, writer, limits, progress.hooks())
        else:
            rows = run_ab(configs[1], (plans[0], plans[1]), writer, args.isolate, limits,
                          progress.hooks())
    except PairingError as exc:
        raise UsageError(str(exc)) from None
    finally:
        writer.close()
        progress.finish()
    report = compare_paired(rows, options)
    print(render_text(report))
    print(f"\nrun folder: {writer.path}")
    if args.markdown:
        title = (f"A/B: {args.candidate} against {args.baseline}" if sides is None else
                 f"A/B: {args.baseline}, working tree against "
                 f"{args.base_ref or args.base_python}")
        with writing(args.markdown):
            args.markdown.write_text(render_markdown(report, title), encoding="utf-8")
    return 1 if report.failed else 0


def _sides(args: argparse.Namespace) -> Sides:
    """Where the base and the candidate run: checkouts, interpreters; one line if unusable."""
    from harness.execution.channel import Interpreter
    from harness.execution.revisions import RevisionError, Sides, checkout, repository_root, set_up

    if args.base_python is not None and not os.access(args.base_python, os.X_OK):
        raise UsageError(f"--base-python {args.base_python}: not an executable file")
    try:
        if args.base_ref is None:
            here = str(Path.cwd())
            return Sides(Interpreter(args.base_python, here), Interpreter(sys.executable, here))
        root = repository_root(Path.cwd())
        _, tree = checkout(root, args.base_ref)
        python = args.base_python or sys.executable
        if args.base_setup is not None:
            python = set_up(tree, args.base_setup)
        return Sides(Interpreter(python, str(tree)), Interpreter(sys.executable, str(root)))
    except RevisionError as exc:
        raise UsageError(str(exc)) from None
