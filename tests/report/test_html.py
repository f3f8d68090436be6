"""The HTML page: self-contained, every result string escaped, sections and tables in place."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pytest

from harness.report.build import gather, write_report
from harness.report.html import CSP, png_size, render
from tests.report.test_build import XSS, ok_row, synthetic_rows, write_run

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One full page (with charts) over the synthetic runs, markup in names included."""
    tmp = tmp_path_factory.mktemp("html")
    run = write_run(tmp / "results", synthetic_rows(xss=True), host=XSS,
                    command=["harness", "run", "-w", XSS])
    return write_report([run], tmp / "report.html").read_text(encoding="utf-8")


def test_markup_from_results_and_context_is_only_ever_escaped(page: str) -> None:
    assert "<script" not in page.lower()  # the page itself has no script at all
    assert XSS not in page
    assert "onmouseover" in page and 'onmouseover="' not in page  # quotes in attributes
    assert f'title="{ESCAPED}&quot; onmouseover=&quot;alert(2)"' in page
    # Workload name (heading, table, chart title), parameter value, message, host, command.
    assert page.count(ESCAPED) >= 6
    assert f"<td>{ESCAPED}</td>" in page  # the parameter value in its column
    assert f'<td>{ESCAPED}</td>' in page.split('id="environment"')[1]  # the host name


def test_the_page_is_self_contained(page: str) -> None:
    assert f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CSP)}">' in page
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert sources, "expected images and in-page links"
    assert all(s.startswith(("data:image/png;base64,", "#")) for s in sources)
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "@import" not in page


def test_every_chart_is_a_real_png_with_its_size(page: str) -> None:
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="[^"]*" '
                        r'width="(\d+)" height="(\d+)">', page)
    assert len(images) >= 4  # latency per workload, speedup, roofline, memory
    for data, width, height in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert png_size(png) == (int(width), int(height))
        assert 400 < int(width) <= 1000 and 100 < int(height) <= 2000


def test_sections_tables_and_warnings(page: str) -> None:
    for anchor in ("summary", "warnings", "results", "charts", "environment"):
        assert f'id="{anchor}"' in page
    # Adapters as column groups over the three main figures; an error spans its group.
    assert '<th class="adapter" colspan="3">cpu</th>' in page
    assert '<th class="adapter" colspan="3">xla-cpu</th>' in page
    assert re.search(r'<td class="bad" colspan="3" title="timing failed: RuntimeError: boom">'
                     r"error<small>timing failed", page)
    assert "4× vs cpu" in page
    # The other figures fold under each table, one line per case and adapter.
    assert "<details><summary>throughput, peak memory, energy / item, % of peak</summary>" in page
    assert "rapl:package-0" in page.split("throughput, peak memory, energy / item")[1]
    assert "<h2>Failed (4)</h2>" in page and "<h2>Skipped (1)</h2>" in page
    assert "<h3>Missing figures (2)</h3>" in page
    assert "Not on the chart, memory-bound by nature" in page  # the lookup on the roofline


def test_the_page_opens_with_the_summary(page: str) -> None:
    body = page.split("<body>", 1)[1].lstrip()
    assert body.startswith('<section id="summary">\n<h1>Benchmark report</h1>')
    summary = body.split("</section>", 1)[0]
    assert "<h2>Fastest backend per workload</h2>" in summary
    assert "<td>demo/matmul</td><td>xla-cpu on 1 of 2 cases; cpu on 1</td>" in summary
    assert "timing failed: RuntimeError: boom — <code>demo/broken[n=1]</code> on <b>cpu</b>" \
        in summary
    # A fact of the cpu backend, once; the warnings after it no longer say it for cpu.
    assert ("<li>energy empty: no RAPL domains under /sys/class/powercap — every case on cpu"
            "</li>") in summary
    warnings = page.split('<h2 id="warnings">', 1)[1].split('<h2 id="results">', 1)[0]
    energy = warnings.split("energy empty: no RAPL domains", 1)[1].split("</details>", 1)[0]
    assert "on <b>xla-cpu</b>" in energy and "on <b>cpu</b>" not in energy


def test_each_warning_cause_is_said_once_folded_over_its_rows(page: str) -> None:
    warnings = page.split('<h2 id="warnings">', 1)[1].split('<h2 id="results">', 1)[0]
    low = "p90 and p99 from too few samples (64 needed for p90, 662 for p99): low confidence"
    assert warnings.count(low) == 1
    item = warnings.split(low, 1)[1].split("</details>", 1)[0]
    assert item.startswith(" <small>(every case on every backend (cpu, xla-cpu))</small>"
                           "</summary>")
    # Each case once, with its adapters and their own detail: six rows over four cases.
    assert item.count("<li>") == 4 and item.count(" (40 samples)") == 6
    assert ("<li><code>demo/matmul[n=64,impl=a]</code> on <b>cpu</b> (40 samples), "
            "<b>xla-cpu</b> (40 samples)</li>") in item
    # Every cause sits in a <details> of its own.
    causes = warnings.count('<li class="')
    assert causes == warnings.count("<details>") == 5


def test_a_chart_without_data_is_a_note_never_a_blank_image(tmp_path: Path) -> None:
    rows = [ok_row("w", {"n": 1}, "cpu", 1e-3, samples_s=None, flops=0.0)]
    text = render(gather([write_run(tmp_path, rows)]))
    assert "<b>Latency distributions</b>, not drawn: no result holds raw samples" in text
    assert "<b>Speedup over cpu</b>, not drawn: only the reference adapter" in text
    assert "<b>Roofline</b>, not drawn: no successful case has floating-point work" in text
    assert text.count("<img") == 1  # memory is the one chart with data


def test_a_run_without_results_still_renders(tmp_path: Path) -> None:
    text = render(gather([write_run(tmp_path, [])], plots=True))
    assert "No results in these runs." in text and "0 results" in text
