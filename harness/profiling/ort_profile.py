"""ONNX Runtime's session profiling for the ``onnxruntime`` and ``fpga`` adapters.

A second session of the same model with ``enable_profiling`` (the timed session is never
profiled) runs the calls; ``end_profiling`` returns its Chrome-format JSON: per run a
``model_run`` event, and per node a ``<node>_kernel_time`` event with ``args.op_name`` (the op
type) and ``args.provider``. Operators are op types per provider. The first runs are warm-up
(the first MatMul of a fresh session took 139 µs against 15–25 µs later) and are left out.

Two shares of a call are the runtime's own, both measured: inside ``model_run`` but in no node
(the executor between kernels), and inside ``session.run`` but outside ``model_run`` (the Python
binding: feeding inputs, building output arrays). On a small model they are a large part of the
call, and that is the truth of it: they are ``host``, shown, not dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.profiling.attribution import Span, attribute, merge
from harness.profiling.categories import categorize
from harness.profiling.model import (
    NAN,
    WARMUP_CALLS,
    NativeProfile,
    OpTime,
    check_windows,
    host_ops,
    run_calls,
    times_of,
)

US = 1e-6
CPU_PROVIDER = "CPUExecutionProvider"


def matmul_flops(op_type: str, args: dict[str, Any]) -> float:
    """2·M·N·K of a MatMul, FusedMatMul or Gemm node from its recorded shapes; NaN for other
    ops or shapes that do not say (K is the dimension of the first input's last two that is
    not the output's M, whichever way the input is transposed)."""
    if op_type not in ("MatMul", "FusedMatMul", "Gemm"):
        return NAN
    try:
        first = next(iter(args["input_type_shape"][0].values()))
        out = next(iter(args["output_type_shape"][0].values()))
        if len(first) < 2 or len(out) < 2:
            return NAN
        k = first[-1] if first[-2] == out[-2] else first[-2]
        size = 1
        for dim in out:
            size *= int(dim)
        return 2.0 * size * int(k)
    except (KeyError, IndexError, StopIteration, TypeError, ValueError, AttributeError):
        return NAN


def profile(session_factory: Any, feeds: dict[str, Any], calls: int, device: str,
            provider: str) -> NativeProfile:
    """Profile ``calls`` runs of a fresh profiling session (``session_factory()``, built with
    ``enable_profiling``) on ``feeds``."""
    session = session_factory()
    run = session.run

    def step() -> Any:
        return run(None, feeds)

    times = run_calls(step, lambda: None, calls)
    path = Path(session.end_profiling())
    try:
        events = json.loads(path.read_text(encoding="utf-8"))
    finally:
        path.unlink(missing_ok=True)
    trace = {"traceEvents": events if isinstance(events, list) else [],
             "displayTimeUnit": "ms",
             "harness": {**times.facts(), "device": device, "provider": provider,
                         "warmup_runs": WARMUP_CALLS}}
    return parse(trace)


def parse(trace: dict[str, Any]) -> NativeProfile:
    """The profile an ONNX Runtime trace (as :func:`profile` stores it) holds."""
    facts = trace["harness"]
    times = times_of(trace)
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X"]
    runs = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events
                  if e.get("cat") == "Session" and e.get("name") == "model_run")
    windows = runs[int(facts.get("warmup_runs", 0)):]
    check_windows(windows, len(times.call_s), "model_run events after the warm-up runs")
    nodes = [e for e in events if e.get("cat") == "Node"
             and str(e.get("name", "")).endswith("_kernel_time")]
    spans = [Span(f"{e['args'].get('op_name', e['name'])}\t{e['args'].get('provider', '')}",
                  float(e["ts"]), float(e["ts"]) + float(e["dur"]), str(e.get("tid", "")),
                  matmul_flops(str(e["args"].get("op_name")), e["args"]))
             for e in nodes]
    found = attribute(spans, windows)
    ops = []
    for key, seconds in found.time.items():
        op_type, provider = key.split("\t", 1)
        flops = found.weight.get(key, NAN)
        ops.append(OpTime(op_type, categorize("onnxruntime", op_type), found.count.get(key, 0),
                          seconds * US, flops=flops,
                          flops_source="analytic" if flops == flops else "",
                          provider=provider))
    ops += host_ops(found, times, US, "(ONNX Runtime between nodes, inside model_run)",
                    "(session.run outside model_run: Python binding, inputs and outputs)",
                    CPU_PROVIDER)
    provider = str(facts.get("provider", CPU_PROVIDER))
    if provider == CPU_PROVIDER:
        return NativeProfile("onnxruntime", len(times.call_s), times.wall_s, ops, trace,
                             device_missing="the CPU provider runs on the host processor: "
                                            "profile_coverage says how much of its time the "
                                            "nodes account for")
    # Busy: the union of the provider's own nodes; CPU fallback nodes are not the device.
    busy = merge((s.start, s.end) for s in spans if not s.key.endswith("\t" + CPU_PROVIDER)
                 and any(a <= s.start < b for a, b in windows))
    return NativeProfile("onnxruntime", len(times.call_s), times.wall_s, ops, trace,
                         device_busy_s=sum(b - a for a, b in busy) * US)
