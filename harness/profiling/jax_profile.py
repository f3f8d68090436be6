"""The JAX profiler for the ``xla-cpu`` and ``tpu`` adapters.

``jax.profiler.trace(create_perfetto_trace=True)`` writes a Chrome trace in which each executed
XLA instruction (a fusion, a custom call, a copy) is one event with ``args.hlo_op``: on the CPU
on the executor threads of ``/host:CPU``, on a TPU on the device's own process
(``/device:TPU:N``). The ``end: <op>`` markers are not operators, and the Python-side
``PjitFunction`` event is dispatch, not execution: neither counts as an operator. An
instruction's category comes from the compiled program (:func:`describe`): the torch lineage
XLA keeps in its metadata and the opcodes inside it (XLA fuses a softmax into the matmul before
it, so the contents decide; :func:`harness.profiling.categories.categorize_xla`). Time inside a
call when no instruction runs is ``host`` (dispatch, argument handling, waiting for the result).
"""

from __future__ import annotations

import gzip
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from harness.profiling import model
from harness.profiling.attribution import Span, attribute
from harness.profiling.categories import categorize_xla
from harness.profiling.model import NativeProfile, OpTime

US = 1e-6
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_OPCODE = re.compile(r"(?:^|\s)([a-z][a-z0-9\-]*)\(")
_CALLED = re.compile(r"(?:calls|to_apply|body|condition|branch_computations)=\{?([^}\s]*)")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
#: opcodes that say nothing of what an instruction does.
_PLUMBING = {"parameter", "constant", "fusion", "tuple", "get-tuple-element"}


def describe(hlo_text: str) -> dict[str, dict[str, str]]:
    """Per instruction of a compiled HLO module: its torch ``lineage`` (the metadata op names
    of it and of what it calls) and the ``opcodes`` it executes (its own and, through
    ``calls=``, its fused computation's), space-separated."""
    bodies: dict[str, list[str]] = {}
    own: dict[str, tuple[str, list[str], list[str]]] = {}
    current = ""
    for line in hlo_text.splitlines():
        head = _COMPUTATION.match(line)
        if head and "=" not in line.split("(")[0]:
            current = head.group(1)
            bodies.setdefault(current, [])
            continue
        found = _INSTRUCTION.match(line)
        if not found or not current:
            continue
        name, rest = found.groups()
        opcode = _OPCODE.search(rest)
        called = [c.strip().lstrip("%") for group in _CALLED.findall(rest)
                  for c in group.split(",") if c.strip()]
        own[name] = (opcode.group(1) if opcode else "", called, _OP_NAME.findall(rest))
        bodies[current].append(name)

    def contents(name: str, seen: set[str]) -> tuple[list[str], list[str]]:
        opcode, called, lineage = own.get(name, ("", [], []))
        opcodes = [opcode] if opcode and opcode not in _PLUMBING else []
        lineages = list(lineage)
        for computation in called:
            if computation in seen:
                continue
            seen.add(computation)
            for inner in bodies.get(computation, []):
                more_ops, more_lineage = contents(inner, seen)
                opcodes += more_ops
                lineages += more_lineage if not lineage else []
        return opcodes, lineages

    described = {}
    for name in own:
        opcodes, lineage = contents(name, set())
        described[name] = {"lineage": " ".join(dict.fromkeys(lineage)),
                           "opcodes": " ".join(dict.fromkeys(opcodes))}
    return described


def profile(step: Any, synchronize: Any, calls: int, compiled: Any, device: str
            ) -> NativeProfile:
    """Profile ``calls`` calls of ``step`` (running ``compiled``) with ``jax.profiler.trace``."""
    import jax

    with tempfile.TemporaryDirectory(prefix="harness-jax-trace-") as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            times = model.run_calls(step, synchronize, calls, jax.profiler.TraceAnnotation)
        found = sorted(Path(folder).glob("**/perfetto_trace.json.gz"))
        if not found:
            raise RuntimeError("jax.profiler.trace wrote no perfetto_trace.json.gz")
        trace: dict[str, Any] = json.loads(gzip.decompress(found[-1].read_bytes()))
    described = describe(compiled.as_text())
    executed = {str((e.get("args") or {}).get("hlo_op")) for e in trace.get("traceEvents", [])}
    trace["harness"] = {**times.facts(), "device": device,
                        "hlo": {k: v for k, v in described.items() if k in executed}}
    return parse(trace)


def parse(trace: dict[str, Any]) -> NativeProfile:
    """The profile a JAX Chrome trace (as :func:`profile` stores it) holds."""
    facts = trace["harness"]
    times = model.times_of(trace)
    device = str(facts.get("device", ""))
    hlo: dict[str, dict[str, str]] = facts.get("hlo") or {}
    events = trace.get("traceEvents", [])
    processes = {e.get("pid"): str((e.get("args") or {}).get("name", "")) for e in events
                 if e.get("ph") == "M" and e.get("name") == "process_name"}
    devices = {pid for pid, name in processes.items() if name.startswith("/device:")}
    complete = [e for e in events if e.get("ph") == "X"]
    ops = [e for e in complete if (e.get("args") or {}).get("hlo_op")
           and not str(e.get("name", "")).startswith("end: ")
           and (not devices or e.get("pid") in devices)]
    spans = [Span(str(e["args"]["hlo_op"]), float(e["ts"]), float(e["ts"]) + float(e["dur"]),
                  f"{e.get('pid')}/{e.get('tid')}") for e in ops]
    windows = model.window_events(complete)
    model.check_windows(windows, len(times.call_s), f"'{model.CALL}' annotations")
    found = attribute(spans, windows)
    rows = [OpTime(name, categorize_xla(hlo.get(name, {}).get("lineage", ""),
                                        hlo.get(name, {}).get("opcodes", "")),
                   found.count.get(name, 0), seconds * US, provider=device)
            for name, seconds in found.time.items()]
    rows += model.host_ops(found, times, US, "(dispatch and waiting outside XLA operations)",
                     "(around the profiler's call annotation)", device)
    if devices:
        return NativeProfile("jax.profiler", len(times.call_s), times.wall_s, rows, trace,
                             device_busy_s=found.busy * US)
    return NativeProfile("jax.profiler", len(times.call_s), times.wall_s, rows, trace,
                         device_missing="XLA's CPU back end runs on the host processor: "
                                        "profile_coverage says how much of its time the XLA "
                                        "operations account for")
