"""Interleaved runs: a case's sides (its adapters, or two revisions of the code) measured in
alternating rounds, so that the machine's drift hits every side alike.

Each side is a persistent worker (:mod:`harness.execution.channel`) that runs the case as a
plain run does (build, prepare, first call, loop calibration, warm-up, checks, collectors) with
one difference: it takes each timing sample only when told (:class:`SteeredTimer`). The parent
opens the sides one at a time (each warms up alone), then asks them for one sample each in
rounds, A B C C B A A B C ..., so exactly one side is timing at any moment and neither runs
first every time. Sample *r* of every side comes from round *r*: moments apart.

With several adapters (``harness run -a cpu -a onnxruntime``, the default with two or more
adapters; ``--no-interleave`` opts out), each adapter's row is its own plain row, and the rows
also carry ``speedup`` (reference's time / this adapter's time) with a 95% interval. Rounds
cancel drift, but not what differs between two processes (where each one's data landed in
memory): on this project's 2-core test machine, two identical workers read up to ±10% apart,
steadily, for as long as they live. So a case runs in :data:`GENERATIONS` generations of fresh
workers, each with an even share of the sampling time; the speedup is the median of the
generations' median per-round ratios, and its interval is the distribution-free 95% interval
of that median over the generations (:func:`harness.stats.median_ci`). ``harness ab
--base-ref`` uses the same rounds for the two revisions of a case, with repetitions in place of
generations (:mod:`harness.execution.revisions`).

The order in which sides are built and warmed up, and which goes first in round 0, is drawn
afresh for every case and repetition (seeded): an effect of going first or last stays spread
across repetitions instead of always favouring the same side.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from harness.execution.channel import Channel, Port, open_worker
from harness.execution.hooks import Hooks
from harness.execution.local import Learnt, learn_peaks, run_case
from harness.execution.loop import NAN
from harness.execution.rows import error_row, is_empty, join, pending, write
from harness.execution.targets import case_payload, case_target
from harness.execution.workers import Limits, context, preload_for
from harness.roofline import Ceiling, Peaks, row_figures
from harness.stats import SUMMARY_COLUMNS, median_ci, summarize, summary_columns
from harness.timer import CHECKED_SAMPLES, PRECISION_EVERY, Timer

if TYPE_CHECKING:
    from harness.config import RunConfig, TimingOptions
    from harness.execution.rows import RowKey
    from harness.plan import AdapterSpec, Plan
    from harness.results import RunWriter
    from harness.workload import Case

STEERED_TARGET = "harness.execution.interleave:steered_target"
NS = 1e-9
#: seed of the drawn build, warm-up and first-round orders: they differ between cases,
#: repetitions and generations, and a run repeated draws the same ones.
ORDER_SEED = 16
#: fresh sets of workers per case: the fewest whose medians give a distribution-free 95%
#: interval (:func:`harness.stats.median_ci_min_samples`), see :func:`speedup`.
GENERATIONS = 6
#: fewest rounds per generation, whatever the minimums split evenly give.
MIN_ROUNDS = 5


# --- the worker side -----------------------------------------------------------------------------


class SteeredTimer(Timer):
    """A timer that, once warmed up, says it is ready and then takes one sample per ``sample``
    message until told to ``stop`` (its loop count and the checked outputs as :class:`Timer`)."""

    def __init__(self, options: TimingOptions, port: Port):
        super().__init__(options)
        self.port = port

    def sample(self, step: Callable[[], Any], sync: Callable[[], None],
               loops: int) -> tuple[list[int], int, bool]:
        self.port.send({"ready": loops})
        samples: list[int] = []
        self.sampled_outputs = []
        while True:
            message = self.port.recv()
            if message.get("op") != "sample":
                capped = bool(message.get("capped"))
                break
            samples.append(self._sample_ns(step, sync, loops))
            if len(samples) in CHECKED_SAMPLES:
                self.sampled_outputs.append((len(samples) - 1, self.keep(self.last_output)))
            self.port.send({"ns": samples[-1]})
        if samples and len(samples) not in CHECKED_SAMPLES:
            self.sampled_outputs.append((len(samples) - 1, self.keep(self.last_output)))
        # Time spent sampling this side; the wall clock also holds the other sides' turns.
        return samples, sum(samples), capped


def steered_target(payload: dict[str, Any], port: Port) -> dict[str, Any]:
    """A persistent worker's side of an interleaved case: :func:`~harness.execution.loop.
    case_target` with a :class:`SteeredTimer`. Its result is ``case_target``'s."""
    from harness.config import TimingOptions

    result: dict[str, Any] = case_target(payload, SteeredTimer(TimingOptions(**payload["timing"]),
                                                               port))
    return result


# --- the parent side: rounds ---------------------------------------------------------------------


@dataclass
class Turn:
    """One side of an interleaved case, as the parent sees it."""

    label: str
    channel: Channel | None = None
    loops: int = 0
    #: nanoseconds of the ``loops`` calls of each sample, one per round while the side lasted.
    samples_ns: list[int] = field(default_factory=list)
    #: the worker's result once it ended (``{"row": ...}`` or ``{"error": ...}``).
    result: dict[str, Any] | None = None

    @property
    def sampling(self) -> bool:
        return self.result is None

    def per_call_s(self) -> list[float]:
        return [ns * NS / self.loops for ns in self.samples_ns]


def draw_order(n: int, *key: object) -> list[int]:
    """A seeded shuffle of ``range(n)``, different for every ``key`` (case, repetition)."""
    order = list(range(n))
    random.Random(":".join(map(str, (ORDER_SEED, *key)))).shuffle(order)
    return order


def take_turns(openers: Sequence[Callable[[], Channel]], labels: Sequence[str],
               timing: TimingOptions, order: Sequence[int]) -> list[Turn]:
    """Open each side in ``order``, one at a time, until it is warmed up (or has ended); then
    rounds of one sample per side, the order reversed every round, until each side has had the
    minimum time and count it would get alone (or ``n × max_time`` passed); then stop each side
    in turn and collect its result. The turns come back in the openers' order."""
    turns = [Turn(label) for label in labels]
    for i in order:
        turn = turns[i]
        try:
            turn.channel = openers[i]()
        except OSError as exc:  # no process could start: this side's row says so
            turn.result = {"error": f"the worker could not start: {exc}"}
            continue
        _await_ready(turn)
    live = [turns[i] for i in order]
    capped = _rounds(live, timing)
    for turn in live:
        if turn.sampling and turn.channel is not None:
            turn.channel.send({"op": "stop", "capped": capped})
            turn.result = turn.channel.recv()
    return turns


def _await_ready(turn: Turn) -> None:
    assert turn.channel is not None
    reply = turn.channel.recv()
    if "ready" in reply:
        turn.loops = int(reply["ready"])
    else:  # skipped, failed before timing, or died: its result is final
        turn.result = reply


def _rounds(turns: list[Turn], timing: TimingOptions) -> bool:
    """Sample the live turns in alternating rounds; whether the time cap ended them."""
    start = time.perf_counter()
    cap = max(1, len(turns)) * timing.max_time_s
    rounds = 0
    while any(t.sampling for t in turns):
        for turn in (turns if rounds % 2 == 0 else reversed(turns)):
            if not turn.sampling or turn.channel is None:
                continue
            reply = turn.channel.request({"op": "sample"})
            if "ns" in reply:
                turn.samples_ns.append(int(reply["ns"]))
            else:
                turn.result = reply
        rounds += 1
        live = [t for t in turns if t.sampling]
        if rounds >= timing.min_samples and all(_enough(t, timing) for t in live):
            return False
        if time.perf_counter() - start >= cap:
            return True
    return False


def _enough(turn: Turn, timing: TimingOptions) -> bool:
    """Whether a side has what it would get alone: the minimum sampling time, or with a
    precision target, a median whose 95% interval is within ±precision."""
    if timing.precision is None:
        return sum(turn.samples_ns) * NS >= timing.min_time_s
    if len(turn.samples_ns) % PRECISION_EVERY:
        return False
    low, high = median_ci(turn.samples_ns)
    median = statistics.median(turn.samples_ns)
    return bool(median > 0 and max(median - low, high - median) <= timing.precision * median)


def speedup(reference: Sequence[Turn], other: Sequence[Turn]) -> tuple[float, float, float, str]:
    """The speedup of ``other`` over ``reference`` from their generations' rounds: the median
    over generations of each generation's median per-round ratio (reference time / other
    time), its distribution-free 95% interval over the generations, and why the figures are
    empty when they are.

    Rounds cancel drift within a generation; what differs between two processes (where their
    data landed in memory) does not cancel, and moves one generation's ratio by several percent
    on a busy machine. An interval over rounds alone would exclude the truth; the generations,
    each a fresh set of workers, sample that spread."""
    medians = []
    for ref, mine in zip(reference, other, strict=True):
        n = min(len(ref.samples_ns), len(mine.samples_ns))
        if n:
            medians.append(statistics.median(
                r / o for r, o in zip(ref.per_call_s()[:n], mine.per_call_s()[:n], strict=True)))
    if not medians:
        return NAN, NAN, NAN, "no rounds with samples of both this row and the reference"
    low, high = median_ci(medians)
    reason = "" if low == low else (f"{len(medians)} generations are too few for a 95% "
                                    "interval")
    return statistics.median(medians), low, high, reason


def _ceiling(row: dict[str, Any]) -> Ceiling:
    """The ceiling a generation's row was held against, rebuilt from its columns (the merged
    row's fractions change with its merged median)."""
    def known(value: Any) -> float | None:
        return value if isinstance(value, float) and math.isfinite(value) else None

    why = str((row.get("missing") or {}).get("peak_fraction") or "no ceiling is known")
    return Ceiling(known(row.get("peak_flops_ceiling")), why,
                   known(row.get("peak_bytes_ceiling")), why)


def merge_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One adapter's row of a case from its generations' rows: the first generation's (its
    first call was the cold one; it alone ran the collectors), with the timing figures over
    every generation's samples. A generation that failed makes the row its failure."""
    for g, row in enumerate(rows):
        if row.get("status") != "ok":
            return {**row, "message": join(row.get("message", ""),
                                           f"in worker generation {g + 1} of {len(rows)}")}
    merged = dict(rows[0])
    missing = dict(merged.get("missing") or {})
    samples = [float(x) for row in rows for x in row.get("samples_s") or []]
    values, summary_missing = summary_columns(summarize(samples, items=merged.get("items") or 1))
    merged.update(values, samples_s=samples,
                  sampling_s=sum(row.get("sampling_s") or 0.0 for row in rows),
                  warmup_s=sum(row.get("warmup_s") or 0.0 for row in rows),
                  warmup_steady=all(row.get("warmup_steady") for row in rows))
    for column in SUMMARY_COLUMNS.values():
        missing.pop(column, None)
    missing.update(summary_missing)
    failed = next((row for row in rows if row.get("correct") is False), None)
    if failed is not None:
        merged["correct"], merged["message"] = False, failed.get("message", "")
    peak = merged.get("peak_flops_per_s")
    peaks = (Peaks(peak, merged["peak_bytes_per_s"], str(merged.get("peak_source")))
             if isinstance(peak, float) and math.isfinite(peak) else None)
    flops, nbytes = merged.get("flops"), merged.get("bytes")
    roofline, roofline_missing = row_figures(
        flops if isinstance(flops, float) and math.isfinite(flops) else None,
        nbytes if isinstance(nbytes, float) and math.isfinite(nbytes) else None,
        merged["latency_median_s"], peaks, missing.get("peak_fraction", ""), _ceiling(rows[0]))
    merged.update(roofline, ceiling_source=rows[0].get("ceiling_source"))
    missing.update(roofline_missing)
    merged["missing"] = {k: v for k, v in missing.items() if is_empty(merged.get(k))}
    merged.setdefault("meta", {})["generations"] = len(rows)
    return merged


# --- interleaved backends ------------------------------------------------------------------------


def reference_index(specs: Sequence[AdapterSpec], reference: str | None) -> int:
    """Which spec is the speedups' reference: the one labelled ``reference``, else the first
    named so, else the first."""
    labels, names = [s.label for s in specs], [s.name for s in specs]
    for keys in (labels, names):
        if reference in keys:
            return keys.index(reference)
    return 0


def run_interleaved(config: RunConfig, plan: Plan, writer: RunWriter, limits: Limits,
                    hooks: Hooks | None = None, done: set[RowKey] | None = None,
                    reference: str | None = None) -> list[dict[str, Any]]:
    """Every pending case of ``plan`` on all its pending adapters, interleaved; a case left
    with one adapter to run runs as in a plain isolated run. Rows are written as they come."""
    hooks = hooks or Hooks()
    context(preload_for(plan))
    by_case: dict[str, list[tuple[int, AdapterSpec]]] = {}
    cases: dict[str, Case] = {}
    for spec, todo in pending(plan, done or set(), config.repetition):
        for index, case in todo:
            by_case.setdefault(case.id, []).append((index, spec))
            cases[case.id] = case
    learnt = {spec.label: Learnt() for spec in plan.adapters}
    rows: list[dict[str, Any]] = []
    for case_id, entries in by_case.items():
        case = cases[case_id]
        for index, spec in entries:
            hooks.started(case, spec, index, len(plan))
        got = _one_case(config, plan, case, [s for _, s in entries], limits, learnt, reference)
        for (index, _), row in zip(entries, got, strict=True):
            write(writer, row)
            rows.append(row)
            hooks.arrived(row, index, len(plan))
    return rows


def _one_case(config: RunConfig, plan: Plan, case: Case, specs: list[AdapterSpec],
              limits: Limits, learnt: dict[str, Learnt],
              reference: str | None) -> list[dict[str, Any]]:
    peaks = {label: known.peaks for label, known in learnt.items()}
    payloads = [case_payload(config, plan, spec, case, limits.max_memory_bytes) for spec in specs]
    if len(specs) == 1:
        result = run_case(payloads[0], limits, learnt[specs[0].label])
        return [result.get("row") or error_row(case, specs[0], config.repetition,
                                               result.get("error", "no result"))]
    for spec, payload in zip(specs, payloads, strict=True):
        learn_peaks(payload, limits, peaks[spec.label])
    timing = generation_timing(config.timing)
    # rows[g][i], turns[g][i]: generation g's row and samples of adapter i.
    rows: list[list[dict[str, Any]]] = []
    turns: list[list[Turn]] = []
    for g in range(GENERATIONS):
        collect = g == 0 and config.collect
        openers = [_opener(p, peaks[s.label], limits, collect=collect,
                           profile=g == 0 and config.profile, timing=timing)
                   for s, p in zip(specs, payloads, strict=True)]
        turns.append(take_turns(openers, [s.label for s in specs], timing,
                                draw_order(len(specs), case.id, config.repetition, g)))
        rows.append([result_row(turn, case, spec, config.repetition, peaks[spec.label])
                     for turn, spec in zip(turns[-1], specs, strict=True)])
    merged = [merge_rows([r[i] for r in rows]) for i in range(len(specs))]
    ref = reference_index(specs, reference)
    for i, row in enumerate(merged):
        row.update({"interleaved": True, "speedup_reference": specs[ref].label})
        if i == ref:
            values: tuple[float, float, float, str] = (
                NAN, NAN, NAN, "this row is the reference of the speedups")
        elif merged[ref].get("status") != "ok":
            values = (NAN, NAN, NAN, f"the reference adapter ({specs[ref].label}) has no "
                                     f"timing for this case: {merged[ref].get('status')}")
        elif row.get("status") != "ok":
            values = (NAN, NAN, NAN, f"this row has no timing: {row.get('status')}")
        else:
            values = speedup([t[ref] for t in turns], [t[i] for t in turns])
        row["speedup"], row["speedup_ci_low"], row["speedup_ci_high"], reason = values
        if reason:
            row.setdefault("missing", {}).update(
                dict.fromkeys(("speedup", "speedup_ci_low", "speedup_ci_high"), reason))
    return merged


def _opener(payload: dict[str, Any], peaks: dict[str, Any], limits: Limits, *, collect: bool,
            profile: bool, timing: TimingOptions) -> Callable[[], Channel]:
    # The collectors' pass and the profile run in the first generation only: the merged row
    # takes them from there.
    return lambda: open_worker(STEERED_TARGET, {
        **payload, "peaks": peaks, "collect": collect, "profile": profile,
        "timing": asdict(timing), "sent_at": time.time()}, limits)


def generation_timing(timing: TimingOptions) -> TimingOptions:
    """One generation's share of the sampling: the case's minimum time, count and cap split
    evenly, so that the row holds about what a plain run's does."""
    return replace(timing, min_time_s=timing.min_time_s / GENERATIONS,
                   max_time_s=timing.max_time_s / GENERATIONS,
                   min_samples=max(MIN_ROUNDS, math.ceil(timing.min_samples / GENERATIONS)))


def result_row(turn: Turn, case: Case, spec: AdapterSpec, repetition: int,
               peaks: dict[str, Any]) -> dict[str, Any]:
    """The row a side's worker returned, or an error row saying why there is none."""
    result = turn.result or {}
    if "row" in result:
        peaks.update(result.get("peaks", {}))
        row: dict[str, Any] = result["row"]
        return row
    return error_row(case, spec, repetition, str(result.get("error", "no result")))

