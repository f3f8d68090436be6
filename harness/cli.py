"""The ``harness`` command: list, run, report, compare, baseline, import, history, export."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from harness import plugins
from harness.config import ConfigError, RunConfig, TimingOptions, load_plan
from harness.scenarios import SCENARIOS
from harness.workload import format_value

if TYPE_CHECKING:
    from harness.adapters import Adapter
    from harness.plan import Plan
    from harness.results import RunWriter

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
                                metavar="{list,run,report,compare,ab,baseline,import,history,export}")

    ls = sub.add_parser("list", help="list suites, workloads or adapters")
    ls.add_argument("what", nargs="?", choices=("suites", "workloads", "adapters"),
                    help="what to list (default: all three)")

    run = sub.add_parser("run", help="run workloads on adapters and store the results")
    preset = run.add_mutually_exclusive_group()
    preset.add_argument("--quick", dest="preset", action="store_const", const="quick",
                        help="each workload's quick preset (the default); with --scenario, "
                             "also a short smoke test of the scenario")
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
    run.add_argument("--precision", type=_fraction, metavar="PCT",
                     help="stop sampling a case once its median's 95%% CI is within ±PCT "
                          "(e.g. 2%%), or at --max-time")
    run.add_argument("--repeat", type=int, metavar="N",
                     help="run every case N times, each repetition in a fresh process, so that "
                          "comparisons can see the noise between processes")
    isolate = run.add_mutually_exclusive_group()
    isolate.add_argument("--isolate", dest="isolate", action="store_true", default=True,
                         help="run each case in its own worker process (the default): a crash, "
                              "hang or memory exhaustion becomes an error row")
    isolate.add_argument("--no-isolate", dest="isolate", action="store_false",
                         help="run every case in this process (faster start, no protection)")
    run.add_argument("--timeout", type=float, metavar="S",
                     help="with isolation, kill a case after S seconds (default 600)")
    run.add_argument("--max-memory", type=_size, metavar="SIZE",
                     help="with isolation, cap each worker's memory, e.g. 8G or 512M")
    run.add_argument("--cluster", metavar="ADDRESS",
                     help="run the cases on a Ray cluster: HOST:PORT, ray://HOST:PORT, auto, or "
                          "local (a private Ray instance on this machine); needs the [cluster] "
                          "extra")
    run.add_argument("--resources", action="append", default=[],
                     metavar="ADAPTER=RESOURCE:N,...",
                     help="with --cluster, the Ray resources one case of ADAPTER needs, e.g. "
                          "fpga=fpga:1 or cuda=GPU:1,A100:1 (repeatable; replaces the adapter's "
                          "own: GPU:1 for cuda, TPU:1 for tpu, fpga:1 for fpga)")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR",
                     help="run only the cases missing from this run folder, with its settings")
    # A worker of --repeat: append to the parent's run folder as repetition K. Not for users.
    run.add_argument("--into", type=Path, help=argparse.SUPPRESS)
    run.add_argument("--repetition", type=int, default=0, help=argparse.SUPPRESS)
    run.add_argument("--reference", metavar="ADAPTER",
                     help="with several adapters, show speedups over this one (default: cpu)")
    run.add_argument("--recalibrate", action="store_true",
                     help="measure the adapters' peaks even where this machine has them cached")
    run.add_argument("--no-collect", action="store_true",
                     help="skip the memory and energy pass after timing")
    load = run.add_argument_group(
        "load scenarios", "latency under load, as MLPerf LoadGen's scenarios define it (see "
        "README, Load scenarios); with --scenario, --quick also makes the run a short smoke test")
    load.add_argument("--scenario", choices=SCENARIOS, metavar="{" + ",".join(SCENARIOS) + "}",
                      help="loop (the default): the calibrated timing loop; single-stream, "
                           "offline, server or multi-stream: a load scenario")
    load.add_argument("--qps", type=float, metavar="QPS",
                      help="server: offered queries per second, Poisson arrivals (with "
                           "--find-peak: where the search starts)")
    load.add_argument("--max-batch", type=int, metavar="N",
                      help="serve up to N queries in one call (default 1: batching off)")
    load.add_argument("--batch-timeout-ms", type=float, metavar="MS",
                      help="server: how long a batch may wait to fill (default 0)")
    load.add_argument("--latency-bound-ms", type=float, metavar="MS",
                      help="the latency each query should meet; the fraction over it is reported")
    load.add_argument("--max-queue", type=int, metavar="N",
                      help="server: queries that may wait; more are dropped and counted "
                           "(default 1024)")
    load.add_argument("--group-size", type=int, metavar="N",
                      help="multi-stream: queries issued together (default 8)")
    load.add_argument("--seed", type=int, metavar="N",
                      help="server: seed of the Poisson schedule (default 0)")
    load.add_argument("--duration", type=float, metavar="S",
                      help="minimum length of a scenario run (default 10 s)")
    load.add_argument("--loadgen-minimums", action="store_true",
                      help="run as long as MLPerf LoadGen requires (600 s and its query counts)")
    load.add_argument("--find-peak", action="store_true",
                      help="server: find the highest QPS whose p99 meets --latency-bound-ms")

    rep = sub.add_parser("report", help="write an HTML or Markdown report of runs")
    rep.add_argument("runs", nargs="+", type=Path, help="run folders or results directories")
    rep.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                     help="report.html (self-contained, with plots) or report.md")
    rep.add_argument("--reference", default="cpu", metavar="ADAPTER",
                     help="adapter the speedups are relative to (default: cpu)")

    cmp = sub.add_parser("compare", help="compare a candidate run with a baseline, case by case")
    cmp.add_argument("baseline", help="a run folder, a results directory, or a baseline name "
                                      "(results/baselines/NAME)")
    cmp.add_argument("candidate", help="a run folder or a results directory")
    cmp.add_argument("--threshold", type=_fraction, default=0.05, metavar="PCT",
                     help="smallest slowdown that counts, e.g. 5%% or 0.05 (default 5%%)")
    cmp.add_argument("--alpha", type=float, default=0.01,
                     help="false-discovery rate across cases (default 0.01)")
    cmp.add_argument("--memory-threshold", type=_fraction, metavar="PCT",
                     help="flag a peak-memory growth beyond this as a regression")
    cmp.add_argument("--energy-threshold", type=_fraction, metavar="PCT",
                     help="flag an energy-per-item growth beyond this as a regression")
    cmp.add_argument("--markdown", type=Path, metavar="FILE",
                     help="also write the comparison as Markdown (CI summary, PR comment)")
    cmp.add_argument("--results", type=Path, default=Path("results"), metavar="DIR",
                     help="where baseline names are looked up (default: results/)")

    ab = sub.add_parser("ab", help="time two versions of a suite interleaved and compare them")
    ab.add_argument("baseline", help="the baseline suite: a name, dotted module or .py file")
    ab.add_argument("candidate", help="the candidate suite, with the same workloads")
    ab.add_argument("-w", "--workload", action="append", default=[], metavar="NAME")
    ab.add_argument("-a", "--adapter", action="append", default=[], metavar="NAME[:k=v,...]")
    ab.add_argument("-p", "--param", action="append", default=[], metavar="K=V1,V2")
    ab.add_argument("--full", action="store_true", help="the full grids (default: quick)")
    ab.add_argument("--repeat", type=int, default=5, metavar="N",
                    help="repetitions, each case in a fresh worker every time (default 5)")
    ab.add_argument("--min-time", type=float, metavar="S", help="minimum sampling time per side")
    ab.add_argument("--out", type=Path, default=Path("results"), metavar="DIR")
    ab.add_argument("--no-isolate", dest="isolate", action="store_false",
                    help="run every pair in this process")
    ab.add_argument("--timeout", type=float, metavar="S", help="kill a pair after S seconds")
    ab.add_argument("--threshold", type=_fraction, default=0.02, metavar="PCT",
                    help="smallest change flagged (default 2%%: pairs cancel drift; the spread "
                         "of the repetitions' paired ratios raises it where larger)")
    ab.add_argument("--alpha", type=float, default=0.01)
    ab.add_argument("--markdown", type=Path, metavar="FILE")

    base = sub.add_parser("baseline", help="save a run as a named baseline, or list baselines")
    base_sub = base.add_subparsers(dest="action", required=True, parser_class=_Parser,
                                   metavar="{save,list}")
    save = base_sub.add_parser("save", help="copy a run to results/baselines/NAME")
    save.add_argument("run", type=Path, help="a run folder")
    save.add_argument("name", help="letters, digits, '.', '_' or '-'")
    save.add_argument("--results", type=Path, default=Path("results"), metavar="DIR")
    save.add_argument("--force", action="store_true", help="replace an existing baseline")
    listing = base_sub.add_parser("list", help="the saved baselines")
    listing.add_argument("--results", type=Path, default=Path("results"), metavar="DIR")

    imp = sub.add_parser("import", help="store another tool's results as a run")
    imp.add_argument("format", choices=("pytest-benchmark",), help="the file's format")
    imp.add_argument("file", type=Path, help="a pytest-benchmark JSON file")
    imp.add_argument("--out", type=Path, default=Path("results"), metavar="DIR",
                     help="results directory (default: results/)")
    imp.add_argument("--reference", metavar="ADAPTER", help=argparse.SUPPRESS)

    hist = sub.add_parser("history", help="many runs as one table, oldest first")
    hist.add_argument("dirs", nargs="*", type=Path, default=[Path("results")],
                      help="results directories or run folders (default: results/)")
    hist.add_argument("-c", "--case", metavar="TEXT", help="only cases whose id contains TEXT")
    hist.add_argument("-o", "--output", type=Path, metavar="FILE.csv|.parquet",
                      help="also write every row of the history as CSV or Parquet")

    export = sub.add_parser("export", help="write a run's rows as CSV or Parquet")
    export.add_argument("run", type=Path, help="a run folder")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.add_argument("-o", "--output", type=Path, help="destination file (default: in the run)")
    return parser


def _size(text: str) -> int:
    """``8G``, ``512M``, ``1.5GiB`` or a byte count → bytes."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a size such as 8G or 512M, got {text!r}")
    scale = 1024 ** " KMGT".index(match.group(2).upper() or " ")
    value = int(float(match.group(1)) * scale)
    if value < 64 * 2**20:
        raise argparse.ArgumentTypeError(f"a worker needs at least 64M, got {text!r}")
    return value


def _fraction(text: str) -> float:
    """``5%`` or ``0.05`` → 0.05."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 5% or 0.05, "
                                         f"got {text!r}") from None
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"expected a percentage from 0% to 1000%, got {text!r}")
    return value


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
    kwargs["recalibrate"] = args.recalibrate
    if args.repeat is not None:
        kwargs["repeat"] = args.repeat
    kwargs["repetition"] = args.repetition
    timing = kwargs.get("timing", TimingOptions())
    overrides = {"min_time_s": args.min_time, "max_time_s": args.max_time,
                 "min_samples": args.min_samples, "precision": args.precision}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        if "max_time_s" not in overrides and overrides.get("min_time_s", 0) > timing.max_time_s:
            overrides["max_time_s"] = overrides["min_time_s"]
        timing = TimingOptions(**{**timing.__dict__, **overrides})
    kwargs["timing"] = timing
    kwargs["load"] = _load_options(args)
    if kwargs["load"] is not None and overrides:
        flag = {"min_time_s": "--min-time", "max_time_s": "--max-time",
                "min_samples": "--min-samples", "precision": "--precision"}[next(iter(overrides))]
        raise UsageError(f"{flag} sets the timing loop; a load scenario runs for --duration")
    return RunConfig(**kwargs)


#: Load-scenario flags: argparse destination → the flag as written.
LOAD_FLAGS = {"qps": "--qps", "max_batch": "--max-batch", "batch_timeout_ms": "--batch-timeout-ms",
              "latency_bound_ms": "--latency-bound-ms", "max_queue": "--max-queue",
              "group_size": "--group-size", "seed": "--seed", "duration": "--duration",
              "loadgen_minimums": "--loadgen-minimums", "find_peak": "--find-peak"}


def _load_options(args: argparse.Namespace) -> Any:
    """The load scenario's options, or None for the timing loop; bad values are one line."""
    from harness.scenarios.options import LoadOptions, OptionsError, Rule

    given = [flag for dest, flag in LOAD_FLAGS.items()
             if getattr(args, dest) not in (None, False)]
    if args.scenario in (None, "loop"):
        if given:
            which = "--scenario server" if given[0] in ("--qps", "--batch-timeout-ms",
                                                        "--find-peak", "--max-queue",
                                                        "--seed") else "a load --scenario"
            raise UsageError(f"{given[0]} applies only to {which}")
        return None
    if args.loadgen_minimums and args.preset == "quick":
        raise UsageError("--quick (a smoke test) and --loadgen-minimums contradict each other: "
                         "choose one")
    rule: Rule = ("loadgen" if args.loadgen_minimums else
                  "quick" if args.preset == "quick" else "harness")
    values: dict[str, Any] = {
        "qps": args.qps, "max_batch": args.max_batch, "max_queue": args.max_queue,
        "group_size": args.group_size, "seed": args.seed, "duration_s": args.duration,
        "batch_timeout_s": None if args.batch_timeout_ms is None else args.batch_timeout_ms / 1e3,
        "latency_bound_s": (None if args.latency_bound_ms is None
                            else args.latency_bound_ms / 1e3)}
    try:
        return LoadOptions(scenario=args.scenario, rule=rule, find_peak=args.find_peak,
                           **{k: v for k, v in values.items() if v is not None})
    except OptionsError as exc:
        raise UsageError(str(exc)) from None


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


SELECTION_FLAGS = ("suite", "workload", "adapter", "param", "plan", "preset", "repeat",
                   "min_time", "max_time", "min_samples", "precision", "no_collect", "scenario",
                   *LOAD_FLAGS)


def _resumed(args: argparse.Namespace) -> tuple[RunConfig, Path]:
    """The configuration stored in the run folder being resumed."""
    from harness.results import ResultsError, read_context
    from harness.scenarios.options import LoadOptions

    given = [f"--{f.replace('_', '-')}" for f in SELECTION_FLAGS
             if getattr(args, f) not in (None, False, [], ())]
    if given:
        raise UsageError(f"--resume takes the selection from the run folder; drop {given[0]}")
    run = Path(args.resume)
    if not (run / "context.json").is_file():
        raise UsageError(f"--resume {run}: not a run folder (no context.json)")
    stored = read_context(run).get("config")
    if not isinstance(stored, dict):
        raise UsageError(f"--resume {run}: its context.json records no run configuration")
    try:
        config = RunConfig(
            suites=tuple(stored.get("suites") or ()),
            workloads=tuple(stored.get("workloads") or ()),
            adapters=tuple(stored.get("adapters") or ()),
            params={k: tuple(v) for k, v in (stored.get("params") or {}).items()},
            preset=stored.get("preset", "quick"), out=run.parent,
            timing=TimingOptions(**(stored.get("timing") or {})),
            collect=bool(stored.get("collect", True)), repeat=int(stored.get("repeat", 1)),
            recalibrate=args.recalibrate,
            load=LoadOptions(**stored["load"]) if stored.get("load") else None)
    except (TypeError, ValueError, ResultsError) as exc:
        raise UsageError(f"--resume {run}: its stored configuration is not valid: {exc}") from None
    return config, run


def _limits(args: argparse.Namespace) -> Any:
    from harness.isolation import Limits

    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    return Limits(timeout_s=args.timeout or Limits.timeout_s, max_memory_bytes=args.max_memory)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.plan import make_plan

    if args.resume is not None:
        config, resumed = _resumed(args)
    else:
        config, resumed = _config(args), None
    overrides = _cluster_resources(args, resumed)
    plan = make_plan(config, here=overrides is None)
    names = [spec.name for spec in plan.adapters]
    if args.reference is not None and args.reference not in names:
        raise UsageError(f"--reference {args.reference!r} is not among the run's adapters: "
                         f"{', '.join(dict.fromkeys(names))}")
    limits = _limits(args)
    if overrides is None:
        return _run_command(args, config, resumed, plan, limits, None)
    from harness import cluster

    cluster.connect(args.cluster)
    try:
        return _run_command(args, config, resumed, plan, limits, overrides)
    finally:
        cluster.disconnect()


def _cluster_resources(args: argparse.Namespace, resumed: Path | None) -> Any:
    """The ``--resources`` overrides of a ``--cluster`` run (those stored in a resumed run's
    folder unless given again); None for a run on this machine."""
    from harness.cluster import parse_resources
    from harness.results import read_context

    if args.cluster is None:
        if args.resources:
            raise UsageError("--resources only applies with --cluster")
        return None
    if not args.isolate:
        raise UsageError("--cluster runs each case in its own worker process on its node; "
                         "drop --no-isolate")
    if args.scenario not in (None, "loop"):
        raise UsageError("--scenario runs on this machine; a cluster run times the loop only "
                         "(drop --cluster or --scenario)")
    if args.into is not None:
        raise UsageError("--cluster cannot be used with --into")
    if args.resources or resumed is None:
        return parse_resources(args.resources)
    stored = (read_context(resumed).get("config") or {}).get("cluster") or {}
    return {str(k): dict(v) for k, v in (stored.get("resources") or {}).items()}


def _run_command(args: argparse.Namespace, config: RunConfig, resumed: Path | None, plan: Plan,
                 limits: Any, overrides: Any) -> int:
    """The run itself, once the plan is known (and, for ``--cluster``, Ray connected)."""
    from harness import environment
    from harness.report.table import render
    from harness.results import RunWriter, read_rows, set_aside_lost
    from harness.runner import pending, row_key

    if args.into is not None:  # a worker of --repeat without isolation: the parent prints
        writer = RunWriter.reopen(args.into)
        done = {row_key(row) for row in read_rows(args.into)}
        _run_plan(config, plan, writer, done, args.isolate, limits)
        return 0
    if overrides is not None and resumed is None:
        from harness import cluster

        cluster.check(plan.adapters, overrides, cluster.live_nodes())
    if args.isolate and overrides is None:
        from harness import isolation

        isolation.start(plan)  # the workers' imports overlap this process's set-up
    if resumed is not None:
        if overrides is not None:  # refuse work no live node can do before touching the run
            from harness import cluster

            kept = {row_key(row) for row in read_rows(resumed) if row.get("lost") is not True}
            needed = {spec.label: spec for k in range(config.repeat)
                      for spec, cases in pending(plan, kept, k) if cases}
            cluster.check(list(needed.values()), overrides, cluster.live_nodes())
        # Rows of cases lost with a node or Ray worker are not results: run those again.
        moved = set_aside_lost(resumed)
        if moved:
            print(f"{moved} lost case(s) moved to {resumed / 'lost.jsonl'}: running them again",
                  file=sys.stderr)
        writer = RunWriter.reopen(resumed)
    else:
        context = environment.collect()
        context["config"] = {
            "suites": config.suites, "workloads": config.workloads, "preset": config.preset,
            "params": config.params, "adapters": [s.label for s in plan.adapters],
            "timing": config.timing.__dict__, "collect": config.collect,
            "repeat": config.repeat, "isolate": args.isolate,
            "load": None if config.load is None else dataclasses.asdict(config.load),
        }
        if overrides is None:
            adapters = _adapters(plan)
            context["adapters"] = {label: a.info() for label, a in adapters.items()}
            for adapter in adapters.values():  # cases run in workers, or get fresh instances
                adapter.close()
        else:
            # Each node reports its own hosts' context and adapters' info as it first returns.
            context["config"]["cluster"] = {"address": args.cluster, "resources": overrides}
            context["adapters"], context["hosts"] = {}, {}
        writer = RunWriter(config.out, context)
    done = {row_key(row) for row in read_rows(writer.path)}
    if config.repeat > 1 and not args.isolate:
        writer.close()
        status = _repeat(args, config.repeat, writer.path)
        if status:
            return status
    else:
        for k in range(config.repeat):
            if config.repeat > 1:
                print(f"repetition {k + 1}/{config.repeat}", file=sys.stderr)
            run = dataclasses.replace(config, repetition=k)
            if _run_plan(run, plan, writer, done, args.isolate, limits, close=False,
                         cluster=overrides) is None:
                writer.close()
                return 130
        writer.close()
    rows = read_rows(writer.path)
    print(render(rows, reference=args.reference or "cpu"))
    print(f"\nrun folder: {writer.path}")
    failed = [r for r in rows if r["status"] == "error" or r.get("correct") is False]
    return 1 if failed else 0


def _adapters(plan: Plan) -> dict[str, Adapter]:
    adapters = {}
    try:
        for spec in plan.adapters:
            cls = plugins.adapter_class(spec.name)
            adapters[spec.label] = cls(**spec.options)
    except ValueError as exc:
        for adapter in adapters.values():
            adapter.close()
        raise UsageError(str(exc)) from None
    return adapters


def _run_plan(config: RunConfig, plan: Plan, writer: RunWriter, done: set[Any], isolate: bool,
              limits: Any, close: bool = True, cluster: Any = None
              ) -> list[dict[str, Any]] | None:
    """Run the plan's pending cases, each in its own worker (on this machine, or on the nodes
    of the connected Ray cluster when ``cluster`` holds its resource overrides) or all in this
    process; the rows, or None when interrupted (rows finished so far are on disk)."""
    from harness.isolation import run_isolated
    from harness.progress import Progress
    from harness.runner import Hooks, Runner, pending

    todo = sum(len(cases) for _, cases in pending(plan, done, config.repetition))
    progress = Progress(len(plan), sys.stderr)
    progress.skipped(len(plan) - todo)
    hooks = Hooks(progress.start, progress.done)
    adapters: dict[str, Adapter] = {}
    try:
        if cluster is not None:
            from harness.cluster import run_cluster

            rows = run_cluster(config, plan, writer, limits, cluster, hooks, done)
        elif config.load is not None:
            from harness.scenarios.driver import LoadDriver

            if not isolate:
                adapters = _adapters(plan)
            driver = LoadDriver(config, plan, writer, config.load, isolate, limits, hooks)
            rows = driver.run(done, adapters if not isolate else None)
        elif isolate:
            rows = run_isolated(config, plan, writer, limits, hooks, done)
        else:
            adapters = _adapters(plan)
            rows = Runner(config, plan, writer, hooks, done=done).run(adapters)
    except KeyboardInterrupt:
        progress.finish()
        print(f"interrupted; rows finished so far are in {writer.path}", file=sys.stderr)
        return None
    finally:
        if close:
            writer.close()
        for adapter in adapters.values():
            adapter.close()
    progress.finish()
    return rows


def _repeat(args: argparse.Namespace, repeat: int, run: Path) -> int:
    """Run the same command ``repeat`` times in fresh processes, appending to ``run``.

    Each repetition runs every case once, in order, so slow drifts of the machine spread over
    all cases alike; the parent only waits (it must not compete with the measuring worker).
    """
    import subprocess

    argv = _without_repeat(args.argv)
    for k in range(repeat):
        print(f"repetition {k + 1}/{repeat}", file=sys.stderr)
        command = [sys.executable, "-m", "harness", *argv, "--into", str(run),
                   "--repetition", str(k)]
        try:
            done = subprocess.run(command, check=False)  # no shell: argv is passed as is
        except KeyboardInterrupt:
            print(f"interrupted; rows finished so far are in {run}", file=sys.stderr)
            return 130
        if done.returncode not in (0, 1):
            print(f"harness: error: repetition {k + 1} exited with status {done.returncode}; "
                  f"rows finished so far are in {run}", file=sys.stderr)
            return 1
    return 0


def _without_repeat(argv: Sequence[str]) -> list[str]:
    """The command line minus ``--repeat N`` (and its ``--repeat=N`` spelling)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--repeat":
            skip = True
        elif not arg.startswith("--repeat="):
            out.append(arg)
    return out


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report.build import write_report

    print(write_report(args.runs, args.output, reference=args.reference))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness import baselines
    from harness.compare import Options, compare
    from harness.report.comparison import render_markdown, render_text
    from harness.results import read_rows, run_folders

    try:
        options = Options(threshold=args.threshold, alpha=args.alpha,
                          memory_threshold=args.memory_threshold,
                          energy_threshold=args.energy_threshold)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    baseline = baselines.resolve(args.baseline, args.results)
    rows = [[row for run in run_folders([path]) for row in read_rows(run)]
            for path in (baseline, Path(args.candidate))]
    report = compare(rows[0], rows[1], options)
    print(render_text(report))
    if args.markdown:
        title = f"Benchmark comparison: {args.candidate} against {args.baseline}"
        args.markdown.write_text(render_markdown(report, title), encoding="utf-8")
    return 1 if report.regressions else 0


def cmd_ab(args: argparse.Namespace) -> int:
    from harness import environment
    from harness.ab import PairingError, run_ab
    from harness.compare import Options, compare_paired
    from harness.isolation import Limits
    from harness.plan import make_plan
    from harness.progress import Progress
    from harness.report.comparison import render_markdown, render_text
    from harness.results import RunWriter
    from harness.runner import Hooks

    timing = TimingOptions()
    if args.min_time is not None:
        timing = dataclasses.replace(timing, min_time_s=args.min_time,
                                     max_time_s=max(timing.max_time_s, args.min_time))
    try:
        options = Options(threshold=args.threshold, alpha=args.alpha)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.repeat < 1:
        raise UsageError(f"--repeat must be at least 1, got {args.repeat}")
    configs = [RunConfig(suites=(suite,), workloads=tuple(args.workload),
                         adapters=tuple(args.adapter), params=_parse_params(args.param),
                         preset="full" if args.full else "quick", out=args.out, timing=timing,
                         collect=False, repeat=args.repeat)
               for suite in (args.baseline, args.candidate)]
    plans = (make_plan(configs[0]), make_plan(configs[1]))
    context = environment.collect()
    context["config"] = {"ab": [args.baseline, args.candidate], "workloads": args.workload,
                         "adapters": [s.label for s in plans[1].adapters],
                         "params": configs[1].params, "preset": configs[1].preset,
                         "timing": timing.__dict__, "repeat": args.repeat}
    writer = RunWriter(args.out, context)
    progress = Progress(0, sys.stderr)
    try:
        rows = run_ab(configs[1], plans, writer, args.isolate,
                      Limits(timeout_s=args.timeout or Limits.timeout_s),
                      Hooks(progress.start, progress.done))
    except PairingError as exc:
        raise UsageError(str(exc)) from None
    finally:
        writer.close()
        progress.finish()
    report = compare_paired(rows, options)
    print(render_text(report))
    print(f"\nrun folder: {writer.path}")
    if args.markdown:
        title = f"A/B: {args.candidate} against {args.baseline}"
        args.markdown.write_text(render_markdown(report, title), encoding="utf-8")
    return 1 if report.regressions else 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness import baselines

    if args.action == "save":
        print(baselines.save(args.run, args.name, args.results, replace=args.force))
    else:
        for name, path in baselines.names(args.results).items():
            print(f"{name:<20} {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from harness.importers import import_pytest_benchmark
    from harness.report.table import render
    from harness.results import read_rows

    run = import_pytest_benchmark(args.file, args.out)
    print(render(read_rows(run)))
    print(f"\nrun folder: {run}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from harness.history import history, trend
    from harness.report import units
    from harness.report.table import grid

    frame = history(args.dirs)
    if args.case:
        frame = frame[frame["case_id"].str.contains(args.case, regex=False)]
    if args.output:
        suffix = args.output.suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise UsageError(f"--output must end in .csv or .parquet, got {args.output}")
        out = frame.assign(samples_s=[str(v) for v in frame["samples_s"]])
        out.to_csv(args.output, index=False) if suffix == ".csv" else out.to_parquet(args.output)
    lines = [("started", "git", "case", "adapter", "median", "change")]
    for row in trend(frame).itertuples():
        started = row.run_started_at
        change = row.change
        lines.append((str(started)[:19] if started == started else units.DASH,
                      str(row.git_sha or units.DASH)[:12], row.case_id, row.adapter,
                      units.seconds(row.latency_median_s),
                      units.DASH if change != change else f"{change * 100:+.1f}%"))
    print("\n".join(grid(lines)))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from harness.results import export

    print(export(args.run, args.format, args.output))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script; returns the exit status."""
    import warnings

    from harness.cluster import ClusterError
    from harness.plan import PlanError
    from harness.plugins import PluginError
    from harness.results import ResultsError
    from harness.terminal import printable

    # Warnings (a torn last row, say) are one line each, like errors; both may quote a case or
    # a results file, so control characters are escaped.
    warnings.showwarning = lambda message, *_args, **_kw: print(
        f"harness: warning: {printable(message)}", file=sys.stderr)
    parser = _build_parser()
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
        args.argv = argv
        handler = {"list": cmd_list, "run": cmd_run, "report": cmd_report,
                   "compare": cmd_compare, "ab": cmd_ab, "baseline": cmd_baseline,
                   "import": cmd_import, "history": cmd_history,
                   "export": cmd_export}[args.command]
        return handler(args)
    except (UsageError, ConfigError, PlanError, PluginError, ResultsError, ClusterError) as exc:
        print(f"harness: error: {printable(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as exc:
        print(f"harness: error: a required package is missing: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`harness compare ... | head`): not an error of ours. Point
        # stdout at devnull so that the interpreter's final flush does not fail again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
