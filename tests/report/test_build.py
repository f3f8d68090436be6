"""The report's content: runs loaded into tables, warnings, trend points; output format by name.

The synthetic runs here (several adapters, raw samples, a failed check, an error, a skip, empty
figures with reasons, markup in names) are shared by the other report tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.report.build import ReportError, gather, output_format, write_report
from harness.report.warnings import find_warnings
from harness.results import ResultsError, RunWriter

XSS = "<script>alert(1)</script>"
#: Breaks out of an attribute (a cell's hover text) unless quotes are escaped.
ATTR = '" onmouseover="alert(2)'
NO_RAPL = "no RAPL domains under /sys/class/powercap"


def samples(median: float, n: int = 40, spread: float = 0.02) -> list[float]:
    """Deterministic samples around ``median``: a symmetric ramp of ±spread."""
    return [median * (1 + spread * (2 * i / (n - 1) - 1)) for i in range(n)]


def ok_row(workload: str, params: dict[str, Any], adapter: str, median: float,
           **extra: Any) -> dict[str, Any]:
    """A successful row with every figure the report shows, derived from ``median``."""
    case = f"demo/{workload}[" + ",".join(f"{k}={v}" for k, v in params.items()) + "]"
    flops, nbytes = extra.pop("flops", 2e6), extra.pop("bytes", 1e5)
    row: dict[str, Any] = {
        "suite": "demo", "workload": workload, "case_id": case, "params": params,
        "adapter": adapter, "status": "ok", "message": "", "correct": True,
        "n_samples": 40, "loops": 1, "warmup_steady": True,
        "latency_median_s": median, "latency_ci_low_s": median * 0.99,
        "latency_ci_high_s": median * 1.01, "latency_p90_s": median * 1.1,
        "latency_p99_s": median * 1.2, "p90_low_confidence": True, "p99_low_confidence": True,
        "items": 8, "throughput_items_per_s": 8 / median, "flops": flops, "bytes": nbytes,
        "achieved_flops_per_s": flops / median if flops else None,
        "achieved_bytes_per_s": nbytes / median, "arithmetic_intensity": flops / nbytes,
        "peak_flops_per_s": 1e11, "peak_bytes_per_s": 1e10, "peak_fraction": 0.25,
        "roofline_bound": "compute", "peak_source": "measured: matmul",
        "peak_rss_bytes": 300 * 2**20, "peak_rss_source": "psutil-sampled-10ms",
        "energy_per_item_j": None, "energy_source": f"unavailable: {NO_RAPL}",
        "missing": {"energy_j": NO_RAPL, "energy_per_item_j": NO_RAPL,
                    "peak_device_bytes": f"the {adapter} adapter has no device memory"},
        "meta": {"items_unit": "sequences", "dtype": "float32"},
        "samples_s": samples(median), "repetition": 0,
    }
    row.update(extra)
    return row


def synthetic_rows(xss: bool = False) -> list[dict[str, Any]]:
    """Two adapters over two matmul sizes and a lookup, with every kind of trouble."""
    rows = [
        ok_row("matmul", {"n": 64, "impl": "a"}, "cpu", 4e-3),
        ok_row("matmul", {"n": 64, "impl": "a"}, "xla-cpu", 1e-3, peak_fraction=0.5,
               energy_per_item_j=2e-3, energy_source="rapl:package-0",
               energy_net_per_item_j=1e-3, missing={}),
        ok_row("matmul", {"n": 128, "impl": "a"}, "cpu", 8e-3,
               latency_ci_low_s=7e-3, latency_ci_high_s=9e-3),  # ±12.5%: noisy
        ok_row("matmul", {"n": 128, "impl": "a"}, "xla-cpu", 16e-3, correct=False,
               message="check failed: max abs diff 0.3"),
        ok_row("lookup", {"keys": 1000}, "cpu", 2e-4, flops=0.0, bytes=4e6,
               roofline_bound="memory", warmup_steady=False,
               message="warm-up did not settle within 2 s"),
        {"suite": "demo", "workload": "lookup", "case_id": "demo/lookup[keys=1000]",
         "params": {"keys": 1000}, "adapter": "xla-cpu", "status": "skipped",
         "message": "host-only lookup: no graph to compile"},
        {"suite": "demo", "workload": "broken", "case_id": "demo/broken[n=1]",
         "params": {"n": 1}, "adapter": "cpu", "status": "error",
         "message": "timing failed: RuntimeError: boom"},
    ]
    if xss:
        rows.append(ok_row(XSS, {"name": XSS}, "cpu", 1e-3, correct=False,
                           message=XSS + ATTR))
        rows.append({"suite": "demo", "workload": XSS, "case_id": f"demo/{XSS}[name=x]",
                     "params": {"name": "x"}, "adapter": "xla-cpu", "status": "error",
                     "message": XSS})
    return rows


BACKENDS = ("cpu", "onnxruntime", "xla-cpu")


def interleaved(row: dict[str, Any], value: float | None, low: float | None = None,
                high: float | None = None, reference: str = "cpu") -> dict[str, Any]:
    """``row`` as an interleaved run writes it: its speedup over ``reference`` and interval."""
    return {**row, "interleaved": True, "speedup_reference": reference, "speedup": value,
            "speedup_ci_low": low, "speedup_ci_high": high}


def three_backend_rows() -> list[dict[str, Any]]:
    """An interleaved run on cpu, onnxruntime and xla-cpu as a new user's suite gives it: a
    model on all three, a plain Python function skipped on the graph backends, no RAPL and no
    device memory anywhere (host backends), long parameter values."""
    rows = []
    for n, base in ((64, 4e-3), (128, 9e-3)):
        params = {"n": n, "model_path": "/home/user/models/gpt2-small-config.json",
                  "dtype": "float32"}
        rows.append(interleaved(ok_row("gpt2", params, "cpu", base), None))
        rows.append(interleaved(ok_row("gpt2", params, "onnxruntime", base / 2.1), 2.1, 1.9,
                                2.3))
        rows.append(interleaved(ok_row("gpt2", params, "xla-cpu", base / 1.02), 1.02, 0.95,
                                1.1))
    params = {"n": 256, "model_path": "/home/user/models/gpt2-small-config.json",
              "dtype": "float32"}
    rows.append(interleaved(ok_row("gpt2", params, "cpu", 2e-2), None))
    rows.append(interleaved(ok_row("gpt2", params, "xla-cpu", 1.9e-2), 1.05, 1.01, 1.09))
    rows.append({"suite": "demo", "workload": "gpt2", "params": params,
                 "case_id": "demo/gpt2[n=256,model_path=/home/user/models/gpt2-small-config.json,"
                            "dtype=float32]", "adapter": "onnxruntime", "status": "error",
                 "message": "prepare failed: torch.onnx.export failed: /very/long/path/"
                            + "x" * 150 + "/model.onnx: Cannot detect fake_mode"})
    rows.append(interleaved(ok_row("sort", {"size": 1000}, "cpu", 5e-5, flops=0.0), None))
    for adapter in BACKENDS[1:]:
        rows.append({"suite": "demo", "workload": "sort", "case_id": "demo/sort[size=1000]",
                     "params": {"size": 1000}, "adapter": adapter, "status": "skipped",
                     "message": "host-only task: no torch module or tensor to export"})
    return rows


def context(host: str = "test-host", started: str = "2026-01-02T03:04:05+00:00",
            **extra: Any) -> dict[str, Any]:
    return {"host": host, "started_at": started, "git_sha": "0123456789abcdef",
            "command": ["harness", "run", "--quick"], "python": "3.11.7",
            "cpu_model": "Test CPU", "cpu_physical_cores": 2, "cpu_logical_cores": 4,
            "packages": {"torch": "2.13.0+cpu"},
            "adapters": {"cpu": {"name": "cpu", "threads": 2}, "xla-cpu": {"name": "xla-cpu"}},
            **extra}


def write_run(results: Path, rows: list[dict[str, Any]], **ctx: Any) -> Path:
    writer = RunWriter(results, context(**ctx))
    for row in rows:
        writer.append(row)
    writer.close()
    return writer.path


def test_output_format_follows_the_extension() -> None:
    assert output_format("r.html") == output_format("R.HTM") == "html"
    assert output_format("out/summary.md") == "markdown"
    with pytest.raises(ReportError, match=r"report\.txt.*\.html, \.htm, \.md"):
        output_format("report.txt")
    assert issubclass(ReportError, ResultsError) and issubclass(ReportError, ValueError)


def test_a_wrong_extension_fails_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="cannot tell the report format"):
        write_report([tmp_path / "absent"], tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()


def test_no_runs_and_bad_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no runs given"):
        gather([])
    with pytest.raises(ResultsError, match="not a run folder"):
        write_report([tmp_path / "absent"], tmp_path / "r.md")


def test_writes_markdown_and_creates_the_folder(tmp_path: Path) -> None:
    run = write_run(tmp_path / "results", synthetic_rows())
    path = write_report([run], tmp_path / "out" / "report.md")
    assert path == tmp_path / "out" / "report.md"
    assert path.read_text(encoding="utf-8").startswith("# Benchmark report\n")


def by_kind(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for warning in find_warnings(rows):
        out.setdefault(warning.kind, []).append(
            f"{warning.adapter}: {warning.cause or warning.text}")
    return out


def test_warnings_cover_every_kind_of_trouble(tmp_path: Path) -> None:
    report = gather([write_run(tmp_path, synthetic_rows())], plots=False)
    kinds: dict[str, list[str]] = {}
    for warning in report.warnings:
        kinds.setdefault(warning.kind, []).append(f"{warning.adapter}: {warning.text}")
    assert kinds["error"] == ["cpu: timing failed: RuntimeError: boom"]
    assert kinds["skipped"] == ["xla-cpu: host-only lookup: no graph to compile"]
    assert kinds["check"] == ["xla-cpu: check failed: max abs diff 0.3"]
    assert any("±12.5%" in text for text in kinds["noisy"])
    assert "cpu: warm-up did not settle within 2 s" in kinds["noisy"]
    # What rows share (the cause) apart from what is each row's own (its sample count).
    low = [w for w in report.warnings if w.kind == "low-confidence"]
    assert {(w.cause, w.text) for w in low} == {
        ("p90 and p99 from too few samples (64 needed for p90, 662 for p99): low confidence",
         "40 samples")}
    # Empty figures are grouped by adapter, figure and reason, naming every case.
    energy = [w for w in report.warnings if w.kind == "missing" and w.text.startswith("energy")]
    assert [(w.adapter, len(w.cases)) for w in energy] == [("cpu", 3), ("xla-cpu", 1)]
    assert energy[0].text == f"energy empty: {NO_RAPL}"


def test_tails_without_flags_and_figures_without_reasons() -> None:
    row = ok_row("w", {"n": 1}, "cpu", 1e-3, p90_low_confidence=False,
                 p99_low_confidence=False, latency_ci_low_s=None, n_samples=4,
                 throughput_items_per_s=None, missing={}, energy_per_item_j=1e-3)
    kinds = by_kind([row])
    assert kinds["low-confidence"] == ["cpu: no confidence interval for the median "
                                       "(6 samples needed)"]
    assert kinds["missing"] == ["cpu: throughput empty: no reason recorded"]


def test_tables_put_cases_in_rows_and_adapters_in_column_groups(tmp_path: Path) -> None:
    report = gather([write_run(tmp_path, synthetic_rows())], plots=False)
    matmul, lookup, broken = report.tables
    assert (matmul.suite, matmul.workload, matmul.fixed) == ("demo", "matmul", "impl=a")
    assert matmul.labels == ("n",) and matmul.adapters == ("cpu", "xla-cpu")
    (n64, n128) = matmul.rows
    assert n64.labels == ("64",)
    cpu, xla = n64.cells
    assert cpu[0].text == "4 ms ±1.0%" and cpu[0].detail == ""
    assert xla[0].detail == "4× vs cpu"  # 4 ms on the reference / 1 ms here
    assert cpu[1].text == "4.8 ms*" and cpu[1].tone == "warn"
    assert cpu[2].text == "2 ksequences/s"
    assert cpu[3].text == "300 MiB RSS"
    assert (cpu[4].text, cpu[4].detail, cpu[4].title) == ("-", "unavailable", NO_RAPL)
    assert (xla[4].text, xla[4].detail) == ("2 mJ", "rapl:package-0")
    assert (xla[5].text, xla[5].detail) == ("50%", "compute-bound")
    assert n128.cells[0][0].tone == "warn"  # the noisy median
    assert (n128.cells[1][6].text, n128.cells[1][6].tone) == ("FAIL", "bad")
    skipped = lookup.rows[0].cells[1]
    assert len(skipped) == 1 and skipped[0].text == "skipped" and skipped[0].tone == "muted"
    assert broken.adapters == ("cpu",) and broken.rows[0].cells[0][0].tone == "bad"


def test_the_peak_cell_is_against_the_ceiling_or_shows_the_measured_roof(tmp_path: Path) -> None:
    hidden = "no theoretical ceiling: the maximum clock is hidden"
    rows = [ok_row("matmul", {"n": 64}, "cpu", 4e-3, ceiling_source="FLOP/s: 2 cores × ..."),
            ok_row("matmul", {"n": 64}, "xla-cpu", 4e-3, peak_fraction=None,
                   attainable_fraction=1.09, missing={"peak_fraction": hidden})]
    (table,) = gather([write_run(tmp_path, rows)], plots=False).tables
    cpu, xla = table.rows[0].cells
    assert (cpu[5].text, cpu[5].title) == ("25%", "FLOP/s: 2 cores × ...")
    # No ceiling: no "% of peak", but the measured roof's fraction, over 1 if the case beat it.
    assert (xla[5].text, xla[5].detail, xla[5].title) == ("-", "109% of measured roof", hidden)


def test_a_case_not_run_on_an_adapter_spans_its_group(tmp_path: Path) -> None:
    rows = [ok_row("w", {"n": 1}, "cpu", 1e-3), ok_row("w", {"n": 2}, "cpu", 1e-3),
            ok_row("w", {"n": 2}, "xla-cpu", 1e-3)]
    (table,) = gather([write_run(tmp_path, rows)], plots=False).tables
    assert [len(cells) for cells in table.rows[0].cells] == [7, 1]
    assert table.rows[0].cells[1][0].text == "not run"


def test_repetitions_get_their_own_rows(tmp_path: Path) -> None:
    rows = [ok_row("w", {"n": 1}, "cpu", 1e-3, repetition=r) for r in range(3)]
    (table,) = gather([write_run(tmp_path, rows)], plots=False).tables
    assert table.labels == ("rep",)
    assert [row.labels for row in table.rows] == [("0",), ("1",), ("2",)]


def test_several_runs_show_the_latest_and_a_trend(tmp_path: Path) -> None:
    old = write_run(tmp_path, [ok_row("w", {"n": 1}, "cpu", 2e-3)],
                    started="2026-01-01T00:00:00+00:00")
    new = write_run(tmp_path, [ok_row("w", {"n": 1}, "cpu", 1e-3),
                               ok_row("v", {"n": 1}, "cpu", 1e-3)],
                    started="2026-01-02T00:00:00+00:00", host="newer-host")
    report = gather([new, old])  # order given does not matter: start times do
    assert [run[0] for run in report.runs] == [old.name, new.name]
    assert dict(report.environment)["host"] == "newer-host"
    assert report.tables[0].rows[0].cells[0][0].text.startswith("1 ms")
    assert any("latest run" in note for note in report.notes)
    assert [p.title for p in report.plots if p.title.startswith("Trend")] == ["Trend: demo/w"]


def test_a_single_run_has_no_trend(tmp_path: Path) -> None:
    report = gather([write_run(tmp_path, synthetic_rows())])
    titles = [p.title for p in report.plots]
    assert not any(t.startswith("Trend") for t in titles)
    assert {"Latency distributions: demo/matmul", "Speedup over cpu", "Roofline",
            "Peak memory"} <= set(titles)


def test_environment_and_adapter_info_come_from_the_context(tmp_path: Path) -> None:
    report = gather([write_run(tmp_path, synthetic_rows(), custom_fact="42")], plots=False)
    env = dict(report.environment)
    assert env["CPU"] == "Test CPU" and env["cores"] == "2 physical, 4 logical"
    assert env["command"] == "harness run --quick" and env["torch"] == "2.13.0+cpu"
    assert env["custom_fact"] == "42"  # facts this module does not know still appear
    assert dict(report.adapters)["cpu"] == "threads=2"
    assert report.runs[0][2:4] == ("test-host", "0123456789ab")


def test_importing_the_report_does_not_import_matplotlib() -> None:
    code = ("import sys, harness, harness.report.build, harness.report.html, "
            "harness.report.markdown, harness.report.plots; "
            "assert 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_reference_adapter_comes_first_whatever_ran_first(tmp_path: Path) -> None:
    run = write_run(tmp_path, [ok_row("w", {"n": 1}, "xla-cpu", 1e-3),
                               ok_row("w", {"n": 1}, "cpu", 2e-3)])
    (table,) = gather([run], plots=False).tables
    assert table.adapters == ("cpu", "xla-cpu")
    assert table.rows[0].cells[1][0].detail == "2× vs cpu"
    (table,) = gather([run], reference="xla-cpu", plots=False).tables
    assert table.adapters == ("xla-cpu", "cpu")
    assert table.rows[0].cells[1][0].detail == "0.5× vs xla-cpu"


def test_option_sets_of_one_adapter_are_columns_of_their_own(tmp_path: Path) -> None:
    rows = [ok_row("w", {"n": 1}, "cpu", 2e-3, adapter_label="cpu:threads=1"),
            ok_row("w", {"n": 1}, "cpu", 1e-3, adapter_label="cpu:threads=2")]
    report = gather([write_run(tmp_path, rows)], plots=False)
    assert report.tables[0].adapters == ("cpu:threads=1", "cpu:threads=2")
    assert report.reference == "cpu"  # two cpu option sets: neither is the reference
    report = gather([write_run(tmp_path, rows[1:])], plots=False)
    assert report.reference == "cpu:threads=2"  # the only cpu stands for it
