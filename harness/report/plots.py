"""The report's charts, drawn with matplotlib's Agg canvas; each function returns ``Plot``s.

Every chart takes result rows (dicts as ``harness.report.build`` prepares them: NaN already None,
JSON columns decoded, a short ``label`` per case) and returns PNG bytes, or no image and a note
that says why, so the page never shows a blank chart. The drawing surface they share (size,
style, colours, PNG encoding) is ``canvas``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from harness.report import canvas, labels, units
from harness.report.canvas import Plot
from harness.report.summary import ratio
from harness.report.summary import speedup as measured_speedup

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Row = dict[str, Any]

#: Boxes or bars per chart: beyond this a chart is split, so each stays readable and bounded.
MAX_ITEMS = 32
#: Series per trend chart: more lines than this cannot be told apart by colour.
MAX_SERIES = 8
MARKERS = "osD^vP*Xh<>"
#: The colour of a median's confidence interval over its box: apart from the box's black
#: whiskers and from every adapter's colour.
INTERVAL = "#7a0019"
#: Roofline points named beside themselves when there are at most this many.
MAX_LABELLED = 12


@dataclass(frozen=True)
class TrendPoint:
    """One run's median latency for one case on one adapter (median over its repetitions)."""

    label: str
    adapter: str
    workload: str
    started: datetime
    median_s: float


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> bool:
    return _finite(value) and value > 0


def _ok(rows: Sequence[Row]) -> list[Row]:
    return [row for row in rows if row.get("status") == "ok"]


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [items]


def _scale(axis: Axes, values: Sequence[float], which: str = "x") -> None:
    """Log scale where the values span more than canvas.LOG_RATIO, and unit-aware tick labels."""
    from matplotlib.ticker import NullFormatter

    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > canvas.LOG_RATIO:
        (axis.set_xscale if which == "x" else axis.set_yscale)("log")
        # Minor ticks unlabelled: matplotlib's default labels them as 3×10⁰ on short ranges.
        (axis.xaxis if which == "x" else axis.yaxis).set_minor_formatter(NullFormatter())


def _plain_log(axis: Any, unit: str, fmt: Any = None) -> None:
    """Log-axis ticks as plain numbers (``0.1``, ``100 GFLOP/s``) instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    label = fmt or (lambda v, u: f"{ratio(v)}{u}")
    axis.set_major_formatter(FuncFormatter(lambda v, _: label(v, unit)))
    axis.set_minor_formatter(NullFormatter())


def _legend(axis: Axes, colours: dict[str, str], used: Sequence[str]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[name], label=canvas.safe(name)) for name in dict.fromkeys(used)]
    axis.legend(handles=handles, loc="best", fontsize=8)


def _case_groups(rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    """Rows grouped by case label (adapters side by side), cases in first-seen order."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(canvas.safe(canvas.label(row)), []).append(row)
    return list(groups.items())


def _bounded(groups: list[tuple[str, list[Row]]]) -> list[list[tuple[str, list[Row]]]]:
    """Split case groups so that no chart holds more than MAX_ITEMS boxes or bars."""
    pages: list[list[tuple[str, list[Row]]]] = [[]]
    count = 0
    for group in groups:
        if pages[-1] and count + len(group[1]) > MAX_ITEMS:
            pages.append([])
            count = 0
        pages[-1].append(group)
        count += len(group[1])
    return pages


def _positions(groups: list[tuple[str, list[Row]]]) -> tuple[list[float], list[float]]:
    """Y positions: one slot per row, a gap between cases; and each case's centre for its label."""
    slots, centres, y = [], [], 0.0
    for _, members in groups:
        start = y
        for _ in members:
            slots.append(y)
            y += 1.0
        centres.append((start + y - 1) / 2)
        y += 0.6
    return slots, centres


def _height(members: Sequence[Row], groups: Sequence[Any]) -> float:
    """Inches for a chart of horizontal boxes or bars: a fixed frame plus a slot per row."""
    return max(2.4, 1.2 + 0.22 * len(members) + 0.15 * len(groups))


def _part(title: str, index: int, total: int) -> str:
    return f"{title} ({index + 1}/{total})" if total > 1 else title


def latency_distributions(rows: Sequence[Row]) -> list[Plot]:
    """Per workload: a box per case and adapter over the raw per-call samples (``samples_s``),
    with the median's 95% confidence interval drawn over it."""
    title = "Latency distributions"
    with_samples = [row for row in _ok(rows) if [s for s in row.get("samples_s") or []
                                                 if _positive(s)]]
    if not with_samples:
        return [Plot(title, None, "no result holds raw samples (samples_s).")]
    colours = canvas.colours(rows)
    workloads: dict[str, list[Row]] = {}
    for row in with_samples:
        workloads.setdefault(f"{row.get('suite')}/{row.get('workload')}", []).append(row)
    plots = []
    with canvas.style():
        for workload, members in workloads.items():
            pages = _bounded(_case_groups(members))
            for index, page in enumerate(pages):
                plots.append(Plot(_part(f"{title}: {workload}", index, len(pages)),
                                  canvas.png(latency_figure(page, colours)),
                                  _interval_note(page)))
    return plots


def _median_interval(row: Row) -> tuple[float, float, float] | None:
    """(low, median, high) of the row's 95% CI of the median, where it has one."""
    keys = ("latency_ci_low_s", "latency_median_s", "latency_ci_high_s")
    if not all(_positive(row.get(k)) for k in keys):
        return None
    low, median, high = (float(row[k]) for k in keys)
    return (low, median, high) if low <= median <= high else None


def _interval_note(groups: list[tuple[str, list[Row]]]) -> str:
    lacking = [f"{canvas.label(row)} on {row['adapter']}" for _, members in groups
               for row in members if _median_interval(row) is None]
    note = "Dark red bars: each median's 95% confidence interval (distribution-free)."
    if lacking:
        note += " Without one (too few samples): " + "; ".join(lacking[:10]) + (
            f"; and {len(lacking) - 10} more" if len(lacking) > 10 else "") + "."
    return note


def latency_figure(groups: list[tuple[str, list[Row]]], colours: dict[str, str]) -> Figure:
    """Horizontal boxes of the raw samples, one per case and adapter, and over each the
    median's 95% confidence interval as a black bar with caps."""
    members = [row for _, rows in groups for row in rows]
    data = [[s for s in row["samples_s"] if _positive(s)] for row in members]
    figure, (axis,) = canvas.new_figure(_height(members, groups))
    slots, centres = _positions(groups)
    boxes = axis.boxplot(data, positions=slots, orientation="horizontal", widths=0.7,
                         patch_artist=True, flierprops={"markersize": 2, "alpha": 0.4},
                         medianprops={"color": "black"})
    for patch, row in zip(boxes["boxes"], members, strict=True):
        patch.set_facecolor(colours[row["adapter"]])
        patch.set_alpha(0.7)
    for slot, row in zip(slots, members, strict=True):
        found = _median_interval(row)
        if found is not None:
            low, median, high = found
            axis.errorbar([median], [slot], xerr=[[median - low], [high - median]], fmt="none",
                          ecolor=INTERVAL, elinewidth=2.5, capsize=5, capthick=2, zorder=4)
    axis.set_yticks(centres, [label for label, _ in groups])
    axis.invert_yaxis()  # first case on top, as in the tables
    _scale(axis, [v for values in data for v in values])
    canvas.seconds_axis(axis)
    axis.set_xlabel("time per call (each raw sample); dark red: the median's 95% interval")
    _legend(axis, colours, [row["adapter"] for row in members])
    return figure


def speedup(rows: Sequence[Row], reference: str) -> list[Plot]:
    """Per case, each other adapter's speedup over ``reference``: the speedup an interleaved
    run measured, drawn with its 95% interval, or else the ratio of the medians, which has
    none (:func:`harness.report.summary.speedup`, the figure the summary and tables give)."""
    title = f"Speedup over {reference}"
    ok = _ok(rows)
    adapters = list(dict.fromkeys(row["adapter"] for row in ok))
    if reference not in adapters:
        return [Plot(title, None, f"no successful result on the reference adapter {reference!r} "
                                  "(choose another with --reference).")]
    if len(adapters) < 2:
        return [Plot(title, None, f"only the reference adapter {reference!r} ran: "
                                  "nothing to compare with.")]
    base = {(row["case_id"], row.get("repetition")): row for row in ok
            if row["adapter"] == reference}
    bars = []
    for row in ok:
        found = measured_speedup(row, base.get((row["case_id"], row.get("repetition"))),
                                 reference)
        if found is not None:
            bars.append({**row, "speedup": found.value, "speedup_ci_low": found.low,
                         "speedup_ci_high": found.high})
    if not bars:
        return [Plot(title, None, f"no case succeeded on both {reference!r} and another adapter.")]
    colours = canvas.colours(rows)
    pages = _bounded(_case_groups(bars))
    apart = [row for row in bars if row["speedup_ci_low"] is None]
    note = ("Black bars: the 95% interval of each speedup measured interleaved."
            if len(apart) < len(bars) else "")
    if apart:
        note += (f" {len(apart)} of {len(bars)} bars have no interval: the ratio of two "
                 "medians measured apart, not interleaved (run the adapters together).")
    with canvas.style():
        return [Plot(_part(title, i, len(pages)), _bars(page, colours, reference), note.strip())
                for i, page in enumerate(pages)]


def _bars(groups: list[tuple[str, list[Row]]], colours: dict[str, str], reference: str) -> bytes:
    members = [row for _, rows in groups for row in rows]
    values = [row["speedup"] for row in members]
    figure, (axis,) = canvas.new_figure(_height(members, groups))
    slots, centres = _positions(groups)
    axis.barh(slots, values, height=0.7, color=[colours[row["adapter"]] for row in members])
    spans = [(row["speedup"] - row["speedup_ci_low"], row["speedup_ci_high"] - row["speedup"])
             if _finite(row.get("speedup_ci_low")) and _finite(row.get("speedup_ci_high"))
             and _finite(row.get("speedup")) else (0.0, 0.0) for row in members]
    if any(low or high for low, high in spans):  # the measured speedups' 95% intervals
        axis.errorbar(values, slots, xerr=list(zip(*spans, strict=True)), fmt="none",
                      ecolor="black", elinewidth=0.8, capsize=2)
    for y, value, (_, above) in zip(slots, values, spans, strict=True):
        # Beyond the interval's upper cap, so the figure never sits on its error bar.
        axis.annotate(f"{ratio(value)}×", (value + above, y), xytext=(5, 0),
                      textcoords="offset points", va="center", fontsize=7)
    axis.axvline(1.0, color="black", linewidth=1)  # parity with the reference
    _scale(axis, [*values, 1.0])
    if axis.get_xscale() == "log":
        _plain_log(axis.xaxis, "×")
    axis.set_yticks(centres, [label for label, _ in groups])
    axis.invert_yaxis()
    axis.set_xlabel(f"{reference} median / adapter median (above 1: faster than {reference})")
    _legend(axis, colours, [row["adapter"] for row in members])
    return canvas.png(figure)


def _memory_bound_note(rows: Sequence[Row]) -> str:
    """Cases without floating-point work (lookups): no place on a FLOP/s chart, so listed."""
    if not rows:
        return ""
    shown = [f"{canvas.label(row)} on {row['adapter']}: "
             f"{units.rate(row.get('achieved_bytes_per_s'), 'B/s')}"
             + (f" ({units.percent(row.get('peak_fraction'))} of peak bandwidth)"
                if _finite(row.get("peak_fraction")) else "")
             for row in rows[:20]]
    more = f"; and {len(rows) - 20} more" if len(rows) > 20 else ""
    return ("Not on the chart, memory-bound by nature (no floating-point work; achieved "
            "bandwidth shown instead): " + "; ".join(shown) + more + ".")


def _has_peaks(row: Row) -> bool:
    return _positive(row.get("peak_flops_per_s")) and _positive(row.get("peak_bytes_per_s"))


def _roofless_note(rows: Sequence[Row]) -> str:
    """Adapters without peaks (the null adapter, unknown devices): a point there has no roof to
    be judged against, and a no-op's "FLOP/s" would only stretch the axis, so they are listed."""
    reasons: dict[str, tuple[int, str]] = {}
    for row in rows:
        missing = row.get("missing") or {}
        why = str(missing.get("attainable_fraction") or missing.get("peak_fraction")
                  or row.get("peak_source") or "no peaks recorded")
        count, _ = reasons.get(row["adapter"], (0, why))
        reasons[row["adapter"]] = (count + 1, why)
    listed = "; ".join(f"{adapter} ({count} case{'s' * (count > 1)}): {why}"
                       for adapter, (count, why) in reasons.items())
    return f"Not on the chart, no peaks to draw a roof from: {listed}." if listed else ""


def roofline(rows: Sequence[Row]) -> list[Plot]:
    """Log-log: arithmetic intensity against achieved FLOP/s, with each adapter's roofs.

    Only rows whose adapter reported peaks are drawn; cases without floating-point work (lookups)
    and adapters without peaks are named in the chart's note instead."""
    title = "Roofline"
    ok = _ok(rows)
    computed = [row for row in ok if _positive(row.get("flops"))
                and _positive(row.get("achieved_flops_per_s"))
                and _positive(row.get("arithmetic_intensity"))]
    points = [row for row in computed if _has_peaks(row)]
    bandwidth_only = [row for row in ok if not _positive(row.get("flops"))
                      and _positive(row.get("achieved_bytes_per_s"))]
    notes = [_memory_bound_note(bandwidth_only),
             _roofless_note([row for row in computed if not _has_peaks(row)])]
    note = " ".join(n for n in notes if n)
    if not points:
        why = ("no adapter reported its peaks, so there is no roof to draw." if computed
               else "no successful case has floating-point work with a measured intensity.")
        return [Plot(title, None, f"{why} {note}".strip())]
    roofs = {(row["adapter"], row["peak_flops_per_s"], row["peak_bytes_per_s"],
              str((row.get("meta") or {}).get("dtype", ""))): None for row in points}
    with canvas.style():
        figure, left_off = roofline_figure(points, list(roofs), canvas.colours(rows))
        png = canvas.png(figure)
    if len(points) > MAX_LABELLED:
        note = f"Points not labelled (more than {MAX_LABELLED}): see the legend. {note}"
    elif left_off:
        note = (f"Labels left off where they would overlap another: {'; '.join(left_off)}. "
                f"{note}")
    return [Plot(title, png, note.strip())]


def roofline_figure(points: list[Row], roofs: list[tuple[str, float, float, str]],
                    colours: dict[str, str]) -> tuple[Figure, list[str]]:
    """The roofline chart, and the point labels it had to leave off to keep the rest from
    overlapping (:func:`harness.report.labels.place`); beyond a dozen points, none."""
    import numpy as np

    figure, (axis,) = canvas.new_figure(5.5)
    intensities = [row["arithmetic_intensity"] for row in points]
    intensities += [flops / bandwidth for _, flops, bandwidth, _ in roofs]  # the ridge points
    low, high = min(intensities) / 4, max(intensities) * 4
    xs = np.geomspace(low, high, 200)
    dtypes = {dtype for *_, dtype in roofs}
    for adapter, flops, bandwidth, dtype in roofs:
        label = canvas.safe(f"{adapter} roof"
                            + (f" ({dtype})" if len(dtypes) > 1 and dtype else ""))
        axis.plot(xs, np.minimum(flops, xs * bandwidth), linestyle="--",
                  color=colours[adapter], label=label)
    markers: dict[str, str] = {}
    for row in points:
        workload = str(row.get("workload"))
        marker = markers.setdefault(workload, MARKERS[len(markers) % len(MARKERS)])
        axis.scatter(row["arithmetic_intensity"], row["achieved_flops_per_s"], marker=marker,
                     color=colours[row["adapter"]], edgecolors="black", linewidths=0.5, zorder=3)
    _roofline_legend(axis, colours, points, markers)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("arithmetic intensity (FLOP per byte of compulsory traffic)")
    axis.set_ylabel("achieved FLOP/s")
    _plain_log(axis.xaxis, "")
    _plain_log(axis.yaxis, "FLOP/s", units.rate)
    if len(points) > MAX_LABELLED:  # beyond a dozen, the legend must do
        return figure, []
    left_off = labels.place(figure, axis, [
        (row["arithmetic_intensity"], row["achieved_flops_per_s"],
         canvas.safe(canvas.label(row, 40))) for row in points])
    return figure, [f"{canvas.label(points[i], 40)} on {points[i]['adapter']}" for i in left_off]


def _roofline_legend(axis: Axes, colours: dict[str, str], points: list[Row],
                     markers: dict[str, str]) -> None:
    from matplotlib.lines import Line2D

    handles, names = axis.get_legend_handles_labels()
    for adapter in dict.fromkeys(row["adapter"] for row in points):
        handles.append(Line2D([], [], marker="o", linestyle="", color=colours[adapter]))
        names.append(canvas.safe(adapter))
    for workload, marker in markers.items():
        handles.append(Line2D([], [], marker=marker, linestyle="", color="grey"))
        names.append(canvas.safe(workload))
    # Outside the axes, on the right: the point labels inside can then go anywhere.
    axis.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def memory(rows: Sequence[Row]) -> list[Plot]:
    """Per case and adapter: peak resident memory of the host process, and device memory."""
    title = "Peak memory"
    measured = [row for row in _ok(rows) if _positive(row.get("peak_rss_bytes"))
                or _positive(row.get("peak_device_bytes"))]
    if not measured:
        return [Plot(title, None, "no peak memory was measured (collectors off, or no "
                                  "result succeeded).")]
    device = any(_positive(row.get("peak_device_bytes")) for row in measured)
    colours = canvas.colours(rows)
    pages = _bounded(_case_groups(measured))
    with canvas.style():
        return [Plot(_part(title, i, len(pages)), _memory_chart(page, colours, device))
                for i, page in enumerate(pages)]


def _binary_unit(largest: float) -> tuple[float, str]:
    for scale, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if largest >= 2 * scale:
            return float(scale), unit
    return 1.0, "B"


def _memory_chart(groups: list[tuple[str, list[Row]]], colours: dict[str, str],
                  device: bool) -> bytes:
    members = [row for _, rows in groups for row in rows]
    panels = [("peak_rss_bytes", "peak RSS of the process (host)")]
    if device:
        panels.append(("peak_device_bytes", "peak device memory (allocator)"))
    figure, axes = canvas.new_figure(_height(members, groups), len(panels))
    slots, centres = _positions(groups)
    for axis, (column, label) in zip(axes, panels, strict=True):
        values = [row[column] if _positive(row.get(column)) else 0.0 for row in members]
        # One binary unit per axis, so the ticks fall on round numbers of it (not 47.7 MiB).
        scale, unit = _binary_unit(max(values))
        axis.barh(slots, [v / scale for v in values], height=0.7,
                  color=[colours[row["adapter"]] for row in members])
        axis.set_xlabel(f"{label}, {unit}")
        axis.set_yticks(centres, [name for name, _ in groups] if axis is axes[0] else [])
        axis.invert_yaxis()
    _legend(axes[-1], colours, [row["adapter"] for row in members])
    return canvas.png(figure)


def trend(points: Sequence[TrendPoint]) -> list[Plot]:
    """Median latency per run against the run's start time, for cases seen in several runs."""
    series: dict[tuple[str, str], list[TrendPoint]] = {}
    for point in sorted(points, key=lambda p: p.started):
        series.setdefault((point.label, point.adapter), []).append(point)
    kept = {key: values for key, values in series.items() if len(values) > 1}
    if not kept:
        return [Plot("Trend", None, "every case appears in only one run.")]
    by_workload: dict[str, list[tuple[str, str]]] = {}
    for key, values in kept.items():
        by_workload.setdefault(values[0].workload, []).append(key)
    plots = []
    with canvas.style():
        for workload, keys in by_workload.items():
            pages = _chunks(keys, MAX_SERIES)
            for i, page in enumerate(pages):
                plots.append(Plot(_part(f"Trend: {workload}", i, len(pages)),
                                  _trend_chart({key: kept[key] for key in page})))
    return plots


def _trend_chart(series: dict[tuple[str, str], list[TrendPoint]]) -> bytes:
    figure, (axis,) = canvas.new_figure(4.0)
    for (label, adapter), values in series.items():
        # datetimes go through matplotlib's date converter; its stubs accept only numbers.
        times: Any = [p.started for p in values]
        axis.plot(times, [p.median_s for p in values], marker="o",
                  label=canvas.safe(f"{label[:50]} on {adapter}"))
    _scale(axis, [p.median_s for values in series.values() for p in values], "y")
    canvas.seconds_axis(axis, "y")
    axis.set_ylabel("median latency per run")
    axis.set_xlabel("run start (UTC)")
    figure.autofmt_xdate()
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), fontsize=7, ncol=2)
    return canvas.png(figure)
