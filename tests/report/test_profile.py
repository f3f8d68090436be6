"""Where the time goes: profiles read from ``ops.jsonl`` fixtures beside ``rows.jsonl``, the
terminal tables, the report's tables and the roofline point per category.

The fixtures (shared by the other profile tests) follow the operator table's columns: one row
per run, case, adapter label, repetition and operator, figures per case call.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from harness.profiling.ops import OPS_COLUMNS, OPS_FILE, read_ops
from harness.report import profile
from tests.report.test_build import ok_row, write_run

N64 = "demo/matmul[n=64,impl=a]"
N128 = "demo/matmul[n=128,impl=a]"
JAX_MISSING = "the JAX profiler wrote no trace: no perfetto_trace.json.gz"

#: cpu's operators: (op, category, seconds per call, FLOPs, bytes); 2 ms per call profiled.
CPU_OPS = [("aten::addmm", "matmul", 1.2e-3, 2e6, 1e5), ("aten::gelu", "activation", 4e-4,
                                                         None, None),
           ("aten::copy_", "memory", 2e-4, None, 8e4), ("(unattributed)", "unattributed",
                                                         2e-4, None, None)]
XLA_OPS = [("fusion.1", "matmul", 4e-4, 2e6, 1e5), ("fusion.2", "elementwise", 5e-5, 1e4, 4e4),
           ("(unattributed)", "unattributed", 5e-5, None, None)]


def op_row(case: str, adapter: str, op: str, category: str, seconds: float, wall: float,
           flops: float | None = None, nbytes: float | None = None, repetition: int = 0,
           **extra: Any) -> dict[str, Any]:
    row = {"case_id": case, "adapter": adapter, "repetition": repetition, "phase": "",
           "op": op, "category": category, "calls": 1.0, "self_time_s": seconds,
           "share": seconds / wall, "flops": flops,
           "flops_source": "torch with_flops" if flops else "", "bytes": nbytes,
           "provider": "cpu", **extra}
    assert set(row) <= set(OPS_COLUMNS)
    return row


def profile_ops(case: str, adapter: str, ops: list[tuple[Any, ...]], scale: float = 1.0,
                repetition: int = 0) -> list[dict[str, Any]]:
    wall = sum(seconds for _, _, seconds, *_ in ops) * scale
    return [op_row(case, adapter, name, category, seconds * scale, wall, flops, nbytes,
                   repetition) for name, category, seconds, flops, nbytes in ops]


def profiled_row(workload_params: dict[str, Any], adapter: str, median: float,
                 wall: float | None, **extra: Any) -> dict[str, Any]:
    """A result row with the profiling figures (or, with ``wall`` None, a reason instead)."""
    if wall is None:
        return ok_row("matmul", workload_params, adapter, median,
                      missing={"profiler": JAX_MISSING}, **extra)
    return ok_row("matmul", workload_params, adapter, median, profile_wall_s=wall,
                  profile_coverage=0.9, profile_overhead=wall / median, profile_calls=50,
                  profiler="torch.profiler" if adapter == "cpu" else "jax.profiler", **extra)


def profiled_run(results: Path, ops_extra: list[dict[str, Any]] | None = None,
                 **ctx: Any) -> Path:
    """A run of two matmul sizes on cpu and xla-cpu and a lookup: n=64 profiled on both
    (cpu twice), n=128 on cpu only (xla-cpu says why not), the lookup not at all."""
    rows = [profiled_row({"n": 64, "impl": "a"}, "cpu", 1.9e-3, 2e-3),
            profiled_row({"n": 64, "impl": "a"}, "cpu", 1.9e-3, 2.2e-3, repetition=1),
            profiled_row({"n": 64, "impl": "a"}, "xla-cpu", 4.5e-4, 5e-4),
            profiled_row({"n": 128, "impl": "a"}, "cpu", 8e-3, 8e-3),
            profiled_row({"n": 128, "impl": "a"}, "xla-cpu", 2e-3, None),
            ok_row("lookup", {"keys": 1000}, "cpu", 2e-4, flops=0.0, bytes=4e6)]
    run = write_run(results, rows, **ctx)
    ops = [*profile_ops(N64, "cpu", CPU_OPS), *profile_ops(N64, "cpu", CPU_OPS, 1.1, 1),
           *profile_ops(N64, "xla-cpu", XLA_OPS), *profile_ops(N128, "cpu", CPU_OPS, 4.0),
           *(ops_extra or [])]
    write_ops(run, ops)
    return run


def write_ops(run: Path, ops: list[dict[str, Any]]) -> None:
    with open(run / OPS_FILE, "w", encoding="utf-8") as fh:
        for op in ops:
            fh.write(json.dumps({"run_id": run.name, **op}) + "\n")


def loaded(run: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from harness.results import read_rows

    return read_rows(run), read_ops(run)


# --- breakdowns ------------------------------------------------------------------------------


def test_breakdowns_take_the_median_over_repetitions(tmp_path: Path) -> None:
    found = profile.breakdowns(*loaded(profiled_run(tmp_path)))
    assert [(b.case_id, b.adapter, b.profiled) for b in found] == [
        (N64, "cpu", True), (N64, "xla-cpu", True), (N128, "cpu", True),
        (N128, "xla-cpu", False)]  # the lookup was not profiled at all: not listed
    cpu = found[0]
    assert cpu.repetitions == 2
    # The median of 1.2 ms and 1.32 ms; categories largest first.
    assert cpu.seconds["matmul"] == pytest.approx(1.26e-3)
    assert list(cpu.seconds) == ["matmul", "activation", "memory", "unattributed"]
    assert cpu.share("matmul") == pytest.approx(0.6)
    assert cpu.wall_s == pytest.approx(2.1e-3)  # the rows' profile_wall_s, median
    assert cpu.overhead == pytest.approx((2e-3 / 1.9e-3 + 2.2e-3 / 1.9e-3) / 2)
    assert cpu.operators[0].op == "aten::addmm" and cpu.operators[0].flops == 2e6
    assert math.isnan(cpu.operators[1].flops)
    assert found[3].reason == JAX_MISSING


def test_a_category_missing_from_one_repetition_counts_as_zero_there(tmp_path: Path) -> None:
    extra = [op_row(N64, "xla-cpu", "sort.1", "reduction", 1e-3, 1e-3, repetition=1)]
    run = profiled_run(tmp_path, extra)
    xla = profile.breakdowns(*loaded(run))[1]
    assert xla.repetitions == 2
    assert xla.seconds["reduction"] == pytest.approx(0.5e-3)  # median of 0 and 1 ms
    assert xla.seconds["matmul"] == pytest.approx(0.2e-3)  # median of 0.4 ms and 0


def test_operators_of_other_runs_and_load_scenarios_are_ignored(tmp_path: Path) -> None:
    run = profiled_run(tmp_path)
    rows, ops = loaded(run)
    stray = [{**op, "run_id": "another-run"} for op in ops]
    assert profile.breakdowns(rows, stray) == []
    load = [{**row, "scenario": "server"} for row in rows]
    assert profile.breakdowns(load, ops) == []


# --- the terminal ----------------------------------------------------------------------------


def test_the_terminal_puts_backends_side_by_side(tmp_path: Path) -> None:
    text = profile.render_text(*loaded(profiled_run(tmp_path)))
    lines = text.splitlines()
    assert lines[0].startswith("where the time goes")
    start = lines.index(N64)
    header = lines[start + 1].split()
    assert header == ["category", "cpu", "xla-cpu"]
    body = {line.split()[0]: line for line in lines[start + 3:start + 12] if line.strip()}
    assert body["matmul"].split()[1:] == ["1.26", "ms", "60%", "400", "µs", "80%"]
    assert body["activation"].split()[1:] == ["420", "µs", "20%", "-"]
    assert "unattributed" in body and "elementwise" in body
    assert "2.1 ms (1.11× timed)" in body["profiled/call"]
    assert "aten::addmm 60%" in body["top"] and "fusion.1 80%" in body["top"]
    assert "(unattributed)" not in text  # a category line of its own, not an operator
    assert "lookup" not in text
    assert f"  xla-cpu: not profiled: {JAX_MISSING}" in lines
    assert profile.render_text(loaded(profiled_run(tmp_path / "b"))[0], []) == ""


def test_many_categories_fold_into_one_line(tmp_path: Path) -> None:
    names = ["matmul", "attention", "normalization", "activation", "elementwise", "reduction",
             "memory", "lookup"]
    ops = [(f"op{i}", name, (i + 1) * 1e-4, None, None) for i, name in enumerate(names)]
    run = write_run(tmp_path, [profiled_row({"n": 1}, "cpu", 1e-3, 3.6e-3)])
    write_ops(run, profile_ops("demo/matmul[n=1]", "cpu", ops))
    lines = profile.render_text(*loaded(run)).splitlines()
    # The six largest by share are named, in reading order; the two smallest are summed.
    assert [line.split()[0] for line in lines[5:12]] == [
        "normalization", "activation", "elementwise", "reduction", "memory", "lookup", "2"]
    assert lines[11].split() == ["2", "more", "300", "µs", "8.33%"]


def test_cautions_name_low_coverage_and_high_overhead() -> None:
    b = profile.Breakdown("c", "cpu", "c", 1, {"matmul": 1e-3}, coverage=0.6, overhead=3.0)
    assert [text.split(";")[0].split(":")[0] for text in profile.cautions(b)] == [
        "operators cover 60% of the profiled time",
        "profiled calls took 3.00× the timed median"]
    fine = profile.Breakdown("c", "cpu", "c", 1, {"matmul": 1e-3}, coverage=0.95, overhead=1.1)
    assert profile.cautions(fine) == []
    noted = profile.Breakdown("c", "cpu", "c", 1, {"matmul": 1e-3}, coverage=0.95,
                              row={"missing": {"profiler": "Maximum number of events reached"}})
    assert profile.cautions(noted) == ["profiler: Maximum number of events reached"]


# --- the report's tables and the roofline by category ----------------------------------------


def test_report_tables_list_categories_then_top_operators(tmp_path: Path) -> None:
    found = profile.breakdowns(*loaded(profiled_run(tmp_path)))
    tables = profile.report_tables(found)
    assert [t.title for t in tables] == [
        f"Where the time goes: {N64}", f"Top operators: {N64} on cpu",
        f"Top operators: {N64} on xla-cpu", f"Where the time goes: {N128}",
        f"Top operators: {N128} on cpu"]
    case = tables[0]
    assert case.header == ("category", "cpu", "xla-cpu")
    assert [row[0] for row in case.rows] == [
        "matmul", "activation", "elementwise", "memory", "unattributed",
        "profiled time per call", "coverage", "profiler"]
    assert case.rows[0][1:] == ("1.26 ms 60%", "400 µs 80%")
    assert case.rows[2][1:] == ("-", "50 µs 10%")
    top = tables[1].rows[0]
    assert top[:6] == ("aten::addmm", "matmul", "cpu", "1", "1.26 ms", "60%")
    assert top[6] == "2 MFLOP (torch with_flops)" and top[7] == "1.59 GFLOP/s"
    assert JAX_MISSING in tables[3].note


def test_a_roofline_point_per_category_with_known_work(tmp_path: Path) -> None:
    found = profile.breakdowns(*loaded(profiled_run(tmp_path)))
    points = profile.category_points(found)
    # gelu has no FLOPs, copy_ no FLOPs: only the matmuls and xla's elementwise fusion.
    assert [(p.breakdown.adapter, p.category) for p in points] == [
        ("cpu", "matmul"), ("xla-cpu", "matmul"), ("xla-cpu", "elementwise"),
        ("cpu", "matmul")]
    cpu = points[0]
    assert cpu.achieved == pytest.approx(2e6 / 1.26e-3) and cpu.intensity == 20
    assert cpu.covered == 1.0
    # Roof at intensity 20: min(1e11, 20 × 1e10) = 1e11, the measured peak (no ceiling known).
    fraction, name = profile.roof_fraction(cpu)
    assert name == "measured" and fraction == pytest.approx(2e6 / 1.26e-3 / 1e11)
    table = profile.roofline_table(points)
    assert table is not None and table.rows[0][3:6] == ("1.59 GFLOP/s", "20 FLOP/B",
                                                        "1.59% of measured")


def test_the_ceiling_is_the_roof_and_a_rate_above_it_is_its_error(tmp_path: Path) -> None:
    run = write_run(tmp_path, [profiled_row({"n": 1}, "cpu", 1e-3, 1e-3,
                                            peak_flops_ceiling=1e9, peak_bytes_ceiling=1e12)])
    write_ops(run, profile_ops("demo/matmul[n=1]", "cpu", [("mm", "matmul", 1e-3, 2e6, 1e5)]))
    (point,) = profile.category_points(profile.breakdowns(*loaded(run)))
    fraction, name = profile.roof_fraction(point)  # 2 GFLOP/s against a 1 GFLOP/s ceiling
    assert math.isnan(fraction) and name == "above the ceiling roof (1 GFLOP/s): that roof is wrong"
    (row,) = profile.roofline_table([point]).rows  # type: ignore[union-attr]
    assert row[5] == name


# --- the report ------------------------------------------------------------------------------


def test_the_report_gathers_the_profile_of_the_latest_runs(tmp_path: Path) -> None:
    from harness.report.build import gather

    old = profiled_run(tmp_path, started="2026-01-01T00:00:00+00:00")
    new = write_run(tmp_path, [profiled_row({"n": 64, "impl": "a"}, "cpu", 1e-3, 1e-3)],
                    started="2026-01-02T00:00:00+00:00")
    write_ops(new, profile_ops(N64, "cpu", [("mm", "matmul", 1e-3, None, None)]))
    report = gather([old, new])
    first = report.profile[0]
    # n=64 on cpu comes from the newer run (one operator), xla-cpu's from the older one.
    assert first.title == f"Where the time goes: {N64}"
    assert [row[0] for row in first.rows[:3]] == ["matmul", "elementwise", "unattributed"]
    assert first.rows[0][1:] == ("1 ms 100%", "400 µs 80%")
    assert first.rows[1][1:] == ("-", "50 µs 10%")
    assert [p.title for p in report.profile_plots] == ["Where the time goes",
                                                       "Roofline by category"]
    assert all(p.png and p.png.startswith(b"\x89PNG") for p in report.profile_plots)
    assert gather([old], plots=False).profile_plots == ()


def test_an_unprofiled_report_has_no_profile_section(tmp_path: Path) -> None:
    from harness.report.build import write_report

    run = write_run(tmp_path / "results", [ok_row("w", {"n": 1}, "cpu", 1e-3)])
    page = write_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    text = write_report([run], tmp_path / "r.md").read_text(encoding="utf-8")
    assert 'id="profile"' not in page and "## Profile" not in text


def test_html_and_markdown_show_the_profile_with_names_escaped(tmp_path: Path) -> None:
    from harness.report.build import write_report
    from tests.report.test_build import XSS

    hostile = op_row(N64, "xla-cpu", XSS, "other", 1e-5, 5e-4)
    run = profiled_run(tmp_path / "results", [{k: v for k, v in hostile.items()
                                               if k != "run_id"}])
    page = write_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<a href="#profile">Profile</a>' in page and '<h2 id="profile">Profile</h2>' in page
    section = page.split('<h2 id="profile">', 1)[1].split("<h2 ", 1)[0]
    assert section.count("<img ") == 2  # the stacked bars and the roofline by category
    assert f"<h4>Top operators: {N64} on cpu</h4>" in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and XSS not in page
    text = write_report([run], tmp_path / "r.md").read_text(encoding="utf-8")
    assert "## Profile" in text
    assert "#### Where the time goes: demo/matmul\\[n=64,impl=a\\]" in text
    assert "| matmul | 1.26 ms 60% | 400 µs 80% |" in text
    assert "#### Roofline by category" in text and XSS not in text


def test_stacked_bars_split_beyond_their_bound(tmp_path: Path) -> None:
    from harness.report import profile_plots

    ops: list[dict[str, Any]] = []
    rows = []
    for n in range(profile_plots.MAX_BARS + 1):
        rows.append(profiled_row({"n": n}, "cpu", 1e-3, 1e-3))
        ops += profile_ops(f"demo/matmul[n={n}]", "cpu", [("mm", "matmul", 1e-3, None, None),
                                                          ("x", "custom", 1e-4, None, None)])
    run = write_run(tmp_path, rows)
    write_ops(run, ops)
    found = profile.breakdowns(*loaded(run))
    plots = profile_plots.stacked_bars(found)
    assert [p.title for p in plots] == ["Where the time goes (1/2)", "Where the time goes (2/2)"]
    assert profile_plots.stacked_bars([]) == [] and profile_plots.category_roofline([]) == []
    assert profile_plots.category_colours(["matmul", "custom"])["custom"] == "#aec7e8"


def test_harness_run_prints_where_the_time_goes_after_the_table(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from harness.cli import main
    from harness.results import read_rows

    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it
    fast = ["--min-time", "0.02", "--min-samples", "5", "--no-isolate", "--no-collect"]
    assert main(["run", "-w", "ffn", "-a", "null", "--out", str(tmp_path), *fast]) == 0
    assert "where the time goes" not in capsys.readouterr().out  # not profiled: nothing said
    (run,) = tmp_path.iterdir()
    (row,) = read_rows(run)
    write_ops(run, profile_ops(row["case_id"], "null", [("null.call", "host", 5e-8, None, None)]))
    # Resuming a finished run executes nothing and prints its tables again.
    assert main(["run", "--resume", str(run), "--no-isolate"]) == 0
    out = capsys.readouterr().out
    table, profiled = out.index("  null  "), out.index("where the time goes")
    assert table < profiled < out.index("run folder:")
    assert "host           50 ns 100%" in out
