"""Charts: real PNGs of bounded size where there is data, a reason instead where there is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness.report import canvas, plots
from harness.report.html import png_size
from tests.report.test_build import ok_row, synthetic_rows

PNG = b"\x89PNG\r\n\x1a\n"


def labelled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as the builder hands them over: each with a short chart label."""
    return [{**row, "label": f"{row['workload']}[{row['params']}]"} for row in rows]


def assert_png(plot: canvas.Plot) -> tuple[int, int]:
    assert plot.png is not None, plot.note
    assert plot.png.startswith(PNG)
    width, height = png_size(plot.png)
    assert width == canvas.WIDTH_IN * canvas.DPI and 150 < height < 1600
    return width, height


def test_every_chart_draws_the_synthetic_runs() -> None:
    rows = labelled(synthetic_rows())
    latency = plots.latency_distributions(rows)
    assert [p.title for p in latency] == ["Latency distributions: demo/matmul",
                                          "Latency distributions: demo/lookup"]
    for plot in [*latency, *plots.speedup(rows, "cpu"), *plots.memory(rows)]:
        assert_png(plot)
    (roof,) = plots.roofline(rows)
    assert_png(roof)
    # The lookup has no floating-point work: named with its bandwidth, not drawn as FLOP/s.
    assert roof.note.startswith("Not on the chart, memory-bound by nature")
    assert "lookup[{'keys': 1000}] on cpu: 20 GB/s (25% of peak bandwidth)" in roof.note


def test_many_cases_are_split_into_bounded_charts() -> None:
    rows = labelled([ok_row("w", {"n": n}, adapter, 1e-3 * (n + 1))
                     for n in range(40) for adapter in ("cpu", "xla-cpu")])
    latency = plots.latency_distributions(rows)
    assert [p.title for p in latency] == [f"Latency distributions: demo/w ({i}/3)"
                                          for i in (1, 2, 3)]
    heights = [assert_png(p)[1] for p in latency]
    assert max(heights) < 1200  # at most MAX_ITEMS boxes per chart
    assert len(plots.speedup(rows, "cpu")) == 2  # 40 bars, 32 per chart


def test_missing_data_gives_a_reason_instead_of_an_image() -> None:
    bare = labelled([ok_row("w", {"n": 1}, "cpu", 1e-3, samples_s=None, peak_rss_bytes=None)])
    for plot, reason in [
        (plots.latency_distributions(bare)[0], "no result holds raw samples"),
        (plots.speedup(bare, "cpu")[0], "only the reference adapter 'cpu' ran"),
        (plots.speedup(bare, "tpu")[0], "no successful result on the reference adapter 'tpu'"),
        (plots.memory(bare)[0], "no peak memory was measured"),
        (plots.trend([]), "every case appears in only one run"),
    ]:
        if isinstance(plot, list):
            (plot,) = plot
        assert plot.png is None and plot.note.startswith(reason)


def test_the_roofline_leaves_out_what_it_cannot_place() -> None:
    lookups = labelled([ok_row("lookup", {"k": 1}, "cpu", 1e-3, flops=0.0)])
    (plot,) = plots.roofline(lookups)
    assert plot.png is None and "no successful case has floating-point work" in plot.note
    # The null adapter does no work: its "FLOP/s" has no roof and is listed, not drawn.
    null = labelled([ok_row("w", {"n": 1}, "null", 1e-8, peak_flops_per_s=None,
                            missing={"peak_fraction": "the null adapter runs no hardware"})])
    (plot,) = plots.roofline(null)
    assert plot.png is None and "no adapter reported its peaks" in plot.note
    (plot,) = plots.roofline(labelled(synthetic_rows()) + null)
    assert_png(plot)
    assert "null (1 case): the null adapter runs no hardware" in plot.note


def test_names_with_dollars_print_literally() -> None:
    # An unescaped `$` starts mathtext, which fails on arbitrary text ("$x$y\\frac{").
    rows = labelled([ok_row("cost$", {"n": "$x$y\\frac{"}, adapter, 1e-3)
                     for adapter in ("cpu", "$gpu$")])
    for plot in [*plots.latency_distributions(rows), *plots.speedup(rows, "cpu"),
                 *plots.roofline(rows), *plots.memory(rows)]:
        assert_png(plot)


def test_trend_draws_cases_seen_in_several_runs() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    points = [plots.TrendPoint("w[n=1]", "cpu", "demo/w", start + timedelta(days=d), 1e-3 * d)
              for d in (1, 2, 3)]
    points.append(plots.TrendPoint("w[n=2]", "cpu", "demo/w", start, 1e-3))  # one run: left out
    (plot,) = plots.trend(points)
    assert plot.title == "Trend: demo/w"
    assert_png(plot)


def test_measured_speedups_are_drawn_with_their_intervals() -> None:
    rows = labelled(synthetic_rows())
    drawn = [{**row, "speedup": 2.0, "speedup_ci_low": 1.5, "speedup_ci_high": 2.5,
              "interleaved": True, "speedup_reference": "cpu"}
             if row["adapter"] != "cpu" else row for row in rows]
    plain, measured = plots.speedup(rows, "cpu")[0], plots.speedup(drawn, "cpu")[0]
    assert_png(measured)
    assert measured.png != plain.png  # the measured figures and their error bars
    assert measured.note.startswith("Black bars: the 95% interval of each speedup measured")
    assert "have no interval" not in measured.note
    # Medians measured apart: no bar claims an interval, and the note says why.
    assert plain.note == ("2 of 2 bars have no interval: the ratio of two medians measured "
                          "apart, not interleaved (run the adapters together).")
    # Against another reference than the one it was measured against, a stored speedup is
    # not this chart's figure: the medians' ratio is drawn instead.
    elsewhere = [{**row, "speedup_reference": "onnxruntime"} for row in drawn]
    assert plots.speedup(elsewhere, "cpu")[0].png == plain.png


def test_latency_boxes_carry_each_medians_interval() -> None:
    rows = labelled([ok_row("w", {"n": 1}, "cpu", 4e-3, latency_ci_low_s=3.8e-3,
                            latency_ci_high_s=4.4e-3),
                     ok_row("w", {"n": 1}, "xla-cpu", 1e-3, latency_ci_low_s=None)])
    groups = [(rows[0]["label"], rows)]
    with canvas.style():
        figure = plots.latency_figure(groups, canvas.colours(rows))
    (axis,) = figure.axes
    (bar,) = axis.containers  # one interval: the xla-cpu row has none
    (segments,) = bar.lines[2]
    (x0, _), (x1, _) = segments.get_segments()[0]
    assert (x0, x1) == pytest.approx((3.8e-3, 4.4e-3))
    (plot,) = plots.latency_distributions(rows)
    assert plot.note == ("Dark red bars: each median's 95% confidence interval (distribution-free)."
                         " Without one (too few samples): w[{'n': 1}] on xla-cpu.")


def crowded() -> list[dict[str, Any]]:
    """Ten roofline points within a few percent of each other: fixed offsets would overlap."""
    return labelled([ok_row("matmul", {"n": n, "impl": "blocked"}, adapter, 1e-3 * (1 + n / 50))
                     for n in range(5) for adapter in ("cpu", "xla-cpu")])


def text_boxes(figure: Any) -> list[Any]:
    renderer = figure.canvas.get_renderer()
    (axis, *_) = figure.axes
    return [text.get_window_extent(renderer) for text in axis.texts]


def test_roofline_labels_never_overlap() -> None:
    points = crowded()
    roofs = [(a, 1e11, 1e10, "float32") for a in ("cpu", "xla-cpu")]
    with canvas.style():
        figure, left_off = plots.roofline_figure(points, roofs, canvas.colours(points))
    boxes = text_boxes(figure)
    assert len(boxes) + len(left_off) == len(points) and len(boxes) >= 5
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[i + 1:]), box
    # The points are crowded enough that labels at one fixed offset do overlap.
    with canvas.style():
        naive, _ = plots.roofline_figure(points, roofs, canvas.colours(points))
    (axis, *_) = naive.axes
    for text in list(axis.texts):
        text.remove()
    for row in points:
        axis.annotate(row["label"], (row["arithmetic_intensity"], row["achieved_flops_per_s"]),
                      xytext=(5, 3), textcoords="offset points", fontsize=7)
    fixed = text_boxes(naive)
    assert any(a.overlaps(b) for i, a in enumerate(fixed) for b in fixed[i + 1:])
    (plot,) = plots.roofline(points)
    assert_png(plot)
    assert all(name in plot.note for name in left_off)
