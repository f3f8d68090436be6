"""The report as one self-contained HTML page: inline CSS, charts as data: URIs, no script.

Every string that comes from results, the run context or the user passes through ``_e``
(``html.escape`` with quotes) exactly once, here, whatever it is: workload names, parameters,
messages, host names. A Content-Security-Policy that allows nothing but inline style and data:
images backs that up: were something ever left unescaped, the browser would still run no script
and fetch nothing from the network.
"""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Iterable, Sequence

from harness.report.canvas import Plot
from harness.report.model import (
    MAIN_FIGURES,
    MORE_FIGURES,
    REPORT_FIGURES,
    Cell,
    Document,
    PlainTable,
    Table,
)
from harness.report.summary import REGRESSION_HEADER
from harness.report.warnings import KINDS, Cause

#: Nothing but this page's own style and embedded images: no script, no network.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       margin: 0 auto; padding: 1.5em 2em 4em; max-width: 1500px; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
h3 { margin-top: 1.6em; } h4 { margin: 1.4em 0 0.3em; font-family: ui-monospace, monospace; }
.meta, .fixed, .note, small { color: #555; }
.fixed { font-family: ui-monospace, monospace; font-size: 12px; margin: 0 0 0.5em; }
nav a { margin-right: 1.2em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12.5px; margin: 0.3em 0 0.6em; }
th, td { border: 1px solid #ddd; padding: 3px 7px; vertical-align: top; text-align: left; }
thead th { background: #f4f5f7; } th.adapter { text-align: center; background: #e8ecf3; }
td small { display: block; font-size: 11px; }
td.bad { background: #fde8e8; color: #8a1111; } td.warn { background: #fff6dc; }
td.muted { color: #888; } tr:hover td { background-color: #f7f9fc; }
td.num { white-space: nowrap; } td.num small { white-space: normal; }
td[colspan] { overflow-wrap: anywhere; } td[colspan] small { max-width: 40em; }
p, li, summary { overflow-wrap: break-word; }
#summary { border-bottom: 1px solid #ddd; padding-bottom: 0.6em; }
#summary h2 { margin-top: 1em; border: none; } #summary h3 { margin-top: 1em; }
.causes li { margin: 0.25em 0; } .causes .error, .causes .check { color: #8a1111; }
.regressed { color: #8a1111; font-weight: 600; }
.env td:first-child { white-space: nowrap; font-weight: 600; }
.env td { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-word; }
figure { margin: 1.2em 0 2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-weight: 600; margin-bottom: 0.4em; }
.omitted { padding: 0.6em 1em; background: #f4f5f7; border-left: 4px solid #aaa; }
details summary { cursor: pointer; color: #555; }
code { font-size: 12px; overflow-wrap: anywhere; }
"""

#: A cause touching more rows than this lists them folded, even in the summary.
FOLD_AFTER = 3


def _e(value: object) -> str:
    """The one escaping step for every piece of text that is not this module's own markup."""
    return html.escape(str(value), quote=True)


def render(report: Document) -> str:
    """The whole page as one string."""
    body = [*_summary(report), *_warnings(report.summary.warnings), *_results(report),
            *_profile(report), *_load(report), *_charts(report.plots), *_environment(report)]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Benchmark report</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        *body,
        "</body>",
        "</html>",
    ]) + "\n"


def _summary(report: Document) -> list[str]:
    """The answer first, in ``<section id="summary">``: the fastest backend per workload, the
    comparison, failures, skips and limitations; then the page's contents."""
    counts = ", ".join(f"{n} {status}" for status, n in report.counts) or "no results"
    total = sum(n for _, n in report.counts)
    meta = (f"{total} results ({counts}) from {len(report.runs)} run"
            f"{'s' * (len(report.runs) != 1)}; speedups against {report.reference}; "
            f"generated {report.generated_at}")
    s = report.summary
    out = ['<section id="summary">', "<h1>Benchmark report</h1>", f'<p class="meta">{_e(meta)}</p>',
           *(f'<p class="note">{_e(note)}</p>' for note in report.notes)]
    if s.fastest:
        out += ["<h2>Fastest backend per workload</h2>" if len(s.header) > 3
                else "<h2>Per workload</h2>", *_plain_table(s.header, s.fastest)]
    else:
        out.append("<p>No timing-loop result succeeded.</p>")
    if s.comparison:
        out += ["<h2>Comparison</h2>", f"<p><b>{_e(s.comparison)}</b></p>"]
        if s.regressions:
            out += _plain_table(REGRESSION_HEADER, s.regressions, "regressed")
    for title, group in (("Failed", s.failed), ("Skipped", s.skipped)):
        if group:
            rows = sum(len(cause.rows) for cause in group)
            out += [f"<h2>{title} ({rows})</h2>", '<ul class="causes">',
                    *(_cause(cause, fold=len(cause.rows) > FOLD_AFTER) for cause in group),
                    "</ul>"]
    if s.limitations:
        out += ["<h2>Limitations of this machine and its backends</h2>", "<ul>",
                *(f"<li>{_e(line)}</li>" for line in s.limitations), "</ul>"]
    if s.warnings:
        out.append(f'<p><a href="#warnings">{len(s.warnings)} more warning causes</a>, '
                   "each with the rows it touches.</p>")
    return [*out, "</section>", _nav(report)]


def _nav(report: Document) -> str:
    links = [("warnings", f"Warnings ({len(report.summary.warnings)})"), ("results", "Results"),
             *((("profile", "Profile"),) if report.profile else ()),
             *((("load", "Under load"),) if report.load else ()),
             ("charts", "Charts"), ("environment", "Environment")]
    return "<nav>" + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in links) + "</nav>"


def _warnings(causes: Sequence[Cause]) -> list[str]:
    """Every other warning, grouped by kind, each cause once and folded over its rows."""
    out = ['<h2 id="warnings">Warnings</h2>']
    if not causes:
        return [*out, "<p>None beyond the summary.</p>"]
    for kind, heading in KINDS:
        group = [cause for cause in causes if cause.kind == kind]
        if group:
            out += [f"<h3>{_e(heading)} ({len(group)})</h3>", '<ul class="causes">',
                    *(_cause(cause, fold=True) for cause in group), "</ul>"]
    return out


def _cause(cause: Cause, fold: bool) -> str:
    """A cause said once, with the rows it touches, each case once with its adapters (folded
    under the cause when ``fold``)."""
    touches = [f"<code>{_e(case)}</code> on " + ", ".join(
        f"<b>{_e(t.adapter)}</b>" + (f" ({_e(t.detail)})" if t.detail else "") for t in rows)
        for case, rows in cause.by_case()]
    if not fold:
        return f'<li class="{_e(cause.kind)}">{_e(cause.text)} — {"; ".join(touches)}</li>'
    rows = len(cause.rows)
    where = cause.scope or f"{rows} row{'s' * (rows != 1)} on {', '.join(cause.adapters)}"
    items = "".join(f"<li>{t}</li>" for t in touches)
    return (f'<li class="{_e(cause.kind)}"><details><summary>{_e(cause.text)} '
            f"<small>({_e(where)})</small></summary><ul>{items}</ul></details></li>")


def _results(report: Document) -> list[str]:
    out = ['<h2 id="results">Results</h2>']
    if not report.tables:
        what = ("No timing-loop results in these runs: the load scenarios are under "
                "<a href=\"#load\">Under load</a>." if report.load else "No results in these runs.")
        return [*out, f"<p>{what}</p>"]
    out.append('<p class="note">Median with the half-width of its distribution-free 95% '
               "confidence interval; p99 marked * from fewer than 662 samples (low confidence); "
               "peak memory is the process's resident set (and the device's where there is one). "
               "Hover a cell for its details.</p>")
    suite = None
    for table in report.tables:
        if table.suite != suite:
            suite = table.suite
            out.append(f"<h3>{_e(suite)}</h3>")
        out += _table(table)
    return out


def _table(table: Table) -> list[str]:
    """The main figures with adapters side by side; the rest folded under it, one line per
    case and adapter, so the table fits the page whatever the number of backends."""
    main = [REPORT_FIGURES[i] for i in MAIN_FIGURES]
    out = [f"<h4>{_e(table.suite)}/{_e(table.workload)}</h4>"]
    if table.fixed:
        out.append(f'<p class="fixed">{_e(table.fixed)}</p>')
    labels = table.labels or ("case",)
    head = [f'<th rowspan="2">{_e(label)}</th>' for label in labels]
    head += [f'<th class="adapter" colspan="{len(main)}">{_e(a)}</th>' for a in table.adapters]
    figures = "".join(f"<th>{_e(f)}</th>" for f in main) * len(table.adapters)
    out += ['<div class="scroll"><table>', "<thead>", f"<tr>{''.join(head)}</tr>",
            f"<tr>{figures}</tr>", "</thead>", "<tbody>"]
    more = []
    for row in table.rows:
        names = row.labels or (table.workload,)
        cells = [f"<td>{_e(label)}</td>" for label in names]
        for adapter, group in zip(table.adapters, row.cells, strict=True):
            if len(group) == 1:
                cells.append(_cell(group[0], len(main)))
                continue
            cells += [_cell(group[i]) for i in MAIN_FIGURES]
            more.append("<tr>" + "".join(f"<td>{_e(x)}</td>" for x in (*names, adapter))
                        + "".join(_cell(group[i]) for i in MORE_FIGURES) + "</tr>")
        out.append(f"<tr>{''.join(cells)}</tr>")
    out += ["</tbody>", "</table></div>"]
    if more:
        rest = [REPORT_FIGURES[i] for i in MORE_FIGURES]
        header = "".join(f"<th>{_e(h)}</th>" for h in (*labels, "adapter", *rest))
        out += [f"<details><summary>{_e(', '.join(rest))}</summary>",
                f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>',
                *more, "</tbody></table></div></details>"]
    return out


def _cell(cell: Cell, span: int = 1) -> str:
    classes = " ".join(c for c in (cell.tone, "num" if span == 1 else "") if c)
    attributes = (f' class="{classes}"' if classes else "") + (
        f' colspan="{span}"' if span > 1 else "") + (
        f' title="{_e(cell.title)}"' if cell.title else "")
    detail = f"<small>{_e(cell.detail)}</small>" if cell.detail else ""
    return f"<td{attributes}>{_e(cell.text)}{detail}</td>"


def _load(report: Document) -> list[str]:
    """The load scenarios' tables (one per case) and the peak QPS table."""
    if not report.load:
        return []
    return ['<h2 id="load">Under load</h2>', *_titled_tables(report.load)]


def _profile(report: Document) -> list[str]:
    """The profiling pass: where the time goes (charts), then per case its tables."""
    if not report.profile:
        return []
    out = ['<h2 id="profile">Profile</h2>']
    for plot in report.profile_plots:
        out += _figure(plot)
    return out + _titled_tables(report.profile)


def _titled_tables(tables: Iterable[PlainTable]) -> list[str]:
    out = []
    for table in tables:
        out.append(f"<h4>{_e(table.title)}</h4>")
        out += _plain_table(table.header, table.rows)
        if table.note:
            out.append(f'<p class="note">{_e(table.note)}</p>')
    return out


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (bytes 16–24), so the page reserves space."""
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def _charts(plots: Sequence[Plot]) -> list[str]:
    out = ['<h2 id="charts">Charts</h2>']
    if not plots:
        return [*out, '<p class="omitted">No charts in this report.</p>']
    for plot in plots:
        out += _figure(plot)
    return out


def _figure(plot: Plot) -> list[str]:
    """A chart as an embedded image with its caption and note, or the note of its absence."""
    if plot.png is None:
        return [f'<p class="omitted"><b>{_e(plot.title)}</b>, not drawn: {_e(plot.note)}</p>']
    width, height = png_size(plot.png)
    data = base64.b64encode(plot.png).decode("ascii")
    out = ["<figure>", f"<figcaption>{_e(plot.title)}</figcaption>",
           f'<img src="data:image/png;base64,{data}" alt="{_e(plot.title)}" '
           f'width="{width}" height="{height}">']
    if plot.note:
        out.append(f'<p class="note">{_e(plot.note)}</p>')
    return [*out, "</figure>"]


def _environment(report: Document) -> list[str]:
    out = ['<h2 id="environment">Environment</h2>', "<h3>Runs</h3>"]
    out += _plain_table(("run", "started", "host", "git SHA", "command"), report.runs)
    if report.environment:
        out.append("<h3>Latest run</h3>")
        out += _plain_table(None, report.environment, "env")
    if report.adapters:
        out.append("<h3>Adapters</h3>")
        out += _plain_table(("adapter", "info"), report.adapters, "env")
    return out


def _plain_table(header: Sequence[str] | None, rows: Iterable[Sequence[str]],
                 css: str = "") -> list[str]:
    out = [f'<div class="scroll"><table class="{_e(css)}">' if css
           else '<div class="scroll"><table>']
    if header:
        out.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>")
    out += ["<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows]
    return [*out, "</table></div>"]
