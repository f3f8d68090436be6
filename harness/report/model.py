"""The report's document model: everything a report says, as plain (unescaped) text in frozen
dataclasses and PNG bytes. ``build`` fills it in from result rows; ``html`` and ``markdown``
only lay it out and escape it, so both formats carry the same content."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from harness.report.canvas import Plot
from harness.report.summary import Summary
from harness.report.warnings import ReportWarning

#: The figures of each adapter's column group, in order.
REPORT_FIGURES = ("median ± 95% CI", "p99", "throughput", "peak memory", "energy / item",
                  "% of peak", "check")
#: The ones the page shows side by side per adapter (by index into REPORT_FIGURES): three
#: backends' groups then fit a 1400-px page. The rest are folded under each table, one line
#: per case and adapter, so they fit however many backends ran.
MAIN_FIGURES = (0, 1, 6)
MORE_FIGURES = (2, 3, 4, 5)

Tone = Literal["", "bad", "warn", "muted"]


@dataclass(frozen=True)
class Cell:
    """One table cell as plain text: a value, a smaller second line, and hover text."""

    text: str
    detail: str = ""
    title: str = ""
    tone: Tone = ""


@dataclass(frozen=True)
class TableRow:
    """One case (and repetition): its varying parameters, then per adapter either one cell per
    figure or a single cell spanning them all (error, skipped, not run)."""

    labels: tuple[str, ...]
    cells: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Table:
    """One workload's cases × adapters."""

    suite: str
    workload: str
    fixed: str
    labels: tuple[str, ...]
    adapters: tuple[str, ...]
    rows: tuple[TableRow, ...]


@dataclass(frozen=True)
class PlainTable:
    """A titled table of plain text cells, with a note under it."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class Document:
    """Everything the page says, as plain (unescaped) text and PNG bytes."""

    #: what the report opens with: the answer, failures, skips and limitations.
    summary: Summary
    reference: str
    counts: tuple[tuple[str, int], ...]
    runs: tuple[tuple[str, ...], ...]
    environment: tuple[tuple[str, str], ...]
    adapters: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]
    warnings: tuple[ReportWarning, ...]
    notes: tuple[str, ...] = ()
    plots: tuple[Plot, ...] = field(default=())
    generated_at: str = ""
    #: load scenarios (``--scenario``): one table per case, then the peak QPS table.
    load: tuple[PlainTable, ...] = ()
    #: the profiling pass: per case its categories by backend and each backend's top
    #: operators, then the roofline by category; and their charts.
    profile: tuple[PlainTable, ...] = ()
    profile_plots: tuple[Plot, ...] = ()
