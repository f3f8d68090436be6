"""The ``harness`` command: list, run and export."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from harness import plugins
from harness.config import ConfigError, RunConfig, TimingOptions, load_plan
from harness.workload import format_value

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error; we print one line that names the valid choices."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Benchmark and profile ML inference.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="{list,run,export}")

    ls = sub.add_parser("list", help="list suites, workloads or adapters")
    ls.add_argument("what", nargs="?", choices=("suites", "workloads", "adapters"),
                    help="what to list (default: all three)")

    run = sub.add_parser("run", help="run workloads on adapters and store the results")
    preset = run.add_mutually_exclusive_group()
    preset.add_argument("--quick", dest="preset", action="store_const", const="quick",
                        help="each workload's quick preset (the default)")
    preset.add_argument("--full", dest="preset", action="store_const", const="full",
                        help="each workload's full parameter grid")
    run.add_argument("-s", "--suite", action="append", default=[], metavar="SUITE",
                     help="a registered suite, a dotted module or a .py file (repeatable)")
    run.add_argument("-w", "--workload", action="append", default=[], metavar="NAME",
                     help="only this workload (repeatable)")
    run.add_argument("-a", "--adapter", action="append", default=[], metavar="NAME[:k=v,...]",
                     help="run on this adapter, e.g. cpu:threads=1 (repeatable; default: every "
                          "available adapter except null)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="K=V1,V2",
                     help="override a parameter's values (repeatable)")
    run.add_argument("--plan", type=Path, metavar="FILE.toml",
                     help="read the selection from a plan")
    run.add_argument("--out", type=Path, metavar="DIR",
                     help="results directory (default: results/)")
    run.add_argument("--min-time", type=float, metavar="S", help="minimum sampling time per case")
    run.add_argument("--max-time", type=float, metavar="S", help="maximum sampling time per case")
    run.add_argument("--min-samples", type=int, metavar="N", help="minimum samples per case")
    run.add_argument("--reference", metavar="ADAPTER",
                     help="with several adapters, show speedups over this one (default: cpu)")
    run.add_argument("--no-collect", action="store_true",
                     help="skip the memory and energy pass after timing")

    export = sub.add_parser("export", help="write a run's rows as CSV or Parquet")
    export.add_argument("run", type=Path, help="a run folder")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.add_argument("-o", "--output", type=Path, help="destination file (default: in the run)")
    return parser


def _parse_params(items: list[str]) -> dict[str, tuple[str, ...]]:
    params: dict[str, tuple[str, ...]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        parts = tuple(v.strip() for v in values.split(","))
        if not sep or not key.strip() or not all(parts):
            raise UsageError(f"-p/--param takes key=value[,value...], got {item!r}")
        params[key.strip()] = parts
    return params


def _config(args: argparse.Namespace) -> RunConfig:
    """Plan file first, then command-line flags on top."""
    kwargs: dict[str, Any] = load_plan(args.plan) if args.plan else {}
    if args.suite:
        kwargs["suites"] = tuple(args.suite)
    if args.workload:
        kwargs["workloads"] = tuple(args.workload)
    if args.adapter:
        kwargs["adapters"] = tuple(args.adapter)
    if args.param:
        kwargs["params"] = {**kwargs.get("params", {}), **_parse_params(args.param)}
    if args.preset:
        kwargs["preset"] = args.preset
    if args.out:
        kwargs["out"] = args.out
    if args.no_collect:
        kwargs["collect"] = False
    timing = kwargs.get("timing", TimingOptions())
    overrides = {"min_time_s": args.min_time, "max_time_s": args.max_time,
                 "min_samples": args.min_samples}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        if "max_time_s" not in overrides and overrides.get("min_time_s", 0) > timing.max_time_s:
            overrides["max_time_s"] = overrides["min_time_s"]
        timing = TimingOptions(**{**timing.__dict__, **overrides})
    kwargs["timing"] = timing
    return RunConfig(**kwargs)


def cmd_list(args: argparse.Namespace) -> int:
    sections = [args.what] if args.what else ["suites", "workloads", "adapters"]
    out: list[str] = []
    if "suites" in sections:
        out.append("suites:")
        for name, target in plugins.registered("harness.suites").items():
            out.append(f"  {name:<14} {target}")
    if "workloads" in sections:
        out.append("workloads:")
        for suite in plugins.all_suites():
            for wl in suite.workloads.values():
                grid = " ".join(f"{k}={','.join(format_value(v) for v in vs)}"
                                for k, vs in wl.params.items())
                out.append(f"  {suite.name}/{wl.name:<16} {wl.description}")
                out.append(f"      {grid}")
    if "adapters" in sections:
        out.append("adapters:")
        for name in plugins.registered("harness.adapters"):
            ok, reason = plugins.adapter_status(name)
            out.append(f"  {name:<12} {'yes' if ok else 'no ':<4} {reason}".rstrip())
    print("\n".join(out))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from harness import environment
    from harness.plan import make_plan
    from harness.progress import Progress
    from harness.report.table import render
    from harness.results import RunWriter
    from harness.runner import Hooks, Runner

    config = _config(args)
    plan = make_plan(config)
    adapters = {}
    try:
        for spec in plan.adapters:
            cls = plugins.adapter_class(spec.name)
            adapters[spec.label] = cls(**spec.options)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    names = [spec.name for spec in plan.adapters]
    if args.reference is not None and args.reference not in names:
        raise UsageError(f"--reference {args.reference!r} is not among the run's adapters: "
                         f"{', '.join(dict.fromkeys(names))}")
    context = environment.collect()
    context["config"] = {
        "suites": config.suites, "workloads": config.workloads, "preset": config.preset,
        "params": config.params, "adapters": [s.label for s in plan.adapters],
        "timing": config.timing.__dict__, "collect": config.collect,
    }
    context["adapters"] = {label: a.info() for label, a in adapters.items()}
    writer = RunWriter(config.out, context)
    progress = Progress(len(plan), sys.stderr)
    runner = Runner(config, plan, writer, Hooks(progress.start, progress.done))
    try:
        rows = runner.run(adapters)
    except KeyboardInterrupt:
        progress.finish()
        print(f"interrupted; rows finished so far are in {writer.path}", file=sys.stderr)
        return 130
    finally:
        writer.close()
        for adapter in adapters.values():
            adapter.close()
    progress.finish()
    print(render(rows, reference=args.reference or "cpu"))
    print(f"\nrun folder: {writer.path}")
    failed = [r for r in rows if r["status"] == "error" or r.get("correct") is False]
    return 1 if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from harness.results import export

    print(export(args.run, args.format, args.output))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script; returns the exit status."""
    from harness.plan import PlanError
    from harness.plugins import PluginError
    from harness.results import ResultsError

    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        handler = {"list": cmd_list, "run": cmd_run, "export": cmd_export}[args.command]
        return handler(args)
    except (UsageError, ConfigError, PlanError, PluginError, ResultsError) as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:
        print(f"harness: error: a required package is missing: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
