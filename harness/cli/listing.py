"""``harness list``: the registered suites, their workloads and grids, and the adapters."""

from __future__ import annotations

import argparse
from typing import Any

from harness import plugins
from harness.workload import format_value


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
