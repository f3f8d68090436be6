"""torch.profiler for the ``cpu`` and ``cuda`` adapters.

On the CPU the table is aten operators by self time, with FLOP counts where ``with_flops`` has
them (``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``add``, ``mul``, ``conv2d``: a zero from it means
"not counted", so it is stored as unknown). Time inside a call that no aten operator accounts for
(the model's Python code, module hooks, dispatch) is ``host``. On CUDA the table is the GPU's
kernels and copies (CUPTI), by time on the device; time inside a call when no kernel runs is
``host`` (launches, Python, synchronisation), and the union of kernel intervals over the wall is
the device's busy fraction.

For a generation task (``phases``) each call is cut into prefill and decode
(:mod:`harness.profiling.phases`) and every operator is attributed per phase.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from harness.profiling import phases as phases_
from harness.profiling.attribution import Attribution, Span, attribute
from harness.profiling.categories import categorize
from harness.profiling.model import (
    CALL,
    NAN,
    NativeProfile,
    OpTime,
    check_windows,
    phase_host_ops,
    run_calls,
    times_of,
    window_events,
)

US = 1e-6
#: Chrome-trace categories of device activity in torch's (Kineto's) traces.
DEVICE_CATS = ("kernel", "gpu_memcpy", "gpu_memset")


def profile(step: Any, synchronize: Any, calls: int, device: str, cuda: bool = False,
            phases: bool = False) -> NativeProfile:
    """Profile ``calls`` calls of ``step`` with torch.profiler (CPU activity; CUDA too when
    ``cuda``) and parse the trace; with ``phases``, ``step`` is a generation task's timed
    variant, whose marks stamp the trace so that prefill and decode are told apart."""
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as torch_profile

    from harness.generation import marking

    def stamp() -> None:
        with record_function(phases_.TOKEN):
            pass

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    listen = marking(stamp) if phases else contextlib.nullcontext()
    with torch_profile(activities=activities, record_shapes=True, with_flops=True) as prof, \
            listen:
        times = run_calls(step, synchronize, calls, record_function)
    # The Chrome trace has no FLOP counts: they are joined from the profiler's events, whose
    # ids are the trace's "External id".
    flops = {event.id: float(event.flops) for event in prof.events() if event.flops}
    with tempfile.TemporaryDirectory(prefix="harness-torch-trace-") as folder:
        path = Path(folder) / "trace.json"
        prof.export_chrome_trace(str(path))
        trace: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for event in trace.get("traceEvents", []):
        args = event.get("args")
        if isinstance(args, dict) and args.get("External id") in flops \
                and event.get("cat") == "cpu_op":
            args["flops"] = flops[args["External id"]]
    trace["harness"] = {**times.facts(), "device": device, "cuda": cuda, "phases": phases}
    return parse(trace)


def parse(trace: dict[str, Any]) -> NativeProfile:
    """The profile a torch Chrome trace (as :func:`profile` stores it) holds."""
    facts = trace["harness"]
    times = times_of(trace)
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X"]
    windows = window_events(events)
    check_windows(windows, len(times.call_s), f"'{CALL}' annotations")
    device = str(facts.get("device", "cpu"))
    cuda = bool(facts.get("cuda"))
    if cuda:
        spans = [Span(e["name"], float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)),
                      f"{e.get('pid')}/{e.get('tid')}")
                 for e in events if e.get("cat") in DEVICE_CATS]
    else:
        spans = [Span(e["name"], float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0)),
                      str(e.get("tid", "")), float((e.get("args") or {}).get("flops") or 0))
                 for e in events if e.get("cat") == "cpu_op"]
    notes: list[str] = []
    parts = {"": windows}
    if facts.get("phases"):
        try:
            parts = phases_.split(windows, phases_.token_marks(events),
                                  launches(events) if cuda else ())
        except ValueError as exc:
            notes.append(f"prefill and decode not told apart: {exc}")
    found = {phase: attribute(spans, part) for phase, part in parts.items()}
    if cuda:
        ops = [OpTime(name, categorize("cuda", name), f.count.get(name, 0), seconds * US,
                      provider=device, phase=phase)
               for phase, f in found.items() for name, seconds in f.time.items()]
        ops += phase_host_ops(found, times, US, "(device idle: launches, Python, "
                              "synchronisation)", "(around the profiler's call annotation)",
                              device)
        return NativeProfile("torch.profiler (CUDA)", len(times.call_s), times.wall_s, ops,
                             trace, device_busy_s=sum(f.busy for f in found.values()) * US,
                             notes=notes)
    ops = [op for phase, f in found.items() for op in _cpu_ops(f, device, phase)]
    ops += phase_host_ops(found, times, US, "(Python and dispatch outside aten operators)",
                          "(around the profiler's call annotation)", device)
    return NativeProfile("torch.profiler", len(times.call_s), times.wall_s, ops, trace,
                         device_missing="the cpu adapter's device is the host processor: "
                                        "profile_coverage says how much of its time the "
                                        "operators account for", notes=notes)


def _cpu_ops(found: Attribution, device: str, phase: str) -> list[OpTime]:
    flops = found.weight
    return [OpTime(name, categorize("torch", name), found.count.get(name, 0), seconds * US,
                   flops=flops.get(name, NAN), provider=device,
                   flops_source="torch with_flops" if name in flops else "", phase=phase)
            for name, seconds in found.time.items()]


def launches(events: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(launched, finished) of each device activity: launched when the host's runtime call
    with the same correlation id started (or, where none is recorded, when it began)."""
    def correlation(event: dict[str, Any]) -> Any:
        return (event.get("args") or {}).get("correlation")

    host = {correlation(e): float(e["ts"]) for e in events
            if e.get("cat") in ("cuda_runtime", "cuda_driver") and correlation(e) is not None}
    return [(host.get(correlation(e), float(e["ts"])), float(e["ts"]) + float(e.get("dur", 0)))
            for e in events if e.get("cat") in DEVICE_CATS]
