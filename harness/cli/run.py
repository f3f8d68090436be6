"""``harness run``: parse the selection and how to run it, then hand it to the execution layer
and print the results table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.cli.common import (
    EXIT_TERMINATED,
    UsageError,
    add_selection,
    interrupted_status,
    parse_params,
    positive_seconds,
    precision,
    seconds,
    size,
)
from harness.config import RunConfig, TimingOptions, read_plan_file
from harness.scenarios import SCENARIOS

if TYPE_CHECKING:
    from harness.execution import Mode
    from harness.plan import Plan

#: Load-scenario flags: argparse destination → the flag as written.
LOAD_FLAGS = {"qps": "--qps", "max_batch": "--max-batch", "batch_timeout_ms": "--batch-timeout-ms",
              "latency_bound_ms": "--latency-bound-ms", "ttft_bound_ms": "--ttft-bound-ms",
              "tpot_bound_ms": "--tpot-bound-ms", "max_queue": "--max-queue",
              "group_size": "--group-size", "seed": "--seed", "duration": "--duration",
              "loadgen_minimums": "--loadgen-minimums", "find_peak": "--find-peak"}

SELECTION_FLAGS = ("suite", "workload", "adapter", "param", "plan", "preset", "repeat",
                   "min_time", "max_time", "min_samples", "precision", "no_collect", "profile",
                   "scenario",
                   *LOAD_FLAGS)


def add_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="run workloads on adapters and store the results")
    preset = run.add_mutually_exclusive_group()
    preset.add_argument("--quick", dest="preset", action="store_const", const="quick",
                        help="each workload's quick preset (the default); with --scenario, "
                             "also a short smoke test of the scenario")
    preset.add_argument("--full", dest="preset", action="store_const", const="full",
                        help="each workload's full parameter grid")
    run.add_argument("-s", "--suite", action="append", default=[], metavar="SUITE",
                     help="a registered suite, a dotted module or a .py file (repeatable)")
    add_selection(run)
    run.add_argument("--plan", type=Path, metavar="FILE.toml",
                     help="read the selection from a TOML plan, whose keys are these flags' "
                          "names (adapters or adapter, min-time or min_time_s, ...); flags given "
                          "here win")
    run.add_argument("--out", type=Path, metavar="DIR",
                     help="results directory (default: results/)")
    add_sampling(run)
    run.add_argument("--repeat", type=int, metavar="N",
                     help="run every case N times, each repetition in a fresh process, so that "
                          "comparisons can see the noise between processes (default 1)")
    isolate = run.add_mutually_exclusive_group()
    isolate.add_argument("--isolate", dest="isolate", action="store_true", default=True,
                         help="run each case in its own worker process (the default): a crash, "
                              "hang or memory exhaustion becomes an error row")
    isolate.add_argument("--no-isolate", dest="isolate", action="store_false",
                         help="run every case in this process (faster start, no protection)")
    run.add_argument("--timeout", type=positive_seconds, metavar="S",
                     help="with isolation, kill a case after S seconds (default 600)")
    run.add_argument("--max-memory", type=size, metavar="SIZE",
                     help="with isolation, cap each worker's memory, e.g. 8G or 512M (default: "
                          "no cap)")
    run.add_argument("--cluster", metavar="ADDRESS",
                     help="run the cases on a Ray cluster: HOST:PORT, ray://HOST:PORT, auto, or "
                          "local (a private Ray instance on this machine); needs the [cluster] "
                          "extra (default: run here)")
    run.add_argument("--resources", action="append", default=[],
                     metavar="ADAPTER=RESOURCE:N,...",
                     help="with --cluster, the Ray resources one case of ADAPTER needs, e.g. "
                          "fpga=fpga:1 or cuda=GPU:1,A100:1 (repeatable; replaces the adapter's "
                          "own: GPU:1 for cuda, TPU:1 for tpu, fpga:1 for fpga)")
    run.add_argument("--resume", type=Path, metavar="RUN_DIR",
                     help="run only the cases missing from this run folder, with its settings")
    run.add_argument("--reference", metavar="ADAPTER",
                     help="with several adapters, show speedups over this one (default: cpu)")
    run.add_argument("--no-interleave", dest="interleave", action="store_false",
                     help="with several adapters, run one adapter after the other instead of "
                          "measuring each case on all of them in alternating rounds")
    run.add_argument("--recalibrate", action="store_true",
                     help="measure the adapters' peaks even where this machine has them cached")
    run.add_argument("--no-collect", action="store_true",
                     help="skip the memory and energy pass after timing")
    run.add_argument("--profile", action="store_true",
                     help="after timing each case, profile it with the adapter's own profiler: "
                          "where the time goes by operator (ops.jsonl), how far to trust it, "
                          "and a trace per case (traces/*.json.gz, opens in Perfetto)")
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
    load.add_argument("--ttft-bound-ms", type=float, metavar="MS",
                      help="server, generation: the time to first token each query should meet "
                           "(judged at p99, queueing included, as MLPerf's LLM rules do)")
    load.add_argument("--tpot-bound-ms", type=float, metavar="MS",
                      help="server, generation: the time per output token each query should "
                           "meet (judged at p99)")
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


def add_sampling(parser: argparse.ArgumentParser) -> None:
    """``--min-time``, ``--max-time``, ``--min-samples`` and ``--precision``, in a group whose
    description states how a case is timed with the defaults (from :class:`TimingOptions`)."""
    d = TimingOptions()
    group = parser.add_argument_group(
        "sampling", f"each case: one untimed first call, warm-up until steady (at most "
        f"{d.max_warmup_s:g} s), then samples of at least {d.min_sample_s * 1e3:g} ms each until "
        f"both --min-time and --min-samples are reached, or --max-time (README, How it "
        f"measures)")
    group.add_argument("--min-time", type=seconds, metavar="S",
                       help=f"minimum sampling time per case (default {d.min_time_s:g} s)")
    group.add_argument("--max-time", type=seconds, metavar="S",
                       help=f"maximum sampling time per case (default {d.max_time_s:g} s, or "
                            "--min-time where that is longer)")
    group.add_argument("--min-samples", type=int, metavar="N",
                       help=f"minimum samples per case (default {d.min_samples})")
    group.add_argument("--precision", type=precision, metavar="PCT",
                       help="stop sampling a case once its median's 95%% CI is within ±PCT (and "
                            "--min-samples are in), or at --max-time; 2, 2%% and 0.02 are alike: "
                            "a number of 1 or more is a percent, below 1 a fraction (default: "
                            "off, --min-time and --min-samples decide)")


def command(args: argparse.Namespace) -> int:
    from harness.execution.cluster import connect, disconnect
    from harness.plan import make_plan

    if args.resume is not None:
        config, resumed = _resumed(args)
    else:
        config, resumed = _config(args), None
    mode = _mode(args, resumed)
    plan = make_plan(config, here=mode.cluster is None)
    names = [spec.name for spec in plan.adapters]
    if args.reference is not None and args.reference not in names:
        raise UsageError(f"--reference {args.reference!r} is not among the run's adapters: "
                         f"{', '.join(dict.fromkeys(names))}")
    if mode.cluster is None:
        return _run(args, config, resumed, plan, mode)
    connect(mode.cluster)
    try:
        return _run(args, config, resumed, plan, mode)
    finally:
        disconnect()


def _run(args: argparse.Namespace, config: RunConfig, resumed: Path | None, plan: Plan,
         mode: Mode) -> int:
    """Open (or reopen) the run folder, execute, print the table: the exit status."""
    from harness import execution
    from harness.profiling.ops import read_ops
    from harness.progress import Progress
    from harness.report.profile import render_text as where_the_time_goes
    from harness.report.table import render
    from harness.results import lock_run, read_rows, unfinished

    if resumed is None:
        execution.prepare(plan, mode)  # the workers' imports overlap this process's set-up
        try:
            writer = execution.open_run(config, plan, mode)
        except OSError as exc:  # --out read-only, or a file
            raise UsageError(f"cannot create a run folder in {config.out}: "
                             f"{exc.strerror or exc}") from None
        lock = lock_run(writer.path)
    else:
        lock = lock_run(resumed)  # before anything in the folder changes
        if unfinished(resumed):
            print(f"{resumed} did not finish (stopped, killed, or its process exited): running "
                  "the cases it is missing", file=sys.stderr)
        if mode.cluster is None:
            execution.prepare(plan, mode)
        writer = execution.reopen_run(resumed, config, plan, mode)
    progress = Progress(len(plan), sys.stderr)
    try:
        with lock:
            execution.execute(config, plan, writer, mode, progress.hooks())
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the workers are gone already
        status = interrupted_status(exc)
        print(f"{'terminated' if status == EXIT_TERMINATED else 'interrupted'}; rows finished "
              f"so far are in {writer.path}", file=sys.stderr)
        return status
    except execution.ExecutionError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, say: the rows written so far are whole
        print(f"harness: error: cannot write {exc.filename or writer.path}: "
              f"{exc.strerror or exc}; once it can be written, `harness run --resume "
              f"{writer.path}` runs the cases still missing", file=sys.stderr)
        return 1
    rows = read_rows(writer.path)
    print(render(rows, reference=args.reference or "cpu"))
    profiled = where_the_time_goes(rows, read_ops(writer.path))
    if profiled:
        print(f"\n{profiled}")
    if config.profile:
        print(f"\ntraces: {writer.path / 'traces'}; operators: {writer.path / 'ops.jsonl'} "
              "(harness.load_ops)")
    print(f"\nrun folder: {writer.path}")
    failed = [r for r in rows if r["status"] == "error" or r.get("correct") is False]
    return 1 if failed else 0


def _config(args: argparse.Namespace) -> RunConfig:
    """Plan file first, then command-line flags on top."""
    kwargs: dict[str, Any] = read_plan_file(args.plan) if args.plan else {}
    if args.suite:
        kwargs["suites"] = tuple(args.suite)
    if args.workload:
        kwargs["workloads"] = tuple(args.workload)
    if args.adapter:
        kwargs["adapters"] = tuple(args.adapter)
    if args.param:
        kwargs["params"] = {**kwargs.get("params", {}), **parse_params(args.param)}
    if args.preset:
        kwargs["preset"] = args.preset
    if args.out:
        kwargs["out"] = args.out
    if args.no_collect:
        kwargs["collect"] = False
    if args.profile:
        kwargs["profile"] = True
    kwargs["recalibrate"] = args.recalibrate
    if args.repeat is not None:
        kwargs["repeat"] = args.repeat
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
    if kwargs["load"] is not None and kwargs.get("profile"):
        raise UsageError("--profile profiles the timing loop's cases; a load scenario is not "
                         "profiled (drop --profile or --scenario)")
    if kwargs["load"] is not None and overrides:
        flag = {"min_time_s": "--min-time", "max_time_s": "--max-time",
                "min_samples": "--min-samples", "precision": "--precision"}[next(iter(overrides))]
        raise UsageError(f"{flag} sets the timing loop; a load scenario runs for --duration")
    return RunConfig(**kwargs)


def _load_options(args: argparse.Namespace) -> Any:
    """The load scenario's options, or None for the timing loop; bad values are one line."""
    from harness.scenarios.options import LoadOptions, OptionsError, Rule

    given = [flag for dest, flag in LOAD_FLAGS.items()
             if getattr(args, dest) not in (None, False)]
    if args.scenario in (None, "loop"):
        if given:
            which = "--scenario server" if given[0] in ("--qps", "--batch-timeout-ms",
                                                        "--find-peak", "--max-queue",
                                                        "--seed", "--ttft-bound-ms",
                                                        "--tpot-bound-ms") else "a load --scenario"
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
        **{f"{name}_bound_s": None if getattr(args, f"{name}_bound_ms") is None
           else getattr(args, f"{name}_bound_ms") / 1e3 for name in ("latency", "ttft", "tpot")}}
    try:
        return LoadOptions(scenario=args.scenario, rule=rule, find_peak=args.find_peak,
                           **{k: v for k, v in values.items() if v is not None})
    except OptionsError as exc:
        raise UsageError(str(exc)) from None


def _resumed(args: argparse.Namespace) -> tuple[RunConfig, Path]:
    """The configuration stored in the run folder being resumed."""
    from harness.results import ResultsError, read_context

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
        config = RunConfig.from_stored(stored, run.parent, args.recalibrate)
    except (TypeError, ValueError, ResultsError) as exc:
        raise UsageError(f"--resume {run}: its stored configuration is not valid: {exc}") from None
    return config, run


def _mode(args: argparse.Namespace, resumed: Path | None) -> Mode:
    """How the cases run: isolation, limits and, for ``--cluster``, the resources each adapter
    needs (those stored in a resumed run's folder unless given again)."""
    from harness.execution import Limits, Mode
    from harness.execution.cluster import parse_resources
    from harness.results import read_context

    limits = Limits(timeout_s=args.timeout or Limits.timeout_s, max_memory_bytes=args.max_memory)
    if args.cluster is None:
        if args.resources:
            raise UsageError("--resources only applies with --cluster")
        # A resumed run goes on the way it began, unless --no-interleave is given now.
        stored = (read_context(resumed).get("config") or {}) if resumed is not None else {}
        return Mode(isolate=args.isolate, limits=limits,
                    interleave=args.interleave and stored.get("interleave", True) is not False,
                    reference=args.reference or stored.get("reference") or "cpu")
    if not args.isolate:
        raise UsageError("--cluster runs each case in its own worker process on its node; "
                         "drop --no-isolate")
    if args.scenario not in (None, "loop"):
        raise UsageError("--scenario runs on this machine; a cluster run times the loop only "
                         "(drop --cluster or --scenario)")
    if args.resources or resumed is None:
        resources = parse_resources(args.resources)
    else:
        stored = (read_context(resumed).get("config") or {}).get("cluster") or {}
        resources = {str(k): dict(v) for k, v in (stored.get("resources") or {}).items()}
    return Mode(isolate=True, limits=limits, cluster=args.cluster, resources=resources)
