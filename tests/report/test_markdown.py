"""The Markdown report: the same content as the page, inert names, well-formed tables, no images."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.report.build import write_report
from harness.report.markdown import _md
from tests.report.test_build import XSS, synthetic_rows, write_run


@pytest.fixture(scope="module")
def text(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("md")
    run = write_run(tmp / "results", synthetic_rows(xss=True), host=XSS)
    return write_report([run], tmp / "report.md").read_text(encoding="utf-8")


def test_cells_are_inert() -> None:
    assert _md(XSS) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert _md("a|b\nc") == "a&#124;b c"
    assert _md("*bold* _it_ `code` [link](x) ~s~ \\") == (
        r"\*bold\* \_it\_ \`code\` \[link\](x) \~s\~ \\")
    assert _md("R&D \"q\"") == 'R&amp;D "q"'


def test_no_markup_from_results_survives(text: str) -> None:
    assert "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<" not in text.replace("<br>", "")  # no HTML at all


def test_tables_are_well_formed_with_one_line_per_case_and_adapter(text: str) -> None:
    tables = re.findall(r"(?m)^#### (.+)\n\n(?:Parameters: .+\n\n)?((?:\|.*\n)+)", text)
    assert [name for name, _ in tables][:3] == ["demo/matmul", "demo/lookup", "demo/broken"]
    for _, body in tables:
        widths = {line.count("|") for line in body.splitlines()}
        assert len(widths) == 1, body  # an escaped pipe never splits a cell
    matmul = tables[0][1].splitlines()
    assert matmul[0] == ("| n | adapter | median ± 95% CI | p99 | throughput | peak memory | "
                         "energy / item | % of peak | check |")
    assert matmul[3] == ("| 64 | xla-cpu | 1 ms ±1.0% (4× vs cpu) | 1.2 ms\\* | 8 ksequences/s | "
                         "300 MiB RSS | 2 mJ (rapl:package-0) | 50% (compute-bound) | pass |")
    lookup = tables[1][1].splitlines()  # one case: no parameter varies, the workload names it
    assert lookup[0].startswith("| case | adapter |")
    assert lookup[3] == ("| lookup | xla-cpu | skipped (host-only lookup: no graph to compile) "
                         "|  |  |  |  |  |  |")


def test_the_summary_comes_first(text: str) -> None:
    sections = re.findall(r"(?m)^## (.+)$", text)
    assert sections[:3] == ["Summary", "Warnings", "Results"]
    summary = text.split("## Summary\n\n", 1)[1].split("## Warnings", 1)[0]
    assert summary.startswith("| workload | fastest | speedup over cpu (95% interval) | "
                              "measured |\n|---|---|---|---|\n")
    assert ("| demo/matmul | xla-cpu on 1 of 2 cases; cpu on 1 | n=64: 4×; n=128: only cpu "
            "has a result (xla-cpu failed the check) | not interleaved: ratio of medians, no "
            "interval |") in summary
    assert "**Failed (4)**" in summary and "**Skipped (1)**" in summary
    assert "- timing failed: RuntimeError: boom (demo/broken\\[n=1\\] on **cpu**)" in summary
    assert ("- energy empty: no RAPL domains under /sys/class/powercap — every case on cpu"
            in summary)


def test_warnings_environment_and_a_note_instead_of_images(text: str) -> None:
    assert "### Noisy measurements (2)" in text and "### Errors" not in text
    assert ("- p90 and p99 from too few samples (64 needed for p90, 662 for p99): low "
            "confidence (every case on every backend (cpu, xla-cpu): 40 samples)") in text
    assert "![" not in text and "data:image" not in text
    assert "drawn only in the HTML report" in text
    assert "| CPU | Test CPU |" in text
    assert "| cpu | threads=2 |" in text


def test_markdown_needs_no_matplotlib_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.report.plots as plots

    def fail(*_: object) -> None:
        raise AssertionError("a chart was drawn for Markdown")

    for name in ("latency_distributions", "speedup", "roofline", "memory", "trend"):
        monkeypatch.setattr(plots, name, fail)
    run = write_run(tmp_path / "results", synthetic_rows())
    assert write_report([run], tmp_path / "r.md").stat().st_size > 0
