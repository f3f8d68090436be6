"""The ``harness`` command: one module per subcommand, registered here explicitly.

Each command module has ``add_parser(subparsers)`` and ``command(args) -> exit status``; the
flags several commands share live in :mod:`harness.cli.common`. The command line parses and
prints: how cases execute is decided in :mod:`harness.execution`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from harness.cli import ab, baseline, compare, export, history, importing, listing, report, run
from harness.cli.common import (
    EXIT_USAGE,
    Parser,
    Terminated,
    UsageError,
    interrupted_status,
    join_dash_values,
    sigterm_as_interrupt,
)

__all__ = ["COMMANDS", "EXIT_USAGE", "UsageError", "build_parser", "main"]

#: subcommand → its module's ``command``, in the order ``harness --help`` lists them.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": listing.command, "run": run.command, "report": report.command,
    "compare": compare.command, "ab": ab.command, "baseline": baseline.command,
    "import": importing.command, "history": history.command, "export": export.command,
}
_MODULES = (listing, run, report, compare, ab, baseline, importing, history, export)


def build_parser() -> argparse.ArgumentParser:
    """The ``harness`` parser with every subcommand."""
    parser = Parser(prog="harness", description="Benchmark and profile ML inference.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser,
                                metavar="{" + ",".join(COMMANDS) + "}")
    for module in _MODULES:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``harness`` console script; returns the exit status."""
    import warnings

    from harness.config import ConfigError
    from harness.execution.cluster import ClusterError
    from harness.plan import PlanError
    from harness.plugins import PluginError
    from harness.results import ResultsError
    from harness.terminal import printable

    # Warnings (a torn last row, say) are one line each, like errors; both may quote a case or
    # a results file, so control characters are escaped.
    warnings.showwarning = lambda message, *_args, **_kw: print(
        f"harness: warning: {printable(message)}", file=sys.stderr)
    parser = build_parser()
    try:
        args = parser.parse_args(
            join_dash_values(list(sys.argv[1:] if argv is None else argv)))
        with sigterm_as_interrupt():
            return COMMANDS[args.command](args)
    except KeyboardInterrupt as exc:  # `harness run` says itself where its rows are
        print(f"harness: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}",
              file=sys.stderr)
        return interrupted_status(exc)
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
    except OSError as exc:  # not foreseen where it happened: still one line, naming the file
        print(f"harness: error: {exc.filename or 'harness'}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
