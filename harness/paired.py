"""Judging an interleaved A/B run (``harness ab``) from its paired samples.

Rows of variant ``baseline`` and ``candidate`` were timed interleaved, so sample i of each side
form a pair taken moments apart and the machine's drift cancels within it. Per case and
adapter:

- the **change** is the median over repetitions of each repetition's median paired ratio
  (candidate / baseline), and its 95% bounds come from a two-level bootstrap of that same
  statistic (repetitions, then pairs within each);
- the **medians printed beside it** are each side's median over the same pairs and
  repetitions. The median of ratios is not the ratio of medians: where the two disagree beyond
  the interval (drift within a repetition that the pairs cancel and the medians do not), the
  comparison's note says so rather than leave two figures that contradict each other;
- **significance** is a one-sided Wilcoxon signed-rank test on the pooled log ratios,
  Benjamini–Hochberg across cases;
- δ is the larger of the threshold and the robust spread of the repetitions' paired ratios
  (three or more repetitions). Pairs cancel drift within a repetition, not what differs
  between two builds of the same code (memory layout, a neighbour's burst through one
  repetition). Unlike :func:`harness.compare.compare`, δ takes no small-sample bar: paired
  ratios of one repetition already exclude the between-run drift that bar guards against, and
  a t-quantile over three repetitions (×4 their spread) would hide the 5% changes this gate
  detects (README, "How well the gates work here").

Verdicts and the missing rule follow :func:`harness.compare.compare`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from harness.compare import (
    BOOTSTRAP,
    CONFIDENCE,
    Comparison,
    ComparisonReport,
    Options,
    bar,
    benjamini_hochberg,
    between_noise,
    case_key,
    decide,
    geometric_means,
    median,
    row_samples,
)

Key = tuple[str, str, str]
#: per repetition, the (baseline, candidate) samples cut to the same number of pairs.
Pairs = list[tuple[list[float], list[float]]]


def compare_paired(rows: Iterable[dict[str, Any]],
                   options: Options | None = None) -> ComparisonReport:
    """Judge an A/B run's rows as stored; see the module docstring."""
    import numpy as np

    options = options or Options()
    rng = np.random.default_rng(options.seed)
    grouped, problems, measured_base, failed_cand = _group(rows)
    measured = []
    missing = []
    for key in sorted(set(grouped) | set(problems)):
        reps = [_cut(pair["baseline"], pair["candidate"])
                for pair in grouped.get(key, {}).values() if len(pair) == 2]
        if key in problems or not reps:
            missing.append(Comparison(*key, "missing", note=problems.get(key, "no pair")))
            continue
        measured.append((key, reps, _judge(reps, rng)))
    p_slower = benjamini_hochberg([m[2]["slower"] for m in measured])
    p_faster = benjamini_hochberg([m[2]["faster"] for m in measured])
    comparisons = list(missing)
    for i, (key, reps, f) in enumerate(measured):
        noise = between_noise(f["rep_ratios"])
        delta = bar(options.threshold, noise, math.nan)
        verdict = decide(p_slower[i], p_faster[i], f["low"], f["high"], delta, options.alpha)
        base_median = median([median(b) for b, _ in reps])
        cand_median = median([median(c) for _, c in reps])
        comparisons.append(Comparison(
            *key, verdict, ratio=f["ratio"], ratio_low=f["low"], ratio_high=f["high"],
            delta=delta, noise=noise, p_slower=p_slower[i],
            p_faster=p_faster[i], baseline_median_s=base_median, candidate_median_s=cand_median,
            repetitions=(len(reps), len(reps)),
            note=_note(cand_median / base_median, f["low"], f["high"])))
    comparisons.sort(key=lambda x: (x.suite, x.case_id, x.adapter))
    lost = sum(1 for key in measured_base
               if key in failed_cand or not any(len(p) == 2 for p in grouped[key].values()))
    return ComparisonReport(comparisons, geometric_means(comparisons), options, "paired",
                            lost=(lost, len(measured_base)))


def _group(rows: Iterable[dict[str, Any]]) -> tuple[
        dict[Key, dict[int, dict[str, list[float]]]], dict[Key, str], set[Key], set[Key]]:
    """Samples by case, repetition and variant; the first problem per case; the cases whose
    baseline measured something, and those whose candidate failed somewhere."""
    grouped: dict[Key, dict[int, dict[str, list[float]]]] = {}
    problems: dict[Key, str] = {}
    measured_base: set[Key] = set()
    failed_cand: set[Key] = set()
    for row in rows:
        variant = str(row.get("variant") or "")
        if variant not in ("baseline", "candidate"):
            continue
        key = case_key({**row, "variant": ""})
        samples = row_samples(row.get("samples_s"))
        if row.get("status") != "ok" or not samples:
            problems.setdefault(key, f"{variant}: {row.get('status')}: "
                                     f"{row.get('message') or 'no samples'}")
            if variant == "candidate":
                failed_cand.add(key)
            continue
        if variant == "baseline":
            measured_base.add(key)
        grouped.setdefault(key, {}).setdefault(int(row.get("repetition") or 0), {})[
            variant] = samples
    return grouped, problems, measured_base, failed_cand


def _cut(baseline: list[float], candidate: list[float]) -> tuple[list[float], list[float]]:
    """Both sides' samples up to the last complete pair."""
    n = min(len(baseline), len(candidate))
    return baseline[:n], candidate[:n]


def _judge(reps: Pairs, rng: Any) -> dict[str, Any]:
    """The paired figures of one case: p-values, the change and its bootstrap bounds, and each
    repetition's median paired ratio."""
    import numpy as np
    from scipy.stats import wilcoxon  # type: ignore[import-untyped]

    logs = [np.log(np.asarray(c) / np.asarray(b)) for b, c in reps]
    pooled = np.concatenate(logs)
    boot = []
    for values in logs:
        draws = rng.integers(0, len(values), size=(BOOTSTRAP, len(values)))
        boot.append(np.median(values[draws], axis=1))
    medians = np.stack(boot, axis=1)
    if medians.shape[1] > 1:
        pick = rng.integers(0, medians.shape[1], size=medians.shape)
        medians = np.take_along_axis(medians, pick, axis=1)
    tail = (1 - CONFIDENCE) * 100
    low, high = np.percentile(np.exp(np.median(medians, axis=1)), [tail, 100 - tail])
    rep_ratios = [float(np.exp(np.median(v))) for v in logs]
    def p_value(alternative: str) -> float:
        # Every pair equal (identical timings): the test has nothing to rank (it divides by
        # zero); no difference is no evidence of one.
        if not pooled.any():
            return 1.0
        return float(wilcoxon(pooled, alternative=alternative).pvalue)

    return {"slower": p_value("greater"), "faster": p_value("less"),
            "low": float(low), "high": float(high), "rep_ratios": rep_ratios,
            "ratio": float(np.exp(np.median(np.log(rep_ratios))))}


def _note(medians_ratio: float, low: float, high: float) -> str:
    """"paired, interleaved", and where the ratio of the printed medians falls outside the
    change's interval, that it does and why."""
    if math.isfinite(medians_ratio) and not low <= medians_ratio <= high:
        return (f"paired, interleaved; the medians' own ratio ({(medians_ratio - 1) * 100:+.1f}%)"
                f" lies outside: the pairs cancel drift that the medians keep")
    return "paired, interleaved"
