"""``harness report``: gathers runs into one report (tables, warnings, plots, environment) and
writes it as a self-contained HTML page or as Markdown, chosen by the output's extension.

This module decides *what* the report says, as a ``model.Document`` of plain text; ``html`` and
``markdown`` only lay it out and escape it, so both formats carry the same content and no string
reaches a page without passing through exactly one escaping step.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.report import html, markdown, scenarios, units
from harness.report.canvas import Plot
from harness.report.figures import by_workload, tables, varying
from harness.report.model import Document, PlainTable
from harness.report.plots import TrendPoint
from harness.report.summary import summarize
from harness.report.warnings import find_warnings
from harness.results import ResultsError, read_context, read_rows, run_folders
from harness.schema import JSON_COLUMNS
from harness.workload import format_value

if TYPE_CHECKING:
    from harness.compare import ComparisonReport

Row = dict[str, Any]

#: Output formats by file extension.
FORMATS: dict[str, Literal["html", "markdown"]] = {".html": "html", ".htm": "html",
                                                    ".md": "markdown"}
#: True/False columns (None: not known).
FLAGS = ("correct", "warmup_steady", "p90_low_confidence", "p99_low_confidence")


class ReportError(ResultsError):
    """The report cannot be written as asked (an unknown output extension, no runs)."""


def output_format(output: str | Path) -> Literal["html", "markdown"]:
    """``html`` or ``markdown`` by the file's extension; anything else is a ReportError."""
    suffix = Path(output).suffix.lower()
    if suffix not in FORMATS:
        raise ReportError(f"cannot tell the report format from {str(output)!r}: "
                          f"name it {', '.join(FORMATS)}")
    return FORMATS[suffix]


def write_report(runs: Sequence[str | Path], output: str | Path, reference: str = "cpu",
                 baseline: Sequence[str | Path] = ()) -> Path:
    """Write the report on ``runs`` (run folders or results directories) to ``output``:
    a self-contained HTML page (``.html``/``.htm``) or Markdown (``.md``). Returns its path.
    With ``baseline`` runs, the summary says which cases regressed against them."""
    output = Path(output)
    fmt = output_format(output)  # before any loading: a wrong name fails fast
    report = gather(runs, reference, plots=fmt == "html", baseline=baseline)
    text = html.render(report) if fmt == "html" else markdown.render(report)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output


def gather(runs: Sequence[str | Path], reference: str = "cpu", plots: bool = True,
           baseline: Sequence[str | Path] = ()) -> Document:
    """Load ``runs`` and build the report's content; charts only when ``plots``. The summary
    reports a comparison when there is one: against ``baseline`` runs, or, for an A/B run
    (``harness ab``), between its two sides."""
    from harness.results import load

    if not runs:
        raise ReportError("no runs given: name run folders or a results directory")
    folders = list(dict.fromkeys(run_folders(runs)))
    contexts = {folder.name: read_context(folder) for folder in folders}
    order = sorted(contexts, key=lambda run: (str(contexts[run].get("started_at") or ""), run))
    by_name = {folder.name: folder for folder in folders}
    every = _records(load(*(by_name[run] for run in order)))  # oldest run first
    _label_cases(every)
    reference = _reference(every, reference)
    shown = _ordered(_latest(every, order), reference)
    # Load-scenario rows (latency under load, queueing included) get their own tables and
    # chart: mixing them with the timing loop's per-call figures would compare unlike things.
    loop, under_load = scenarios.split(shown)
    notes = []
    if len(order) > 1:
        notes.append(f"{len(order)} runs: tables, warnings and charts show the latest run of "
                     "each case and adapter; the trend charts show every run.")
    charts: list[Plot] = []
    if plots:
        if loop or not under_load:  # a load-only report shows no empty timing charts
            charts = _charts(loop, scenarios.split(every)[0], contexts, reference)
        if under_load:
            charts += scenarios.curves(under_load)
    load_tables = scenarios.tables(under_load)
    peaks = scenarios.peak_table(under_load)
    profile, profile_charts = _profile(loop, folders, plots)
    warnings = [*find_warnings(loop), *scenarios.warnings(under_load)]
    summary = summarize(loop, warnings, reference, _comparison(folders, baseline))
    return Document(
        summary=summary, reference=reference, counts=_counts(shown),
        runs=tuple(_run_line(run, contexts[run]) for run in order),
        environment=_environment(contexts[order[-1]]) if order else (),
        adapters=_adapters(contexts, order), tables=tuple(tables(loop, reference)),
        warnings=tuple(warnings),
        notes=tuple(notes), plots=tuple(charts),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load=(*load_tables, *((peaks,) if peaks else ())), profile=profile,
        profile_plots=profile_charts)


def _comparison(folders: list[Path],
                baseline: Sequence[str | Path]) -> ComparisonReport | None:
    """The comparison the report covers: ``runs`` against ``baseline`` runs (as ``harness
    compare`` judges them), or an A/B run's two sides (as ``harness ab`` does); else None."""
    from harness.compare import compare
    from harness.paired import compare_paired

    rows = [row for folder in folders for row in read_rows(folder)]
    if baseline:
        base = [row for folder in dict.fromkeys(run_folders(baseline)) for row in read_rows(folder)]
        return compare(base, rows)
    sides = [row for row in rows if row.get("variant") in ("baseline", "candidate")]
    return compare_paired(sides) if sides else None


def _profile(rows: list[Row], folders: list[Path],
             plots: bool) -> tuple[tuple[PlainTable, ...], tuple[Plot, ...]]:
    """The profiling pass's tables and, when ``plots``, charts (nothing for unprofiled runs)."""
    from harness.profiling.ops import read_ops
    from harness.report import profile, profile_plots

    found = profile.breakdowns(rows, [op for folder in folders for op in read_ops(folder)])
    points = profile.category_points(found)
    roofline = profile.roofline_table(points)
    tables = (*profile.report_tables(found), *((roofline,) if roofline else ()))
    if not plots:
        return tables, ()
    return tables, (*profile_plots.stacked_bars(found), *profile_plots.category_roofline(points))


def _charts(shown: list[Row], every: list[Row], contexts: dict[str, dict[str, Any]],
            reference: str) -> list[Plot]:
    from harness.report import plots

    charts = [*plots.latency_distributions(shown), *plots.speedup(shown, reference),
              *plots.roofline(shown), *plots.memory(shown)]
    points = _trend_points(every, contexts)
    if points:
        charts += plots.trend(points)
    return charts


def _records(frame: Any) -> list[Row]:
    """DataFrame rows as dicts with NaN as None (NaN is truthy) and JSON columns decoded."""
    rows = []
    for record in frame.to_dict("records"):
        row = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
        for column in JSON_COLUMNS:
            value = row.get(column)
            row[column] = json.loads(value) if isinstance(value, str) and value else {}
        row["repetition"] = int(row.get("repetition") or 0)
        # One adapter under several option sets (`-a cpu:threads=1 -a cpu:threads=2`) gives rows
        # told apart only by their label: the report's columns follow the label.
        row["adapter_name"] = row.get("adapter")
        label = str(row.get("adapter_label") or row.get("adapter"))
        # An A/B run's two sides are columns of their own, never one adapter's two rows.
        row["adapter"] = f"{label} [{row['variant']}]" if row.get("variant") else label
        for flag in FLAGS:  # numpy bools from an all-boolean column: `is False` needs bool
            if row.get(flag) is not None:
                row[flag] = bool(row[flag])
        rows.append(row)
    return rows


def _label_cases(rows: list[Row]) -> None:
    """A short ``label`` per row for charts: workload and the parameters that vary in it."""
    suites: dict[str, set[str]] = {}
    for row in rows:
        suites.setdefault(str(row.get("workload")), set()).add(str(row.get("suite")))
    for (suite, workload), group in by_workload(rows).items():
        names = varying(group)
        name = workload if len(suites[workload]) == 1 else f"{suite}/{workload}"
        repeated = len({row["repetition"] for row in group}) > 1
        for row in group:
            params = ",".join(f"{k}={format_value(row['params'].get(k, ''))}" for k in names)
            row["label"] = (name + (f"[{params}]" if params else "")
                            + (f" rep {row['repetition']}" if repeated else ""))


def _latest(rows: list[Row], order: list[str]) -> list[Row]:
    """Of each case, adapter and scenario, only the rows of the latest run that has it."""
    rank = {run: i for i, run in enumerate(order)}
    newest: dict[tuple[str, str, str], str] = {}

    def key(row: Row) -> tuple[str, str, str]:
        return row["case_id"], row["adapter"], str(row.get("scenario") or "loop")

    for row in rows:
        if key(row) not in newest or rank.get(row["run_id"], -1) > rank.get(newest[key(row)], -1):
            newest[key(row)] = row["run_id"]
    return [row for row in rows if newest[key(row)] == row["run_id"]]


def _reference(rows: list[Row], reference: str) -> str:
    """The adapter column to compare with: ``reference`` itself, or else the one option set of
    that adapter (``cpu`` finds ``cpu:threads=2`` when that is the only cpu in the runs)."""
    labels = {str(row["adapter"]) for row in rows}
    if reference in labels:
        return reference
    if f"{reference} [baseline]" in labels:  # an A/B run: speedups of the candidate side
        return f"{reference} [baseline]"
    variants = {str(row["adapter"]) for row in rows if row.get("adapter_name") == reference}
    return variants.pop() if len(variants) == 1 else reference


def _ordered(rows: list[Row], reference: str) -> list[Row]:
    """Cases in the order they first ran; within a case the reference adapter first, then the
    others as they first appear, so tables and chart colours agree whichever run came first."""
    cases = {key: i for i, key in reversed(list(enumerate(row["case_id"] for row in rows)))}
    adapters = list(dict.fromkeys(str(row["adapter"]) for row in rows))
    if reference in adapters:
        adapters.remove(reference)
        adapters.insert(0, reference)
    rank = {name: i for i, name in enumerate(adapters)}
    return sorted(rows, key=lambda row: (cases[row["case_id"]], rank[str(row["adapter"])],
                                         row["repetition"]))


def _trend_points(rows: list[Row], contexts: dict[str, dict[str, Any]]) -> list[TrendPoint]:
    """One point per run, case and adapter (median over repetitions), for cases in 2+ runs."""
    medians: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        if row.get("status") == "ok" and row.get("latency_median_s"):
            key = (row["case_id"], row["adapter"], row["run_id"])
            medians.setdefault(key, []).append(float(row["latency_median_s"]))
    runs_per_case: dict[tuple[str, str], int] = {}
    for case, adapter, _ in medians:
        runs_per_case[(case, adapter)] = runs_per_case.get((case, adapter), 0) + 1
    if max(runs_per_case.values(), default=0) < 2:
        return []
    labels = {(row["case_id"], row["adapter"]): row for row in rows}
    points = []
    for (case, adapter, run), values in medians.items():
        started = _parse_time(contexts.get(run, {}).get("started_at"))
        if started is None or runs_per_case[(case, adapter)] < 2:
            continue
        row = labels[(case, adapter)]
        points.append(TrendPoint(label=row["label"], adapter=adapter, median_s=_median(values),
                                 workload=f"{row['suite']}/{row['workload']}", started=started))
    return points


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _counts(rows: list[Row]) -> tuple[tuple[str, int], ...]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row.get("status"))] = counts.get(str(row.get("status")), 0) + 1
    return tuple(counts.items())


# --- environment -----------------------------------------------------------------------------


def _run_line(run: str, context: dict[str, Any]) -> tuple[str, ...]:
    command = context.get("command")
    return (run, str(context.get("started_at") or units.DASH),
            str(context.get("host") or units.DASH),
            str(context.get("git_sha") or units.DASH)[:12],
            shlex.join(map(str, command)) if isinstance(command, list) else str(command or ""))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _environment(context: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The latest run's context as (name, value) pairs, the most useful first."""
    c = context
    cores = (f"{c.get('cpu_physical_cores', units.DASH)} physical, "
             f"{c.get('cpu_logical_cores', units.DASH)} logical")
    if c.get("cpu_affinity"):
        cores += f"; affinity {_text(c['cpu_affinity'])}"
    packages = c.get("packages") or {}
    pairs = [("run", c.get("run_id")), ("host", c.get("host")), ("OS", c.get("os")),
             ("CPU", c.get("cpu_model")), ("cores", cores),
             ("memory", units.size(c.get("memory_bytes"))),
             ("Python", " ".join(str(c[k]) for k in ("python", "python_implementation")
                                 if c.get(k))),
             ("torch", packages.get("torch")), ("git SHA", c.get("git_sha")),
             ("command", _run_line("", c)[4]), ("started", c.get("started_at")),
             ("working directory", c.get("cwd")),
             ("packages", ", ".join(f"{k} {v}" for k, v in packages.items())),
             ("environment variables", _text(c["env"]) if c.get("env") else None),
             ("configuration", _text(c["config"]) if c.get("config") else None),
             ("cluster hosts", _hosts(c["hosts"]) if c.get("hosts") else None)]
    known = {"run_id", "host", "os", "cpu_model", "cpu_physical_cores", "cpu_logical_cores",
             "cpu_affinity", "memory_bytes", "python", "python_implementation", "packages",
             "git_sha", "command", "started_at", "cwd", "env", "config", "adapters", "schema",
             "hosts"}
    pairs += [(key, _text(value)) for key, value in c.items() if key not in known]
    return tuple((name, str(value)) for name, value in pairs if value not in (None, ""))


def _hosts(hosts: Any) -> str:
    """A cluster run's hosts in one line each: name, CPU, cores, memory (``context["hosts"]``,
    keyed by Ray node id)."""
    if not isinstance(hosts, dict):
        return _text(hosts)
    lines = []
    for node, h in hosts.items():
        if not isinstance(h, dict):
            continue
        lines.append(f"{h.get('host', units.DASH)} (Ray node {str(node)[:8]}): "
                     f"{h.get('cpu_model', units.DASH)}, {h.get('cpu_logical_cores', units.DASH)}"
                     f" logical cores, {units.size(h.get('memory_bytes'))}")
    return "; ".join(lines)


def _adapters(contexts: dict[str, dict[str, Any]], order: list[str]) -> tuple[tuple[str, str], ...]:
    """Each adapter's info from the latest run that used it."""
    info: dict[str, str] = {}
    for run in order:
        for name, facts in (contexts[run].get("adapters") or {}).items():
            if isinstance(facts, dict):
                info[str(name)] = ", ".join(f"{k}={_text(v)}" for k, v in facts.items()
                                            if k != "name")
            else:
                info[str(name)] = _text(facts)
    return tuple(info.items())
