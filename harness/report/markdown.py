"""The report as Markdown for CI job summaries and pull-request comments: no images.

The content is the HTML page's, laid out for Markdown: GitHub-flavoured tables have no column
groups, so each table has one line per case and adapter instead of adapters side by side.
Every string from results or the context passes through ``_md`` once: Markdown's own syntax is
backslash-escaped, ``& < >`` become HTML entities (GitHub renders inline HTML, so a
``<script>`` in a workload name must arrive as text), pipes cannot end a cell and newlines
cannot end a row.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from harness.report.model import REPORT_FIGURES, Cell, Document, PlainTable, Table
from harness.report.summary import REGRESSION_HEADER
from harness.report.warnings import KINDS, Cause

#: Markdown's inline syntax that could turn a name into emphasis, code, a link or a strike.
_SYNTAX = re.compile(r"([\\`*_\[\]~])")
#: Cases listed in a grouped warning before "and N more".
LIST_CASES = 5


def _md(value: object) -> str:
    """One table cell or line of text, inert: no markup, no HTML, no table breaks."""
    text = _SYNTAX.sub(r"\\\1", str(value))
    # Quotes are harmless in Markdown text (no attribute to break out of): left readable.
    text = html.escape(text, quote=False)
    return text.replace("|", "&#124;").replace("\r", " ").replace("\n", " ")


def render(report: Document) -> str:
    """The whole report as one Markdown document."""
    out = ["# Benchmark report", "", _md(_meta(report)), ""]
    for note in report.notes:
        out += [f"> {_md(note)}", ""]
    out += _summary(report)
    out += _warnings(report.summary.warnings)
    out += _results(report)
    out += _profile(report)
    out += _load(report)
    out += ["## Charts", "",
            "Charts (latency distributions, speedup, roofline, memory, trend, latency against "
            "load) are drawn only in the HTML report: `harness report RUN... -o report.html`.",
            ""]
    out += _environment(report)
    return "\n".join(out).rstrip() + "\n"


def _meta(report: Document) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in report.counts) or "no results"
    total = sum(n for _, n in report.counts)
    return (f"{total} results ({counts}) from {len(report.runs)} run"
            f"{'s' * (len(report.runs) != 1)}; speedups against {report.reference}; "
            f"generated {report.generated_at}")


def _summary(report: Document) -> list[str]:
    """The page's summary: the answer, the comparison, failures, skips and limitations."""
    s = report.summary
    out = ["## Summary", ""]
    if s.fastest:
        out += [_line(s.header), "|" + "---|" * len(s.header), *(_line(r) for r in s.fastest),
                ""]
    else:
        out += ["No timing-loop result succeeded.", ""]
    if s.comparison:
        out += [f"**Comparison: {_md(s.comparison)}**", ""]
        if s.regressions:
            out += [_line(REGRESSION_HEADER), "|" + "---|" * len(REGRESSION_HEADER),
                    *(_line(r) for r in s.regressions), ""]
    for title, group in (("Failed", s.failed), ("Skipped", s.skipped)):
        if group:
            rows = sum(len(cause.rows) for cause in group)
            out += [f"**{title} ({rows})**", "", *(_cause(cause) for cause in group), ""]
    if s.limitations:
        out += ["**Limitations of this machine and its backends**", "",
                *(f"- {_md(line)}" for line in s.limitations), ""]
    return out


def _warnings(causes: Sequence[Cause]) -> list[str]:
    out = ["## Warnings", ""]
    if not causes:
        return [*out, "None beyond the summary.", ""]
    for kind, heading in KINDS:
        group = [cause for cause in causes if cause.kind == kind]
        if group:
            out += [f"### {heading} ({len(group)})", "", *(_cause(c) for c in group), ""]
    return out


def _cause(cause: Cause) -> str:
    """- cause (case on adapter (detail), adapter; …; and N more cases): each cause once, with
    its rows; a cause on every case of its backends says so instead of listing them."""
    details = list(dict.fromkeys(t.detail for t in cause.rows))
    if cause.scope and len(details) == 1:
        detail = f": {_md(details[0])}" if details[0] else ""
        return f"- {_md(cause.text)} ({_md(cause.scope)}{detail})"
    cases = cause.by_case()
    touches = [f"{_md(case)} on " + ", ".join(
        f"**{_md(t.adapter)}**" + (f" ({_md(t.detail)})" if t.detail else "") for t in rows)
        for case, rows in cases[:LIST_CASES]]
    more = len(cases) - LIST_CASES
    listed = "; ".join(touches) + (f"; and {more} more cases" if more > 0 else "")
    return f"- {_md(cause.text)} ({listed})"


def _results(report: Document) -> list[str]:
    out = ["## Results", ""]
    if not report.tables:
        what = ("No timing-loop results in these runs: the load scenarios are under "
                "Under load." if report.load else "No results in these runs.")
        return [*out, what, ""]
    out += ["Median ± the half-width of its 95% confidence interval; p99 marked \\* from fewer "
            "than 662 samples (low confidence).", ""]
    suite = None
    for table in report.tables:
        if table.suite != suite:
            suite = table.suite
            out += [f"### {_md(suite)}", ""]
        out += _table(table)
    return out


def _load(report: Document) -> list[str]:
    """The load scenarios' tables and the peak QPS table."""
    if not report.load:
        return []
    return ["## Under load", "", *_titled_tables(report.load)]


def _profile(report: Document) -> list[str]:
    """The profiling pass: per case where the time goes by backend, the top operators, and the
    roofline by category (the stacked bars are drawn in the HTML report)."""
    if not report.profile:
        return []
    return ["## Profile", "", "Per call in the profiling pass after timing; the stacked bars "
            "are drawn in the HTML report.", "", *_titled_tables(report.profile)]


def _titled_tables(tables: Sequence[PlainTable]) -> list[str]:
    out = []
    for table in tables:
        out += [f"#### {_md(table.title)}", "", _line(table.header),
                "|" + "---|" * len(table.header), *(_line(row) for row in table.rows), ""]
        if table.note:
            out += [_md(table.note), ""]
    return out


def _text(cell: Cell) -> str:
    return cell.text + (f" ({cell.detail})" if cell.detail else "")


def _table(table: Table) -> list[str]:
    out = [f"#### {_md(table.suite)}/{_md(table.workload)}", ""]
    if table.fixed:
        out += [f"Parameters: {_md(table.fixed)}", ""]
    header = (*(table.labels or ("case",)), "adapter", *REPORT_FIGURES)
    lines = [_line(header), "|" + "---|" * len(header)]
    for row in table.rows:
        labels = row.labels or (table.workload,)
        for adapter, cells in zip(table.adapters, row.cells, strict=True):
            if len(cells) == 1:  # error, skipped, not run: status and message, no figures
                texts = [_text(cells[0]), *[""] * (len(REPORT_FIGURES) - 1)]
            else:
                texts = [_text(cell) for cell in cells]
            lines.append(_line((*labels, adapter, *texts)))
    return [*out, *lines, ""]


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_md(cell) for cell in cells) + " |"


def _environment(report: Document) -> list[str]:
    out = ["## Environment", "", "### Runs", "",
           _line(("run", "started", "host", "git SHA", "command")), "|---|---|---|---|---|"]
    out += [_line(run) for run in report.runs]
    if report.environment:
        out += ["", "### Latest run", "", "| | |", "|---|---|"]
        out += [_line(pair) for pair in report.environment]
    if report.adapters:
        out += ["", "### Adapters", "", "| adapter | info |", "|---|---|"]
        out += [_line(pair) for pair in report.adapters]
    return [*out, ""]
