"""Load-scenario rows (``--scenario``) in reports and in ``harness run``'s output: one table per
case (each scenario run a line), for generation cases a second one of time to first token and
per output token against their bounds, the peak QPS within the latency bound per adapter, and
the latency-versus-load curve (p50 and p99 against offered QPS, per adapter). Plain text here;
``html`` and ``markdown`` lay it out and escape it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.report import canvas, units
from harness.report.canvas import Plot
from harness.report.model import PlainTable
from harness.report.units import grid
from harness.report.warnings import ReportWarning
from harness.scenarios import is_load_row

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Row = dict[str, Any]

HEADER = ("scenario", "adapter", "offered", "achieved", "p50", "p90", "p99", "early stop",
          "over bound", "gen. lag", "queries", "dropped", "batch", "valid", "LoadGen")
TOKEN_HEADER = ("scenario", "adapter", "offered", "TTFT p50", "p90", "p99", "over TTFT bound",
                "TPOT p50", "p90", "p99", "over TPOT bound", "meets bounds")
TOKEN_NOTE = ("Per query: TTFT from its scheduled arrival to its first token (queueing "
              "included); TPOT its call's decode time per further token. Batches are static: a "
              "query arriving during a call waits for the whole call (no continuous batching). "
              "'meets bounds': every bound given met at p99 in a valid run, as MLPerf's LLM "
              "server rules judge TTFT and TPOT.")
PEAK_HEADER = ("case", "adapter", "bound", "peak QPS", "+20% (missed)", "runs")
NOTE = ("Latency counts from each query's scheduled issue time (queueing included). 'early "
        "stop' is LoadGen's early-stopping estimate (p90 single-stream, p99 multi-stream); "
        "'valid' is the run's own rule (generator on schedule, nothing dropped, minimum count "
        "reached); 'LoadGen' whether it would be valid by LoadGen's rules (600 s minimums).")


def split(rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """(timing-loop rows, load-scenario rows)."""
    loop = [row for row in rows if not is_load_row(row)]
    return loop, [row for row in rows if is_load_row(row)]


def _missing(value: Any) -> bool:
    return units.missing(value)


def _flag(value: Any) -> str:
    return units.DASH if value is None or _missing(value) else "yes" if value else "no"


def _qps(value: Any) -> str:
    return units.DASH if _missing(value) else f"{float(value):.4g}"


def _line(row: Row) -> tuple[str, ...]:
    if row.get("status") != "ok":
        message = str(row.get("message") or "")
        return (str(row.get("scenario")), str(row["adapter"]), _qps(row.get("qps")),
                str(row.get("status")), message[:120], *[""] * (len(HEADER) - 5))
    unit = str((row.get("meta") or {}).get("items_unit") or "items")
    achieved = (units.rate(row.get("throughput_items_per_s"), f"{unit}/s")
                if row.get("scenario") == "offline" else _qps(row.get("achieved_qps")))
    lag = row.get("generator_lag_s")
    return (str(row.get("scenario")), str(row["adapter"]), _qps(row.get("qps")), achieved,
            units.seconds(row.get("latency_median_s")), units.seconds(row.get("latency_p90_s")),
            units.seconds(row.get("latency_p99_s")) + ("*" if row.get("p99_low_confidence")
                                                      and not _missing(row.get("latency_p99_s"))
                                                      else ""),
            units.seconds(row.get("early_stop_latency_s")),
            units.percent(row.get("over_bound_fraction")),
            units.seconds(lag), _int(row.get("queries")), _int(row.get("dropped_queries")),
            _batch(row), _flag(row.get("load_valid")), _flag(row.get("loadgen_valid")))


def _token_line(row: Row) -> tuple[str, ...]:
    def figures(name: str) -> tuple[str, ...]:
        p99 = units.seconds(row.get(f"{name}_p99_s"))
        star = "*" if row.get("p99_low_confidence") and p99 != units.DASH else ""
        return (units.seconds(row.get(f"{name}_s")), units.seconds(row.get(f"{name}_p90_s")),
                p99 + star, units.percent(row.get(f"{name}_over_bound_fraction")))

    return (str(row.get("scenario")), str(row["adapter"]), _qps(row.get("qps")),
            *figures("ttft"), *figures("tpot"), _flag(row.get("meets_bound")))


def _int(value: Any) -> str:
    return units.DASH if _missing(value) else str(int(value))


def _batch(row: Row) -> str:
    mean, most = row.get("mean_batch"), row.get("max_batch")
    if mean is None or _missing(mean):
        return units.DASH
    return f"{float(mean):.2g}/{_int(most)}"


def _runs(rows: Sequence[Row]) -> list[Row]:
    """Scenario runs (peak-search result rows have no figures of their own), in QPS order
    within a case and adapter."""
    runs = [row for row in rows if row.get("peak_search") != "result"]
    order = {key: i for i, key in enumerate(dict.fromkeys(
        (row["case_id"], row["adapter"], row.get("scenario")) for row in runs))}
    return sorted(runs, key=lambda row: (order[(row["case_id"], row["adapter"],
                                                row.get("scenario"))],
                                         float(row.get("qps") or 0.0)))


def tables(rows: Sequence[Row]) -> list[PlainTable]:
    """One table per case: every scenario run on every adapter."""
    cases: dict[str, list[Row]] = {}
    for row in _runs(rows):
        cases.setdefault(str(row["case_id"]), []).append(row)
    out = []
    for case, group in cases.items():
        bounds = {units.seconds(row.get("latency_bound_s")) for row in group
                  if not _missing(row.get("latency_bound_s"))}
        title = case + (f"  (latency bound {', '.join(sorted(bounds))})" if bounds else "")
        out.append(PlainTable(title, HEADER, tuple(_line(row) for row in group), NOTE))
        tokens = [row for row in group if row.get("status") == "ok"
                  and not _missing(row.get("ttft_s"))]
        if tokens:
            out.append(PlainTable(f"{case}  time to first token and per output token"
                                  + _bounds(tokens), TOKEN_HEADER,
                                  tuple(_token_line(row) for row in tokens), TOKEN_NOTE))
    return out


def _all_bounds(row: Row) -> str:
    """Every bound a peak search judged by: ``100 ms`` (latency), ``TTFT 1 s, TPOT 50 ms``."""
    parts = [f"{label}{units.seconds(row.get(column))}" for label, column in (
        ("", "latency_bound_s"), ("TTFT ", "ttft_bound_s"), ("TPOT ", "tpot_bound_s"))
        if not _missing(row.get(column))]
    return ", ".join(parts) or units.DASH


def _bounds(rows: Sequence[Row]) -> str:
    """The token bounds of these runs, for a title: ``  (TTFT bound 200 ms, TPOT bound …)``."""
    parts = []
    for name in ("ttft", "tpot"):
        found = {units.seconds(row.get(f"{name}_bound_s")) for row in rows
                 if not _missing(row.get(f"{name}_bound_s"))}
        if found:
            parts.append(f"{name.upper()} bound {', '.join(sorted(found))}")
    return f"  ({', '.join(parts)})" if parts else ""


def peak_table(rows: Sequence[Row]) -> PlainTable | None:
    """The ``--find-peak`` results: per case and adapter, the peak and the +20% run that missed."""
    results = [row for row in rows if row.get("peak_search") == "result"]
    if not results:
        return None
    lines = []
    for row in results:
        meta = row.get("meta") or {}
        above = meta.get("above_peak_qps")
        peak = row.get("peak_qps")
        probes = meta.get("probes") or []
        why = next((str(p.get("why") or "") for p in probes
                    if above is not None and p.get("qps") == above), "")
        lines.append((str(row.get("label") or row["case_id"]), str(row["adapter"]),
                      _all_bounds(row),
                      _qps(peak) if not _missing(peak) else f"none: {row.get('message')}",
                      (_qps(above) + (f" ({why})" if why else "")) if above is not None
                      else units.DASH,
                      str(len(probes))))
    return PlainTable("Peak QPS within the latency bound", PEAK_HEADER, tuple(lines),
                      "The highest offered QPS (on a grid of steps of 20%) whose p99 met the "
                      "bound in a valid server run; the next grid step, 20% higher, missed it.")


def text(rows: Sequence[Row]) -> str:
    """The load rows as fixed-width text (``harness run``'s output)."""
    out: list[str] = []
    for table in tables(rows):
        out.append(table.title)
        out.extend("  " + line for line in grid([table.header, *table.rows]))
        out.append("")
    peaks = peak_table(rows)
    if peaks is not None:
        out.append(peaks.title)
        out.extend("  " + line for line in grid([peaks.header, *peaks.rows]))
        out.append("")
    if any(row.get("p99_low_confidence") and not _missing(row.get("latency_p99_s"))
           for row in rows):
        out.append("* p99 from fewer than 662 queries: low confidence")
    return "\n".join(out).rstrip()


def warnings(rows: Sequence[Row]) -> list[ReportWarning]:
    """Failed or skipped load runs, and runs not valid by their own rule."""
    out = []
    for row in rows:
        adapter, cases = str(row["adapter"]), (str(row["case_id"]),)
        status = row.get("status")
        message = str(row.get("message") or "")
        if status in ("error", "skipped"):
            out.append(ReportWarning(status, adapter, cases, message or status))
        elif row.get("load_valid") is False:
            out.append(ReportWarning("noisy", adapter, cases,
                                     f"{row.get('scenario')} at {_qps(row.get('qps'))} QPS: "
                                     f"{message}"))
    return out


# --- the latency-versus-load curve -----------------------------------------------------------


def curves(rows: Sequence[Row]) -> list[Plot]:
    """Per case: p50 (solid) and p99 (dashed) latency against offered QPS, one colour per
    adapter, the latency bound as a line and each adapter's peak marked."""
    title = "Latency against load"
    runs = [row for row in _runs(rows) if row.get("status") == "ok"
            and row.get("scenario") == "server" and not _missing(row.get("qps"))
            and not _missing(row.get("latency_p99_s"))]
    if not runs:
        return [Plot(title, None, "no successful server run: run --scenario server at several "
                                  "--qps values, or with --find-peak.")]
    colours = canvas.colours(rows)
    cases: dict[str, list[Row]] = {}
    for row in runs:
        cases.setdefault(str(row["case_id"]), []).append(row)
    peaks = {(row["case_id"], row["adapter"]): row.get("peak_qps") for row in rows
             if row.get("peak_search") == "result" and not _missing(row.get("peak_qps"))}
    out = []
    with canvas.style():
        for group in cases.values():
            points = len({float(row["qps"]) for row in group})
            note = ("" if points > 1 else
                    "one offered load only: run more --qps values (or --find-peak) for a curve.")
            out.append(Plot(f"{title}: {canvas.label(group[0], 80)}",
                            canvas.png(curve_figure(group, colours, peaks)), note))
    return out


def curve_figure(group: list[Row], colours: dict[str, str],
                 peaks: dict[tuple[str, str], Any]) -> Figure:
    """One case's latency against offered load. The latency axis spans the data (and the
    bound), not from 0: a floor at 0 flattens a curve of 2–3 ms into a line at the top."""
    from matplotlib.lines import Line2D

    figure, (axis,) = canvas.new_figure(4.2)
    handles = []
    for adapter in dict.fromkeys(str(row["adapter"]) for row in group):
        mine = sorted((row for row in group if row["adapter"] == adapter),
                      key=lambda row: float(row["qps"]))
        qps = [float(row["qps"]) for row in mine]
        colour = colours.get(adapter, "#1f77b4")
        axis.plot(qps, [row["latency_median_s"] for row in mine], marker="o", color=colour)
        axis.plot(qps, [row["latency_p99_s"] for row in mine], marker="s", linestyle="--",
                  color=colour)
        handles.append(Line2D([], [], color=colour, label=canvas.safe(adapter)))
        peak = peaks.get((mine[0]["case_id"], adapter))
        if peak is not None:
            axis.axvline(float(peak), color=colour, linestyle=":", linewidth=1)
            axis.annotate(f"peak {float(peak):.3g} QPS", (float(peak), 0), xycoords=(
                "data", "axes fraction"), xytext=(3, 4), textcoords="offset points",
                fontsize=7, color=colour)
    bounds = {float(row["latency_bound_s"]) for row in group
              if not _missing(row.get("latency_bound_s"))}
    for bound in bounds:
        axis.axhline(bound, color="black", linewidth=1)
        handles.append(Line2D([], [], color="black", label=f"bound {units.seconds(bound)}"))
    handles += [Line2D([], [], color="grey", marker="o", label="p50"),
                Line2D([], [], color="grey", marker="s", linestyle="--", label="p99")]
    values = [float(v) for row in group for v in (row["latency_median_s"], row["latency_p99_s"])
              if not _missing(v)] + list(bounds)
    if values and min(values) > 0 and max(values) / min(values) > canvas.LOG_RATIO:
        axis.set_yscale("log")
    canvas.seconds_axis(axis, "y")
    axis.set_xlabel("offered load (queries per second, Poisson)")
    axis.set_ylabel("latency from scheduled issue")
    axis.legend(handles=handles, loc="upper left", fontsize=8)
    return figure
