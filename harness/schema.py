"""The row schema: every column a result row has, in order, what each holds, and the check
that a row read from a file is what it claims (:func:`row_problem`)."""

from __future__ import annotations

import json
import math
from typing import Any

#: 2 added the load-scenario columns (``scenario`` … ``peak_qps``); rows of schema 1 load with
#: them empty (a schema-1 row is a timing-loop row). 3 added the generation columns (``ttft_s``
#: … ``decode_peak_fraction``, ``token_samples_s``); older rows load with them empty. 4 added
#: the GPU path's columns (``latency_kind``, ``call_latency_*``, ``throttle_*_s``, the energy
#: uncertainties, ``idle_power_source``) and the profiling pass's (``profiler`` …
#: ``profile_trace``), the ceilings and generation under load (``ttft_bound_s`` …
#: ``tpot_samples_s``) and interleaved speedups (``speedup`` … ``interleaved``).
SCHEMA = 4

#: Every row carries these columns, in this order; units are in the names (SI).
COLUMNS: tuple[str, ...] = (
    "schema", "run_id", "suite", "workload", "case_id", "params", "adapter", "adapter_label",
    "adapter_options", "device", "host", "repetition", "variant", "status", "message", "lost",
    "correct", "output_varies", "n_samples", "loops", "first_call_s", "warmup_s", "warmup_steady",
    "sampling_s",
    "latency_median_s", "latency_ci_low_s", "latency_ci_high_s", "latency_iqr_s",
    "latency_mean_s", "latency_std_s", "latency_min_s", "latency_max_s",
    "latency_p90_s", "latency_p99_s", "p90_low_confidence", "p99_low_confidence",
    "latency_kind", "call_latency_median_s", "call_latency_ci_low_s", "call_latency_ci_high_s",
    "call_latency_p99_s", "speedup", "speedup_ci_low", "speedup_ci_high", "speedup_reference",
    "interleaved",
    "items", "throughput_items_per_s", "flops", "bytes",
    "achieved_flops_per_s", "achieved_bytes_per_s", "arithmetic_intensity",
    "peak_flops_per_s", "peak_bytes_per_s", "peak_fraction", "roofline_bound", "peak_source",
    "attainable_fraction", "peak_flops_ceiling", "peak_bytes_ceiling", "ceiling_source",
    "footprint_bytes",
    "peak_rss_bytes", "peak_rss_source", "peak_device_bytes", "peak_device_reserved_bytes",
    "device_memory_used_bytes", "compile_s",
    "energy_j", "energy_net_j", "idle_power_w", "mean_power_w",
    "energy_per_item_j", "energy_net_per_item_j", "energy_source",
    "sm_clock_start_mhz", "sm_clock_end_mhz", "temperature_start_c", "temperature_end_c",
    "throttle_reasons", "throttle_power_s", "throttle_thermal_s",
    "energy_uncertainty_j", "energy_net_uncertainty_j",
    "scenario", "load_rule", "qps", "achieved_qps", "latency_bound_s", "over_bound_fraction",
    "generator_lag_s", "early_stop_latency_s", "queries", "dropped_queries", "max_batch",
    "mean_batch", "batch_timeout_s", "load_valid", "loadgen_valid", "meets_bound",
    "peak_search", "peak_qps",
    "profiler", "profile_calls", "profile_wall_s", "profile_overhead", "profile_coverage",
    "device_busy_fraction", "profile_trace", "nvml_utilization",
    "ttft_s", "ttft_ci_low_s", "ttft_ci_high_s", "ttft_p90_s", "ttft_p99_s",
    "tpot_s", "tpot_ci_low_s", "tpot_ci_high_s", "tpot_p90_s", "tpot_p99_s",
    "decode_tokens_per_s", "e2e_s", "generate_calls", "token_agreement",
    "prefill_flops", "prefill_bytes", "decode_flops", "decode_bytes",
    "prefill_peak_fraction", "decode_peak_fraction",
    "ttft_bound_s", "tpot_bound_s", "ttft_over_bound_fraction", "tpot_over_bound_fraction",
    "meta", "missing", "started_at", "samples_s", "token_samples_s",
    "ttft_samples_s", "tpot_samples_s",
)
#: Columns holding lists of samples rather than one figure.
SAMPLE_COLUMNS = ("samples_s", "token_samples_s", "ttft_samples_s", "tpot_samples_s")

#: Columns whose values are JSON objects, kept as JSON text in tables so they stay hashable.
JSON_COLUMNS = ("params", "adapter_options", "meta", "missing")

#: What each column holds; every value may also be null (missing). ``text``: a string; ``flag``:
#: true or false; ``count``: a whole number >= 0; ``number``: a finite number; ``object``: a JSON
#: object; ``samples``: a list of numbers. Columns not named here follow their unit suffix.
_KINDS = {
    **dict.fromkeys(("run_id", "suite", "workload", "case_id", "adapter", "adapter_label",
                     "device", "host", "variant", "status", "message", "roofline_bound",
                     "peak_source", "peak_rss_source", "energy_source", "throttle_reasons",
                     "scenario", "load_rule", "peak_search", "started_at", "latency_kind",
                     "ceiling_source", "profiler", "profile_trace", "speedup_reference"),
                    "text"),
    **dict.fromkeys(("lost", "correct", "output_varies", "warmup_steady", "p90_low_confidence",
                     "p99_low_confidence", "load_valid", "loadgen_valid", "meets_bound",
                     "interleaved"),
                    "flag"),
    **dict.fromkeys(("schema", "repetition", "n_samples", "loops", "items", "queries",
                     "dropped_queries", "max_batch", "generate_calls", "profile_calls"),
                    "count"),
    **dict.fromkeys(("flops", "bytes", "arithmetic_intensity", "peak_fraction", "qps",
                     "achieved_qps", "over_bound_fraction", "mean_batch", "peak_qps",
                     "token_agreement", "prefill_flops", "decode_flops",
                     "prefill_peak_fraction", "decode_peak_fraction", "profile_overhead",
                     "profile_coverage", "device_busy_fraction", "attainable_fraction",
                     "peak_flops_ceiling", "peak_bytes_ceiling", "nvml_utilization",
                     "ttft_over_bound_fraction", "tpot_over_bound_fraction", "speedup",
                     "speedup_ci_low", "speedup_ci_high"), "number"),
    **dict.fromkeys(JSON_COLUMNS, "object"),
    #: per query: its latency; under load, its time to first token and per output token
    **dict.fromkeys(("samples_s", "ttft_samples_s", "tpot_samples_s"), "samples"),
    #: per call, the seconds of each output token
    "token_samples_s": "sample_lists",
}
_UNITS = ("_s", "_j", "_w", "_bytes", "_per_s", "_mhz", "_c")
#: the statuses a row can have, and the columns every row must fill.
STATUSES = ("ok", "error", "skipped")
REQUIRED = ("case_id", "adapter", "status")


def column_kind(column: str) -> str:
    """What ``column`` holds (see ``_KINDS``); ``any`` for a column outside :data:`COLUMNS`."""
    if column in _KINDS:
        return _KINDS[column]
    return "number" if column in COLUMNS and column.endswith(_UNITS) else "any"


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _fits(kind: str, value: Any) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "flag":
        return isinstance(value, bool)
    if kind == "number":
        return _finite(value)
    if kind == "count":
        return _finite(value) and value >= 0 and float(value).is_integer()
    if kind == "object":
        return isinstance(value, dict)
    if kind == "samples":
        return isinstance(value, list) and all(v is None or _finite(v) for v in value)
    if kind == "sample_lists":
        return isinstance(value, list) and all(_fits("samples", v) for v in value)
    return True


_EXPECTED = {"text": "a string", "flag": "true or false", "count": "a whole number >= 0",
             "number": "a finite number", "object": "a JSON object",
             "samples": "a list of numbers", "sample_lists": "a list of lists of numbers"}


def row_problem(row: Any) -> str | None:
    """What makes ``row`` not a results row (a missing key, a value of the wrong type), in
    words; None when it is one."""
    if not isinstance(row, dict):
        return "is not a JSON object"
    for column in REQUIRED:
        if row.get(column) is None or row[column] == "":
            return f"has no {column}"
        if not isinstance(row[column], str):
            return f"{column} is not a string: {_shown(row[column])}"
    if row["status"] not in STATUSES:
        return f"status is {_shown(row['status'])}, not one of {', '.join(STATUSES)}"
    for column, value in row.items():
        problem = value_problem(column_kind(column), value)
        if problem is not None:
            return f"{column} {problem}"
    if row.get("schema") == 0:
        return "schema is 0: versions start at 1"
    return None


def value_problem(kind: str, value: Any) -> str | None:
    """``is not <kind>: <value>`` when a non-null ``value`` does not hold what ``kind`` says
    (the kinds of ``_KINDS``, or ``list``); None when it does."""
    fits = isinstance(value, list) if kind == "list" else _fits(kind, value)
    if value is None or fits:
        return None
    return f"is not {_EXPECTED.get(kind, 'a list')}: {_shown(value)}"


def _shown(value: Any) -> str:
    """A value in an error message: JSON, cut short, so a huge value stays one short line."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
