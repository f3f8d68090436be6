"""The report's tables of figures: one per workload, cases as rows and adapters as column
groups, each cell a plain-text ``Cell`` (value, second line, hover text, tone).

A cell says what its figure is and, where it is empty, why (the row's ``missing`` reason).
The speedup beside a median is :func:`harness.report.summary.speedup`, the same figure the
summary reports: measured interleaved with its interval, or a ratio of medians that says it
has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.report import units
from harness.report.model import Cell, Table, TableRow
from harness.report.summary import speedup
from harness.report.warnings import NOISY_CI, ci_half
from harness.workload import format_value

Row = dict[str, Any]


def by_workload(rows: Sequence[Row]) -> dict[tuple[str, str], list[Row]]:
    """Rows by (suite, workload), in first-seen order."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((str(row.get("suite")), str(row.get("workload"))), []).append(row)
    return groups


def varying(rows: Sequence[Row]) -> list[str]:
    """The parameters whose value differs between ``rows``, in first-seen order."""
    keys = list(dict.fromkeys(k for row in rows for k in row.get("params") or {}))
    return [k for k in keys if len({format_value(row["params"].get(k, "")) for row in rows}) > 1]


def tables(rows: Sequence[Row], reference: str = "cpu") -> list[Table]:
    """One table per workload (grouped by suite in order): cases as rows, adapters as column
    groups; parameters shared by every case go in the heading, the varying ones are columns."""
    adapters = tuple(dict.fromkeys(str(row["adapter"]) for row in rows))
    compare = reference if len(adapters) > 1 and reference in adapters else None
    base = {(row["case_id"], row["repetition"]): row for row in rows
            if row["adapter"] == compare}
    out = []
    for (suite, workload), group in sorted(by_workload(rows).items(), key=lambda g: g[0][0]):
        names = varying(group)
        first = group[0].get("params") or {}
        fixed = " ".join(f"{k}={format_value(v)}" for k, v in first.items() if k not in names)
        repeated = len({row["repetition"] for row in group}) > 1
        labels = (*names, *(("rep",) if repeated else ()))
        cases: dict[tuple[str, int], dict[str, Row]] = {}
        for row in group:
            cases.setdefault((row["case_id"], row["repetition"]), {})[row["adapter"]] = row
        used = tuple(a for a in adapters if any(a in by for by in cases.values()))
        body = []
        for (case, rep), by_adapter in cases.items():
            params = next(iter(by_adapter.values())).get("params") or {}
            cells = tuple(_adapter_cells(by_adapter.get(a), base.get((case, rep)), compare)
                          for a in used)
            label = tuple(format_value(params.get(k, "")) for k in names)
            body.append(TableRow((*label, *((str(rep),) if repeated else ())), cells))
        out.append(Table(suite, workload, fixed, labels, used, tuple(body)))
    return out


def _adapter_cells(row: Row | None, base: Row | None, reference: str | None) -> tuple[Cell, ...]:
    if row is None:
        return (Cell("not run", tone="muted"),)
    status = str(row.get("status"))
    if status != "ok":
        message = str(row.get("message") or "")
        short = message if len(message) <= 240 else message[:239] + "…"
        return (Cell(status, short, message, "bad" if status == "error" else "muted"),)
    return (_median_cell(row, base, reference), _p99_cell(row), _throughput_cell(row),
            _memory_cell(row), _energy_cell(row), _peak_cell(row), _check_cell(row))


def _median_cell(row: Row, base: Row | None, reference: str | None) -> Cell:
    half = ci_half(row)
    text = units.seconds(row.get("latency_median_s"))
    if half is not None:
        text += f" ±{half * 100:.1f}%"
    n, loops = row.get("n_samples"), row.get("loops")
    title = (f"95% CI {units.seconds(row.get('latency_ci_low_s'))} … "
             f"{units.seconds(row.get('latency_ci_high_s'))}; "
             f"{_int(n)} samples of {_int(loops)} calls")
    detail = ""
    found = speedup(row, base, reference) if reference else None
    if found is not None:
        detail = f"{found.text()} vs {reference}"
        title += f"; speedup {found.how()}"
    noisy = (half is not None and half > NOISY_CI) or row.get("warmup_steady") is False
    return Cell(text, detail, title, "warn" if noisy else "")


def _int(value: Any) -> str:
    return units.DASH if value is None else str(int(value))


def _p99_cell(row: Row) -> Cell:
    text = units.seconds(row.get("latency_p99_s"))
    if row.get("p99_low_confidence") and row.get("latency_p99_s") is not None:
        return Cell(text + "*", title=f"low confidence: {_int(row.get('n_samples'))} samples, "
                                      "662 needed", tone="warn")
    return Cell(text)


def _throughput_cell(row: Row) -> Cell:
    unit = str((row.get("meta") or {}).get("items_unit") or "items")
    return Cell(units.rate(row.get("throughput_items_per_s"), f"{unit}/s"))


def _why(row: Row, *columns: str) -> str:
    missing = row.get("missing") or {}
    return next((str(missing[c]) for c in columns if c in missing), "")


def _memory_cell(row: Row) -> Cell:
    rss, device = row.get("peak_rss_bytes"), row.get("peak_device_bytes")
    detail = f"device {units.size(device)}" if device is not None else ""
    title = str(row.get("peak_rss_source") or _why(row, "peak_rss_bytes"))
    return Cell(units.size(rss) + (" RSS" if rss is not None else ""), detail, title)


def _energy_cell(row: Row) -> Cell:
    source = str(row.get("energy_source") or "")
    value = row.get("energy_per_item_j")
    if value is None:
        why = _why(row, "energy_per_item_j", "energy_j") or source or "not measured"
        return Cell(units.DASH, "unavailable", why, "muted")
    net = row.get("energy_net_per_item_j")
    title = f"net of idle power: {_joules(net)}" if net is not None else source
    return Cell(_joules(value), source, title)


def _joules(value: Any) -> str:
    if value is None:
        return units.DASH
    v = float(value)
    for scale, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v / 1e-9:.3g} nJ"


def _peak_cell(row: Row) -> Cell:
    fraction = row.get("peak_fraction")
    if fraction is None:
        # No theoretical ceiling here (a VM hides the clock): the measured roof still tells.
        attainable = row.get("attainable_fraction")
        detail = ("" if units.missing(attainable)
                  else f"{units.percent(attainable)} of measured roof")
        return Cell(units.DASH, detail, _why(row, "peak_fraction", "peak_flops_per_s"), "muted")
    bound = row.get("roofline_bound")
    return Cell(units.percent(fraction), f"{bound}-bound" if bound else "",
                str(row.get("ceiling_source") or row.get("peak_source") or ""))


def _check_cell(row: Row) -> Cell:
    correct = row.get("correct")
    if correct is True:
        return Cell("pass")
    if correct is False:
        return Cell("FAIL", "", str(row.get("message") or ""), "bad")
    if (row.get("meta") or {}).get("check") == "test":  # an imported pytest-benchmark test
        return Cell("test", "", "the test's own assertions; the harness's check did not run",
                    "muted")
    return Cell(units.DASH, "", "not checked", "muted")
