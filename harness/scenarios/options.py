"""Scenario settings and the minimum durations and counts each rule asks for.

Three rules decide how long a scenario runs, and every row says which one it followed
(``load_rule``):

- ``harness`` (the default): at least ``--duration`` (10 s) and at least the queries a tail
  figure needs under LoadGen's early-stopping rule (64 for single-stream's p90, 662 for the p99
  of server and multi-stream), capped at 60 s for the closed-loop scenarios. Good figures in
  seconds, but *not* a valid run by LoadGen's rules, and rows never say it is.
- ``quick`` (``--quick`` with a scenario): a one-second smoke test; its tails are flagged as
  low-confidence like any figure from too few samples.
- ``loadgen`` (``--loadgen-minimums``): LoadGen's minimums. Every scenario runs at least
  600 s (``inference_rules.adoc``, the scenario table; ``*.min_duration = 600000`` in
  ``loadgen/mlperf.conf``); offline issues at least 24,576 samples (same table); multi-stream
  at least 662 groups of 8 (``*.MultiStream.min_query_count = 662``,
  ``samples_per_query = 8``). Single-stream's 1024 queries and server's 270,336 are the
  ``min_query_count`` of LoadGen's configuration before early stopping replaced fixed counts
  (``*.SingleStream.min_query_count = 1024``, ``*.Server.min_query_count = 270336`` in the
  v0.5–v1.1 ``mlperf.conf``); we keep them, as the stricter floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Scenario = Literal["single-stream", "offline", "server", "multi-stream"]
Rule = Literal["harness", "quick", "loadgen"]

#: The latency percentile each scenario is judged by (LoadGen's ``target_latency_percentile``).
PERCENTILE: dict[str, float] = {"single-stream": 0.90, "server": 0.99, "multi-stream": 0.99}
#: Generator lag allowed (p99 of how late arrivals were noticed): the larger of 1 ms and this
#: fraction of the latency bound. Latency always counts from the *scheduled* time, so lag cannot
#: hide queueing; it can only add the harness's own lateness to a query's latency, and beyond
#: this tolerance that addition is too large to call the figures the system's own.
LAG_FLOOR_S = 1e-3
LAG_FRACTION = 0.05


class OptionsError(ValueError):
    """A scenario setting is not valid; the message names the flag."""


@dataclass(frozen=True)
class Minimums:
    """How long a scenario runs: both minimums, or until ``max_duration_s`` (None: no cap)."""

    duration_s: float
    queries: int
    max_duration_s: float | None


#: (rule, scenario) → minimums. ``queries`` counts queries (server, single-stream), groups
#: (multi-stream) or samples (offline).
MINIMUMS: dict[tuple[str, str], Minimums] = {
    ("harness", "single-stream"): Minimums(10.0, 64, 60.0),
    ("harness", "server"): Minimums(10.0, 662, None),
    ("harness", "multi-stream"): Minimums(10.0, 662, 60.0),
    ("harness", "offline"): Minimums(10.0, 1024, None),
    ("quick", "single-stream"): Minimums(1.0, 1, 5.0),
    ("quick", "server"): Minimums(1.0, 1, None),
    ("quick", "multi-stream"): Minimums(1.0, 1, 5.0),
    ("quick", "offline"): Minimums(1.0, 1, None),
    ("loadgen", "single-stream"): Minimums(600.0, 1024, None),
    ("loadgen", "server"): Minimums(600.0, 270_336, None),
    ("loadgen", "multi-stream"): Minimums(600.0, 662, None),
    ("loadgen", "offline"): Minimums(600.0, 24_576, None),
}


@dataclass(frozen=True)
class LoadOptions:
    """One scenario's settings (``harness run --scenario ...``). Times in seconds."""

    scenario: Scenario
    #: server: offered queries per second (the Poisson rate); with ``find_peak``, the start.
    qps: float | None = None
    #: queries served together in one call at most (1: batching off).
    max_batch: int = 1
    #: server: how long the oldest queued query may wait for a batch to fill (0: never wait).
    batch_timeout_s: float = 0.0
    #: the latency a query must meet; its fraction over it is reported.
    latency_bound_s: float | None = None
    #: server, generation tasks: the time to first token and the time per output token a query
    #: must meet at p99 (MLPerf's LLM server constraints); the fraction over each is reported.
    ttft_bound_s: float | None = None
    tpot_bound_s: float | None = None
    #: server: queries that may wait; one arriving at a full queue is dropped and counted.
    max_queue: int = 1024
    #: multi-stream: queries issued together as one group (LoadGen's samples_per_query).
    group_size: int = 8
    #: seeds the issue schedule, which is fixed before the run starts.
    seed: int = 0
    rule: Rule = "harness"
    #: overrides the rule's minimum duration.
    duration_s: float | None = None
    #: server: search for the highest QPS whose p99 meets ``latency_bound_s``.
    find_peak: bool = False

    def __post_init__(self) -> None:
        if self.scenario not in PERCENTILE and self.scenario != "offline":
            raise OptionsError(f"--scenario {self.scenario!r} is not a load scenario")
        server = self.scenario == "server"
        if self.qps is not None and not server:
            raise OptionsError("--qps applies only to --scenario server")
        if self.qps is not None and not (math.isfinite(self.qps) and self.qps > 0):
            raise OptionsError(f"--qps must be a positive number, got {self.qps:g}")
        if server and self.qps is None and not self.find_peak:
            raise OptionsError("--scenario server needs --qps (or --find-peak)")
        if self.find_peak and not server:
            raise OptionsError("--find-peak applies only to --scenario server")
        if self.find_peak and not self.bounded:
            raise OptionsError("--find-peak needs --latency-bound-ms (or --ttft-bound-ms, "
                               "--tpot-bound-ms)")
        if isinstance(self.max_batch, bool) or self.max_batch < 1:
            raise OptionsError(f"--max-batch must be at least 1, got {self.max_batch}")
        if self.max_batch > 1 and self.scenario == "single-stream":
            raise OptionsError("--max-batch does not apply to --scenario single-stream "
                               "(one query at a time)")
        if not (math.isfinite(self.batch_timeout_s) and self.batch_timeout_s >= 0):
            raise OptionsError("--batch-timeout-ms must be zero or a positive number")
        if self.batch_timeout_s and not server:
            raise OptionsError("--batch-timeout-ms applies only to --scenario server")
        if self.latency_bound_s is not None:
            if not (math.isfinite(self.latency_bound_s) and self.latency_bound_s > 0):
                raise OptionsError("--latency-bound-ms must be a positive number")
            if self.scenario == "offline":
                raise OptionsError("--latency-bound-ms does not apply to --scenario offline "
                                   "(it reports throughput only)")
        for name, flag in (("ttft_bound_s", "--ttft-bound-ms"),
                           ("tpot_bound_s", "--tpot-bound-ms")):
            bound = getattr(self, name)
            if bound is None:
                continue
            if not (math.isfinite(bound) and bound > 0):
                raise OptionsError(f"{flag} must be a positive number")
            if not server:
                raise OptionsError(f"{flag} applies only to --scenario server (MLPerf bounds time "
                                   "to first token and time per output token there)")
        if self.max_queue < 1:
            raise OptionsError(f"--max-queue must be at least 1, got {self.max_queue}")
        if self.group_size < 1:
            raise OptionsError(f"--group-size must be at least 1, got {self.group_size}")
        if self.duration_s is not None:
            if not (math.isfinite(self.duration_s) and self.duration_s > 0):
                raise OptionsError("--duration must be a positive number of seconds")
            if self.rule == "loadgen" and self.duration_s < 600:
                raise OptionsError("--duration cannot shorten LoadGen's 600 s minimum "
                                   "(--loadgen-minimums)")

    @property
    def bounded(self) -> bool:
        """Whether any bound was given (latency, time to first token, time per output token)."""
        return any(b is not None for b in (self.latency_bound_s, self.ttft_bound_s,
                                           self.tpot_bound_s))

    @property
    def minimums(self) -> Minimums:
        """The rule's minimums, with ``--duration`` in place of its duration when given."""
        base = MINIMUMS[(self.rule, self.scenario)]
        if self.duration_s is None:
            return base
        cap = base.max_duration_s
        return Minimums(self.duration_s, base.queries,
                        None if cap is None else max(cap, 6 * self.duration_s))

    @property
    def percentile(self) -> float | None:
        """The latency percentile this scenario is judged by (None for offline)."""
        return PERCENTILE.get(self.scenario)

    @property
    def lag_tolerance_s(self) -> float:
        """The generator's p99 lateness beyond which a run is flagged invalid: from the tightest
        bound that counts from the scheduled arrival (latency, time to first token)."""
        bounds = [b for b in (self.latency_bound_s, self.ttft_bound_s) if b is not None]
        return max(LAG_FLOOR_S, LAG_FRACTION * min(bounds)) if bounds else LAG_FLOOR_S

    def rule_text(self) -> str:
        """Which rule the run followed, in words, for the row's message."""
        m = self.minimums
        counted = {"offline": "samples", "multi-stream": "groups"}.get(self.scenario, "queries")
        cap = f", at most {m.max_duration_s:g} s" if m.max_duration_s is not None else ""
        name = {"harness": "the harness's rule", "quick": "the --quick smoke test",
                "loadgen": "LoadGen's minimums"}[self.rule]
        return f"{name}: at least {m.duration_s:g} s and {m.queries} {counted}{cap}"
