"""``harness list``: the registered suites, their workloads and grids, and the adapters."""

from __future__ import annotations

import argparse
import inspect
import re
import shutil
import textwrap
from typing import Any

from harness import plugins
from harness.terminal import printable
from harness.workload import Workload, format_value

#: the end of a sentence: ``.``, ``!`` or ``?`` before a capital, a quote or a bracket, or at
#: the end, and not after an abbreviation ("vs. Python", "e.g. Llama").
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bcf)(?<!\betc)[.!?]"
                           r"(?=\s+[A-Z(\"']|\s*$)")


def add_parser(sub: Any) -> None:
    ls = sub.add_parser("list", help="list suites, workloads or adapters")
    ls.add_argument("what", nargs="?", choices=("suites", "workloads", "adapters"),
                    help="what to list (default: all three)")


def command(args: argparse.Namespace) -> int:
    sections = [args.what] if args.what else ["suites", "workloads", "adapters"]
    out: list[str] = []
    if "suites" in sections:
        out.append("suites:")
        for name, target in plugins.registered("harness.suites").items():
            out.append(f"  {name:<14} {target}")
    if "workloads" in sections:
        out.append("workloads:")
        width = shutil.get_terminal_size((100, 24)).columns
        workloads = [(f"{suite.name}/{wl.name}", wl) for suite in plugins.all_suites()
                     for wl in suite.workloads.values()]
        column = max((len(name) for name, _ in workloads), default=0) + 4
        for name, wl in workloads:
            # A third-party suite's docstring reaches the terminal inert (harness.terminal).
            out.extend(_wrap(printable(summary(wl)), width, f"  {printable(name):<{column - 2}}",
                             " " * column))
            grid = printable(" ".join(f"{k}={','.join(_shown(v) for v in vs)}"
                                      for k, vs in wl.params.items()))
            out.extend(_wrap(grid, width, " " * 6, " " * 8))
    if "adapters" in sections:
        out.append("adapters:")
        for name in plugins.registered("harness.adapters"):
            ok, reason = plugins.adapter_status(name)
            out.append(f"  {name:<12} {'yes' if ok else 'no ':<4} {reason}".rstrip())
    print("\n".join(out))
    return 0


def summary(wl: Workload) -> str:
    """The first sentence of the workload's docstring, whole however many lines it spans
    (``description`` holds its first line only); ``description`` when there is no docstring."""
    doc = inspect.getdoc(wl.build) or ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    end = _SENTENCE_END.search(paragraph)
    return (paragraph[:end.end()] if end else paragraph) or wl.description


def _shown(value: Any) -> str:
    """A grid value as ``harness list`` shows it: the empty string as ``""``, so that
    ``model_path=""`` reads as a value (none given) rather than a cut line."""
    return '""' if value == "" else format_value(value)


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    """``text`` wrapped to ``width`` at spaces only (a value list is never split)."""
    return textwrap.wrap(text, max(width, len(first) + 20), initial_indent=first,
                         subsequent_indent=rest, break_long_words=False,
                         break_on_hyphens=False) or [first.rstrip()]
