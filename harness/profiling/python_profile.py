"""cProfile, for host-only Python work (a dict, a B-tree, a user's plain function) and any
adapter without a profiler of its own: functions by self time (``tottime``).

cProfile keeps totals per function, not a timeline, so there is no trace; its own overhead
per Python call inflates call-heavy code, which ``profile_overhead`` shows.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import pstats
import sys
from typing import Any

from harness.profiling.categories import categorize
from harness.profiling.model import CALL, NativeProfile, OpTime, run_calls

#: the profiler's own entries, which are not the case's time.
_OWN = ("<method 'disable' of '_lsprof.Profiler' objects>",
        "<method 'enable' of '_lsprof.Profiler' objects>")


def _modules() -> dict[str, str]:
    """Source file → module name, for naming functions ``module.function``."""
    found = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            found[os.path.abspath(path)] = name
    return found


def function_name(filename: str, function: str, modules: dict[str, str]) -> str:
    """``module.function`` for Python code; cProfile's own text for built-ins."""
    if filename == "~" or not filename:
        return function.strip("{}")
    module = modules.get(os.path.abspath(filename))
    if module is None:
        module = os.path.splitext(os.path.basename(filename))[0]
    return f"{module}.{function}"


def profile(step: Any, synchronize: Any, calls: int, device: str = "host") -> NativeProfile:
    """Profile ``calls`` calls of ``step`` with cProfile (the warm-up calls unprofiled)."""
    profiler = cProfile.Profile()
    state = {"on": False}

    def profiled() -> Any:
        # Only the counted calls: run_calls's warm-up calls go unprofiled.
        return profiler.runcall(step) if state["on"] else step()

    def annotate(name: str) -> Any:
        state["on"] = name == CALL
        return contextlib.nullcontext()

    times = run_calls(profiled, synchronize, calls, annotate)
    return from_stats(pstats.Stats(profiler).stats, len(times.call_s),  # type: ignore[attr-defined]
                      times.wall_s, device)


def from_stats(stats: dict[tuple[str, int, str], tuple[Any, ...]], calls: int, wall_s: float,
               device: str = "host") -> NativeProfile:
    """The profile of pstats' raw table: (file, line, function) → (primitive calls, calls,
    tottime, cumtime, callers)."""
    modules = _modules()
    totals: dict[str, list[float]] = {}
    for (filename, _line, function), (_primitive, count, tottime, *_rest) in stats.items():
        if function in _OWN or function == "runcall":
            continue
        name = function_name(filename, function, modules)
        entry = totals.setdefault(name, [0.0, 0.0])
        entry[0] += count
        entry[1] += tottime
    ops = [OpTime(name, categorize("python", name), int(count), seconds, provider=device)
           for name, (count, seconds) in totals.items() if seconds > 0]
    return NativeProfile("cProfile", calls, wall_s, ops,
                         trace_missing="cProfile keeps totals per function, not a timeline: "
                                       "there is no trace",
                         device_missing="host-only Python work runs on no device")
