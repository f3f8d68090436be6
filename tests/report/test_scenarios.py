"""The load scenarios in reports: tables, the peak table, the latency-versus-load chart, in the
terminal, Markdown and HTML (and, where Chromium is present, in a real browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.report import scenarios
from harness.report.build import gather, write_report
from harness.report.html import render
from tests.report.test_browser import CHROMIUM, console_messages, image_probe
from tests.report.test_build import XSS, ok_row, write_run

CASE = "demo/bert[size=tiny]"


def server_row(adapter: str, qps: float, p50: float, p99: float, **extra: Any) -> dict[str, Any]:
    return {"suite": "demo", "workload": "bert", "case_id": CASE, "params": {"size": "tiny"},
            "adapter": adapter, "status": "ok", "message": "followed the harness's rule",
            "scenario": "server", "load_rule": "harness", "qps": qps, "achieved_qps": qps * 0.99,
            "latency_median_s": p50, "latency_p90_s": p99 * 0.8, "latency_p99_s": p99,
            "latency_bound_s": 0.1, "over_bound_fraction": 0.0 if p99 < 0.1 else 0.2,
            "generator_lag_s": 1e-4, "queries": 700, "dropped_queries": 0, "max_batch": 1,
            "mean_batch": 1.0, "load_valid": True, "loadgen_valid": False,
            "meets_bound": p99 <= 0.1, "peak_search": "probe", "samples_s": [p50] * 10,
            "n_samples": 10, **extra}


def load_rows() -> list[dict[str, Any]]:
    rows = [server_row("cpu", q, 2e-3 * (1 + q / 100), p99)
            for q, p99 in ((50, 0.01), (60, 0.03), (72, 0.09), (86.4, 0.3))]
    rows += [server_row("onnxruntime", q, 1e-3, p99) for q, p99 in ((50, 0.005), (100, 0.5))]
    rows.append({**server_row("cpu", 72, 0, 0), "peak_search": "result", "peak_qps": 72.0,
                 "latency_median_s": None, "latency_p99_s": None, "samples_s": None,
                 "meta": {"above_peak_qps": 86.4, "probes": [{"qps": 50}, {"qps": 60},
                                                             {"qps": 72}, {"qps": 86.4}]}})
    rows.append({**server_row("cpu", 0, 0, 0), "scenario": "single-stream", "qps": None,
                 "latency_median_s": 2e-3, "latency_p99_s": 3e-3, "early_stop_latency_s": 2.5e-3,
                 "peak_search": None, "generator_lag_s": None})
    rows.append({"suite": "demo", "workload": "bert", "case_id": CASE, "params": {},
                 "adapter": "xla-cpu", "status": "error", "scenario": "server", "qps": 50,
                 "message": "load failed: RuntimeError: " + XSS})
    return rows


def test_split_keeps_loop_rows_apart() -> None:
    loop_row = ok_row("matmul", {"n": 64}, "cpu", 1e-3)
    loop, under = scenarios.split([loop_row, *load_rows()])
    assert loop == [loop_row] and len(under) == len(load_rows())


def test_tables_list_each_run_in_qps_order_and_the_peak() -> None:
    (table,) = scenarios.tables(load_rows())
    assert "latency bound 100 ms" in table.title
    offered = [line[2] for line in table.rows if line[0] == "server" and line[1] == "cpu"]
    assert offered == ["50", "60", "72", "86.4"]
    single = next(line for line in table.rows if line[0] == "single-stream")
    assert single[table.header.index("early stop")] == "2.5 ms"
    error = next(line for line in table.rows if line[1] == "xla-cpu")
    assert error[3] == "error" and XSS in error[4]
    peaks = scenarios.peak_table(load_rows())
    assert peaks is not None and peaks.rows == (
        (CASE, "cpu", "100 ms", "72", "86.4", "4"),)


def test_generation_runs_get_a_token_table_with_their_bounds() -> None:
    tokens = {"ttft_s": 0.05, "ttft_p90_s": 0.12, "ttft_p99_s": 0.3, "tpot_s": 0.02,
              "tpot_p90_s": 0.021, "tpot_p99_s": 0.022, "ttft_bound_s": 0.2,
              "tpot_bound_s": 0.05, "ttft_over_bound_fraction": 0.04,
              "tpot_over_bound_fraction": 0.0, "meets_bound": False}
    rows = [server_row("cpu", 5, 0.3, 0.6, **tokens), server_row("cpu", 2, 0.2, 0.25)]
    latency, token = scenarios.tables(rows)
    assert "TTFT bound 200 ms, TPOT bound 50 ms" in token.title
    (line,) = token.rows  # the run without token figures has no line here
    shown = dict(zip(token.header, line, strict=True))
    assert shown["TTFT p50"] == "50 ms" and shown["over TTFT bound"] == "4%"
    assert shown["TPOT p50"] == "20 ms" and shown["over TPOT bound"] == "0%"
    assert line[5] == "300 ms" and line[9] == "22 ms"  # the p99s
    assert shown["meets bounds"] == "no" and "continuous batching" in token.note
    assert len(latency.rows) == 2


def test_text_for_the_terminal() -> None:
    text = scenarios.text(load_rows())
    assert "Peak QPS within the latency bound" in text and "server" in text


def test_curve_is_drawn_per_case_and_says_when_it_is_one_point() -> None:
    plots = scenarios.curves(load_rows())
    assert len(plots) == 1 and plots[0].png is not None
    assert plots[0].png.startswith(b"\x89PNG")
    single = scenarios.curves([server_row("cpu", 50, 1e-3, 2e-3)])
    assert "one offered load only" in single[0].note
    assert scenarios.curves([])[0].png is None


def test_the_latency_axis_starts_from_the_data_not_zero() -> None:
    from harness.report import canvas

    group = [server_row("cpu", q, 2e-3 + q * 1e-5, 3e-3 + q * 2e-5) for q in (50, 60, 70)]
    group = [{**row, "latency_bound_s": None} for row in group]  # no bound line to include
    with canvas.style():
        figure = scenarios.curve_figure(group, {"cpu": "#1f77b4"}, {})
    (axis,) = figure.axes
    low, high = axis.get_ylim()
    assert axis.get_yscale() == "linear"
    # Latencies from 2.5 ms to 4.4 ms: the axis spans them (with a margin), far from 0 ns.
    assert 2e-3 < low < 2.5e-3 and 4.4e-3 < high < 5e-3


def test_reports_carry_the_load_section_escaped(tmp_path: Path) -> None:
    run = write_run(tmp_path / "results", [ok_row("matmul", {"n": 64}, "cpu", 1e-3),
                                           *load_rows()])
    report = gather([run])
    # The loop row keeps its table; load rows are only in the load section.
    assert [t.workload for t in report.tables] == ["matmul"]
    assert any(p.title.startswith("Latency against load") and p.png for p in report.plots)
    assert any(w.kind == "error" and w.adapter == "xla-cpu" for w in report.warnings)
    page = render(report)
    assert '<h2 id="load">Under load</h2>' in page and XSS not in page
    markdown = write_report([run], tmp_path / "r.md").read_text(encoding="utf-8")
    assert "## Under load" in markdown and "| server | cpu | 72 |" in markdown
    assert XSS not in markdown


@pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="headless Chromium not found")
def test_the_load_report_loads_cleanly_in_chromium(tmp_path: Path) -> None:
    run = write_run(tmp_path / "results", load_rows())
    page = write_report([run], tmp_path / "report.html")
    assert console_messages(tmp_path, page, tmp_path / "shot.png") == []
    images, scripts = image_probe(tmp_path, page)
    assert images and all(images) and scripts == 1
