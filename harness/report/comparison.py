"""``harness compare`` output: a terminal table and Markdown for CI summaries and PR comments."""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.compare import Comparison, ComparisonReport
from harness.profile_diff import ProfileDiff
from harness.report import profile_diff, units
from harness.report.units import grid

#: how each verdict reads in Markdown (a glyph helps a long PR comment be scanned).
MARKS = {"slower": "🔴 slower", "faster": "🟢 faster", "same": "same",
         "inconclusive": "inconclusive", "missing": "⚪ missing"}


def change(ratio: float) -> str:
    """A time ratio as a signed change: 1.055 → ``+5.5%``."""
    if not math.isfinite(ratio):
        return units.DASH
    return f"{(ratio - 1) * 100:+.1f}%"


def interval(low: float, high: float) -> str:
    """A ratio's interval as changes: ``+4.0% … +7.3%``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return units.DASH
    return f"{change(low)} … {change(high)}"


def _cells(c: Comparison, marked: bool = False) -> tuple[str, ...]:
    needed = f"needed ±{c.delta * 100:.1f}%" if math.isfinite(c.delta) else ""
    detail = "; ".join(x for x in (*c.other_regressions, c.note, needed) if x)
    verdict = MARKS[c.verdict] if marked else c.verdict
    return (c.case_id, c.adapter, verdict, units.seconds(c.baseline_median_s),
            units.seconds(c.candidate_median_s), change(c.ratio),
            interval(c.ratio_low, c.ratio_high),
            f"{c.repetitions[0]}/{c.repetitions[1]}" if c.verdict != "missing" else units.DASH,
            detail)


HEADER = ("case", "adapter", "verdict", "baseline", "candidate", "change", "95% interval",
          "reps", "note")
GEOMEAN_HEADER = ("suite", "adapter", "change", "95% interval", "cases")


def _header(report: ComparisonReport) -> tuple[str, ...]:
    """The table's header; an A/B run's change is the median paired ratio, and says so."""
    if report.method != "paired":
        return HEADER
    return tuple("median paired change" if h == "change" else h for h in HEADER)


def headline(report: ComparisonReport) -> str:
    """One line: the confirmed regressions (or none) and the count of each verdict."""
    counts = report.counts()
    parts = [f"{n} {verdict}" for verdict, n in counts.items() if n]
    regressions = len(report.regressions)
    heads = [f"{regressions} confirmed regression{'s' if regressions != 1 else ''}"] \
        if regressions else []
    if report.missing_failure:
        heads.append(f"FAILED, missing: {report.missing_failure}")
    head = "; ".join(heads) or "no confirmed regression"
    return f"{head} ({', '.join(parts) or 'nothing compared'})"


def _geomeans(report: ComparisonReport) -> list[tuple[str, str, str, str, str]]:
    return [(suite, adapter, change(g.ratio), interval(g.low, g.high), str(g.cases))
            for (suite, adapter), g in report.geomeans.items()]


def render_text(report: ComparisonReport, diffs: Sequence[ProfileDiff] = ()) -> str:
    """Fixed-width table, geometric means per suite, where the slower cases' time went (from
    both runs' profiles, when there are any), and a one-line summary at the end."""
    lines = [_header(report), *(_cells(c) for c in report.comparisons)]
    out = grid(lines)
    if report.geomeans:
        out += ["", "geometric mean of the time ratio per suite (its interval holds when every "
                    "case's does):"]
        out += ["  " + line for line in grid([GEOMEAN_HEADER, *_geomeans(report)])]
    if diffs:
        out += ["", *profile_diff.text(diffs)]
    out += ["", _method(report), headline(report)]
    return "\n".join(out)


def _md(text: str) -> str:
    """A Markdown table cell: HTML-escaped (GitHub renders inline HTML), pipes and newlines
    neutralised, so a workload or parameter name cannot break the table or inject markup."""
    import html

    return html.escape(text).replace("|", "&#124;").replace("\n", " ").replace("`", "&#96;")


def _method(report: ComparisonReport) -> str:
    o = report.options
    missing = f"at most {o.max_missing * 100:g}% of the baseline's cases missing"
    if report.method == "paired":
        return (f"paired samples, timed interleaved: threshold {o.threshold * 100:g}% (or the "
                f"repetitions' spread where larger), false-discovery rate {o.alpha:g}, {missing}")
    return (f"threshold {o.threshold * 100:g}% (or the baseline's between-process noise, or "
            f"the small-sample bar on the repetitions' spread, whichever is largest), "
            f"false-discovery rate {o.alpha:g}, {missing}")


def render_markdown(report: ComparisonReport, title: str = "Benchmark comparison",
                    diffs: Sequence[ProfileDiff] = ()) -> str:
    """Markdown fit for ``$GITHUB_STEP_SUMMARY`` or a pull-request comment."""
    out = [f"## {_md(title)}", "", f"**{_md(headline(report))}**", ""]
    flagged = [c for c in report.comparisons if c.verdict != "same" or c.other_regressions]
    same = [c for c in report.comparisons if c not in flagged]
    header = _header(report)
    if flagged:
        out += _md_table(header, [_cells(c, True) for c in flagged])
    else:
        out.append("Every case: same.")
    if same:
        out += ["", f"<details><summary>{len(same)} cases unchanged</summary>", ""]
        out += _md_table(header, [_cells(c, True) for c in same])
        out += ["", "</details>"]
    if report.geomeans:
        out += ["", "Geometric mean of the time ratio per suite (its interval holds when every "
                    "case's does):", ""]
        out += _md_table(GEOMEAN_HEADER, _geomeans(report))
    out += _profile_diff_markdown(diffs)
    o = report.options
    if report.method == "paired":
        out += ["", f"Baseline and candidate were timed interleaved; the change is the median "
                    f"of the paired ratios (candidate / baseline) with its 95% interval. A case "
                    f"is `slower` when a one-sided Wilcoxon signed-rank test on the paired "
                    f"ratios is significant after Benjamini–Hochberg (FDR {o.alpha:g}) *and* "
                    f"the 95% bound on the time ratio exceeds {o.threshold * 100:g}% and the "
                    f"repetitions' spread."]
    else:
        out += ["", f"A case is `slower` when a one-sided Mann–Whitney test is significant "
                    f"after Benjamini–Hochberg (FDR {o.alpha:g}) *and* the 95% bound on the "
                    f"time ratio exceeds {o.threshold * 100:g}%, the baseline's "
                    f"between-process noise, and the small-sample bar on the repetitions' "
                    f"spread."]
    out += [f"The comparison fails as `missing` when more than {o.max_missing * 100:g}% of "
            f"the cases the baseline measured are missing from the candidate."]
    return "\n".join(out) + "\n"


def _profile_diff_markdown(diffs: Sequence[ProfileDiff]) -> list[str]:
    """Per slower case: its summary line, then its categories and operators."""
    if not diffs:
        return []
    out = ["", "### Where the time went", "", _md(profile_diff.HEADING.capitalize()) + "."]
    for a in diffs:
        out += ["", f"**{_md(profile_diff.summary(a))}**", ""]
        categories, operators = profile_diff.rows(a)
        if categories:
            out += [*_md_table(profile_diff.CATEGORY_HEADER, categories), "",
                    *_md_table(profile_diff.OPERATOR_HEADER, operators)]
    return out


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return lines
