"""The profile's charts: a stacked bar per case and backend (category shares of the profiled time,
and the seconds per call they add up to), and a roofline point per category.

Drawn on ``canvas`` like every report chart; each function returns ``Plot``s, empty when no case
was profiled, so a report of unprofiled runs gains no empty chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from harness.report import canvas, units
from harness.report.canvas import Plot
from harness.report.profile import (
    UNATTRIBUTED,
    Breakdown,
    CategoryPoint,
    by_case,
    categories,
    roofs,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: One colour per category, the same in every chart; unattributed time is pale and hatched.
CATEGORY_COLOURS = {
    "matmul": "#1f77b4", "attention": "#9467bd", "normalization": "#17becf",
    "activation": "#ff7f0e", "elementwise": "#2ca02c", "reduction": "#bcbd22",
    "memory": "#8c564b", "lookup": "#e377c2", "host": "#d62728", "other": "#7f7f7f",
    UNATTRIBUTED: "#dddddd"}
#: Categories added by suites or adapters take these, in order of appearance.
SPARE_COLOURS = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94")
#: Bars per chart: beyond this the chart is split, so each stays readable.
MAX_BARS = 24
MARKERS = "osD^vP*Xh<>"
MAX_LABELLED = 12


def category_colours(names: Sequence[str]) -> dict[str, str]:
    extra = [n for n in names if n not in CATEGORY_COLOURS]
    spare = {n: SPARE_COLOURS[i % len(SPARE_COLOURS)] for i, n in enumerate(extra)}
    return {n: CATEGORY_COLOURS.get(n) or spare[n] for n in names}


def _pages(found: Sequence[Breakdown]) -> list[list[list[Breakdown]]]:
    """Profiled breakdowns by case, split so that no chart holds more than MAX_BARS bars."""
    pages: list[list[list[Breakdown]]] = [[]]
    count = 0
    for group in by_case(b for b in found if b.profiled).values():
        if pages[-1] and count + len(group) > MAX_BARS:
            pages.append([])
            count = 0
        pages[-1].append(group)
        count += len(group)
    return pages if pages[0] else []


def stacked_bars(found: Sequence[Breakdown]) -> list[Plot]:
    """Per case, a bar per backend split by category: shares of the profiled time per call on
    the left, the seconds per call they add up to on the right."""
    pages = _pages(found)
    title = "Where the time goes"
    note = ("Per call in the profiling pass (after timing), median over profiled repetitions; "
            "unattributed: profiled time no operator accounts for. Profiled times include the "
            "profiler's cost (the tables give each backend's overhead).")
    with canvas.style():
        return [Plot(f"{title} ({i + 1}/{len(pages)})" if len(pages) > 1 else title,
                     _bars(page), note) for i, page in enumerate(pages)]


def _bars(groups: list[list[Breakdown]]) -> bytes:
    from matplotlib.ticker import PercentFormatter

    members = [b for group in groups for b in group]
    order = categories(members)
    colours = category_colours(order)
    ys, y = [], 0.0
    for group in groups:
        for _ in group:
            ys.append(y)
            y += 1.0
        y += 0.6  # a gap between cases
    figure, axes = canvas.new_figure(1.6 + 0.3 * len(members) + 0.15 * len(groups), 2)
    for axis, share in zip(axes, (True, False), strict=True):
        lefts = [0.0] * len(members)
        for category in order:
            widths = [b.share(category) if share else b.seconds.get(category, 0.0)
                      for b in members]
            widths = [w if w == w else 0.0 for w in widths]  # NaN share: nothing to draw
            axis.barh(ys, widths, left=lefts, height=0.7, color=colours[category],
                      hatch="//" if category == UNATTRIBUTED else None,
                      edgecolor="white", linewidth=0.5, label=canvas.safe(category))
            lefts = [left + w for left, w in zip(lefts, widths, strict=True)]
        if not share:
            for b, y_bar, end in zip(members, ys, lefts, strict=True):
                axis.annotate(units.seconds(b.wall_s), (end, y_bar), xytext=(3, 0),
                              textcoords="offset points", va="center", fontsize=7)
            canvas.seconds_axis(axis)
            axis.set_xlabel("seconds per call (profiled)")
        else:
            axis.xaxis.set_major_formatter(PercentFormatter(1.0))
            axis.set_xlabel("share of the profiled time per call")
        axis.set_yticks(ys, [canvas.safe(f"{canvas.label({'label': b.label}, 40)} · {b.adapter}")
                             if axis is axes[0] else "" for b in members])
        axis.invert_yaxis()  # the first case on top, as in the tables
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=min(6, len(order)),
                  fontsize=7)
    return canvas.png(figure)


def category_roofline(points: Sequence[CategoryPoint]) -> list[Plot]:
    """Log-log: each category's arithmetic intensity against its FLOP/s, with each backend's
    roofs (solid: the theoretical ceiling; dashed: the measured peak)."""
    if not points:
        return []
    with canvas.style():
        png = _roofline(points)
    return [Plot("Roofline by category", png,
                 "Each category's FLOPs and bytes ÷ its self time under the profiler, from its "
                 "operators whose FLOPs and bytes are both known; the table under the "
                 "profile tables gives the figures.")]


def _roofline(points: Sequence[CategoryPoint]) -> bytes:
    import numpy as np

    adapters = canvas.colours([{"adapter": p.breakdown.adapter} for p in points])
    roof_lines = {(p.breakdown.adapter, *roof): None for p in points
                  for roof in roofs(p.breakdown.row)}
    xs = [p.intensity for p in points] + [f / b for _, _, f, b in roof_lines]
    grid = np.geomspace(min(xs) / 4, max(xs) * 4, 200)
    figure, (axis,) = canvas.new_figure(5.5)
    for adapter, name, flops, bandwidth in roof_lines:
        axis.plot(grid, np.minimum(flops, grid * bandwidth), color=adapters[adapter],
                  linestyle="-" if name == "ceiling" else "--",
                  label=canvas.safe(f"{adapter} {name} roof"))
    markers: dict[str, str] = {}
    for p in points:
        marker = markers.setdefault(p.category, MARKERS[len(markers) % len(MARKERS)])
        axis.scatter(p.intensity, p.achieved, marker=marker, color=adapters[p.breakdown.adapter],
                     edgecolors="black", linewidths=0.5, zorder=3)
        if len(points) <= MAX_LABELLED:
            axis.annotate(canvas.safe(f"{canvas.label({'label': p.breakdown.label}, 30)} "
                                      f"{p.category}"), (p.intensity, p.achieved),
                          xytext=(5, 3), textcoords="offset points", fontsize=7)
    _legend(axis, adapters, markers)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("arithmetic intensity (FLOP per byte)")
    axis.set_ylabel("FLOP/s under the profiler")
    return canvas.png(figure)


def _legend(axis: Axes, adapters: dict[str, str], markers: dict[str, str]) -> None:
    from matplotlib.lines import Line2D

    handles, labels = axis.get_legend_handles_labels()
    for adapter, colour in adapters.items():
        handles.append(Line2D([], [], marker="o", linestyle="", color=colour))
        labels.append(canvas.safe(adapter))
    for category, marker in markers.items():
        handles.append(Line2D([], [], marker=marker, linestyle="", color="grey"))
        labels.append(canvas.safe(category))
    axis.legend(handles, labels, loc="best", fontsize=8)
