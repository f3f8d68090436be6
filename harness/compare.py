"""Comparing two runs case by case: the statistics behind ``harness compare``.

The method is described in docs/architecture.md, "Comparing runs".

A regression must pass two tests, because either alone fails on a shared machine:

1. **Significance**: a one-sided Mann–Whitney U test on the per-call samples (candidate slower
   than baseline), its p-values corrected across all compared cases by Benjamini–Hochberg, below
   ``alpha``. Samples of one process are close to independent, so this test is powerful; but two
   processes differ by more than their samples say, so alone it raises false alarms.
2. **Size beyond noise**: a one-sided 95% confidence bound on the time ratio (candidate median /
   baseline median) beyond ``1 + δ``, where δ is the larger of the user's threshold and the noise
   seen between the baseline's own repetitions. The bound comes from a two-level bootstrap:
   repetitions (processes) are resampled, then samples within each, so between-process noise
   widens it. With one repetition per side it is an ordinary bootstrap of the samples, and only
   the threshold guards against between-process drift: use ``--repeat`` for a gate.

Verdicts: ``slower`` and ``faster`` when both tests agree; ``same`` when the whole confidence
interval lies within ``[1/(1+δ), 1+δ]``; ``inconclusive`` otherwise; ``missing`` when either run
lacks a measured row for the case. Only ``slower`` (or a memory or energy figure beyond its
optional threshold) is a confirmed regression.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["faster", "slower", "same", "inconclusive", "missing"]
VERDICTS: tuple[Verdict, ...] = ("slower", "faster", "inconclusive", "same", "missing")

#: resamples of the bootstrap; the 5% tail bound is stable to about ±0.3% of the ratio.
BOOTSTRAP = 2000
#: the confidence of each one-sided bound on the ratio.
CONFIDENCE = 0.95
#: Mann–Whitney on more samples than this uses a seeded subsample: p-values are already
#: astronomically small or not, and the U statistic grows as n².
MAX_TEST_SAMPLES = 5000
#: repetitions with more samples are bootstrapped from a seeded subsample of this many: it
#: bounds time and memory, and can only widen the interval (fewer samples), never narrow it.
MAX_BOOT_SAMPLES = 2000
#: 1.4826 × MAD estimates a normal standard deviation robustly (one odd process barely moves it).
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Options:
    """What counts as a change."""

    #: the smallest slowdown worth flagging, as a fraction (0.05: 5%).
    threshold: float = 0.05
    #: the false-discovery rate across cases (Benjamini–Hochberg).
    alpha: float = 0.01
    #: a peak memory growth beyond this fraction is a regression (None: not checked).
    memory_threshold: float | None = None
    #: an energy-per-item growth beyond this fraction is a regression (None: not checked).
    energy_threshold: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("threshold", "memory_threshold", "energy_threshold"):
            value = getattr(self, name)
            if value is not None and not (0 <= value < 10):
                raise ValueError(f"{name} must be a fraction in [0, 10), got {value!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha!r}")


@dataclass
class Side:
    """One run's measurements of one case on one adapter: samples per repetition."""

    samples: list[list[float]] = field(default_factory=list)
    peak_memory_bytes: list[float] = field(default_factory=list)
    energy_per_item_j: list[float] = field(default_factory=list)
    problem: str = ""

    @property
    def medians(self) -> list[float]:
        return [_median(s) for s in self.samples]

    @property
    def median(self) -> float:
        """The median of the repetitions' medians: one odd process moves it little."""
        return _median(self.medians)


@dataclass(frozen=True)
class Comparison:
    """The verdict on one case and adapter, with the figures behind it."""

    suite: str
    case_id: str
    adapter: str
    verdict: Verdict
    #: candidate median / baseline median (above 1: slower).
    ratio: float = math.nan
    ratio_low: float = math.nan
    ratio_high: float = math.nan
    #: the change that had to be exceeded: max(threshold, baseline noise).
    delta: float = math.nan
    #: relative spread of the baseline's repetition medians (robust σ), NaN with one repetition.
    noise: float = math.nan
    p_slower: float = math.nan
    p_faster: float = math.nan
    baseline_median_s: float = math.nan
    candidate_median_s: float = math.nan
    repetitions: tuple[int, int] = (0, 0)
    memory_ratio: float = math.nan
    energy_ratio: float = math.nan
    #: memory or energy beyond its threshold, in words; empty when none.
    other_regressions: tuple[str, ...] = ()
    note: str = ""

    @property
    def regression(self) -> bool:
        return self.verdict == "slower" or bool(self.other_regressions)


@dataclass(frozen=True)
class ComparisonReport:
    """Every comparison, and the geometric mean of the time ratio per suite and adapter."""

    comparisons: list[Comparison]
    geomeans: dict[tuple[str, str], tuple[float, int]]
    options: Options
    #: "sequential" (two runs, unpaired) or "paired" (an interleaved A/B run).
    method: str = "sequential"

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.regression]

    def counts(self) -> dict[Verdict, int]:
        counts = dict.fromkeys(VERDICTS, 0)
        for c in self.comparisons:
            counts[c.verdict] += 1
        return counts


def _median(values: Sequence[float]) -> float:
    import numpy as np

    return float(np.median(np.asarray(values, dtype=float))) if len(values) else math.nan


def sides(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, str], Side]:
    """Group a run's rows by (suite, case, adapter): each repetition's samples and side figures."""
    from harness.scenarios import is_load_row

    out: dict[tuple[str, str, str], Side] = {}
    for row in rows:
        if is_load_row(row):
            # Latencies under load (queueing included) are not the timing loop's per-call
            # figures: pooling them would compare different quantities.
            continue
        key = (str(row.get("suite", "")), str(row["case_id"]), str(row["adapter"]))
        side = out.setdefault(key, Side())
        samples = _samples(row.get("samples_s"))
        if row.get("status") != "ok" or not samples:
            why = row.get("message") or "no samples"
            side.problem = side.problem or f"{row.get('status')}: {why}"
            continue
        side.samples.append(samples)
        # One memory figure per row: the device's peak where the adapter has device memory
        # (that is what an accelerator case runs out of), else the host's peak RSS. Pooling
        # both in one list would take a median across two different quantities.
        memory = _positive(row, "peak_device_bytes") or _positive(row, "peak_rss_bytes")
        if memory:
            side.peak_memory_bytes.append(memory)
        energy = _positive(row, "energy_per_item_j")
        if energy:
            side.energy_per_item_j.append(energy)
    return out


def _positive(row: dict[str, Any], column: str) -> float | None:
    """The column's value when it is a finite positive number, else None (missing)."""
    value = row.get(column)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def _samples(raw: Any) -> list[float]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return []
    if not isinstance(raw, list):
        return []
    return [float(x) for x in raw if isinstance(x, int | float) and math.isfinite(x) and x > 0]


def between_noise(medians: Sequence[float]) -> float:
    """The baseline's between-process noise: robust σ of its repetition medians, relative to
    their median; NaN with fewer than three repetitions (two points give no robust spread)."""
    import numpy as np

    if len(medians) < 3:
        return math.nan
    logs = np.log(np.asarray(medians, dtype=float))
    mad = float(np.median(np.abs(logs - np.median(logs))))
    return math.expm1(MAD_TO_SIGMA * mad)


def ratio_interval(baseline: Side, candidate: Side, rng: Any,
                   resamples: int = BOOTSTRAP) -> tuple[float, float]:
    """One-sided 95% bounds (low, high) on candidate median / baseline median, by a two-level
    bootstrap: resample repetitions, then samples within each, and take the median of the
    resampled repetition medians, as :attr:`Side.median` does."""
    import numpy as np

    def boot(side: Side) -> Any:
        # medians[b, r]: repetition r's median in resample b (samples resampled within it).
        per_rep = []
        for samples in side.samples:
            values = np.asarray(samples, dtype=float)
            if len(values) > MAX_BOOT_SAMPLES:
                values = rng.choice(values, MAX_BOOT_SAMPLES, replace=False)
            draws = rng.integers(0, len(values), size=(resamples, len(values)))
            per_rep.append(np.median(values[draws], axis=1))
        medians = np.stack(per_rep, axis=1)
        reps = medians.shape[1]
        if reps == 1:
            return medians[:, 0]
        pick = rng.integers(0, reps, size=(resamples, reps))
        return np.median(np.take_along_axis(medians, pick, axis=1), axis=1)

    ratios = boot(candidate) / boot(baseline)
    tail = (1 - CONFIDENCE) * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def _mann_whitney(baseline: Side, candidate: Side, rng: Any) -> tuple[float, float]:
    """One-sided p-values (candidate slower, candidate faster) on the pooled samples."""
    import numpy as np
    from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]

    def pooled(side: Side) -> Any:
        values = np.concatenate([np.asarray(s, dtype=float) for s in side.samples])
        if len(values) > MAX_TEST_SAMPLES:
            values = rng.choice(values, MAX_TEST_SAMPLES, replace=False)
        return values

    b, c = pooled(baseline), pooled(candidate)
    slower = float(mannwhitneyu(c, b, alternative="greater").pvalue)
    faster = float(mannwhitneyu(c, b, alternative="less").pvalue)
    return slower, faster


def _benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    from scipy.stats import false_discovery_control

    if not pvalues:
        return []
    return [float(p) for p in false_discovery_control(list(pvalues), method="bh")]


def compare(baseline_rows: Iterable[dict[str, Any]], candidate_rows: Iterable[dict[str, Any]],
            options: Options | None = None) -> ComparisonReport:
    """Compare two runs (rows as stored) case by case; see the module docstring."""
    import numpy as np

    options = options or Options()
    rng = np.random.default_rng(options.seed)
    base, cand = sides(baseline_rows), sides(candidate_rows)
    measured: list[tuple[tuple[str, str, str], Side, Side, tuple[float, float],
                         tuple[float, float]]] = []
    missing: list[Comparison] = []
    for key in sorted(set(base) | set(cand)):
        b, c = base.get(key), cand.get(key)
        suite, case_id, adapter = key
        if b is None or c is None or not b.samples or not c.samples:
            if b is None or c is None:
                why = "only in the baseline" if c is None else "only in the candidate"
            else:
                which = "baseline" if not b.samples else "candidate"
                why = f"{which}: {(b if not b.samples else c).problem}"
            missing.append(Comparison(suite, case_id, adapter, "missing", note=why))
            continue
        measured.append((key, b, c, _mann_whitney(b, c, rng), ratio_interval(b, c, rng)))
    p_slower = _benjamini_hochberg([m[3][0] for m in measured])
    p_faster = _benjamini_hochberg([m[3][1] for m in measured])
    comparisons = []
    for i, ((suite, case_id, adapter), b, c, _, (low, high)) in enumerate(measured):
        noise = between_noise(b.medians)
        delta = max(options.threshold, 0.0 if math.isnan(noise) else noise)
        ratio = c.median / b.median
        verdict = decide(p_slower[i], p_faster[i], low, high, delta, options.alpha)
        memory_ratio, energy_ratio, others = _side_figures(b, c, options)
        comparisons.append(Comparison(
            suite, case_id, adapter, verdict, ratio=ratio, ratio_low=low, ratio_high=high,
            delta=delta, noise=noise, p_slower=p_slower[i], p_faster=p_faster[i],
            baseline_median_s=b.median, candidate_median_s=c.median,
            repetitions=(len(b.samples), len(c.samples)), memory_ratio=memory_ratio,
            energy_ratio=energy_ratio, other_regressions=others))
    comparisons.extend(missing)
    comparisons.sort(key=lambda x: (x.suite, x.case_id, x.adapter))
    return ComparisonReport(comparisons, geometric_means(comparisons), options)


def decide(p_slower: float, p_faster: float, low: float, high: float, delta: float,
           alpha: float) -> Verdict:
    """The verdict from the corrected p-values and the 95% bounds on the time ratio: a change
    needs both a significant test and a bound beyond ``1 + delta`` (or ``1 / (1 + delta)``)."""
    if p_slower < alpha and low > 1 + delta:
        return "slower"
    if p_faster < alpha and high < 1 / (1 + delta):
        return "faster"
    if low >= 1 / (1 + delta) and high <= 1 + delta:
        return "same"
    return "inconclusive"


def _side_figures(b: Side, c: Side, options: Options) -> tuple[float, float, tuple[str, ...]]:
    """Memory and energy ratios (median over repetitions), and those beyond their threshold."""
    others = []
    ratios = []
    for name, base, cand, limit in (
            ("peak memory", b.peak_memory_bytes, c.peak_memory_bytes, options.memory_threshold),
            ("energy per item", b.energy_per_item_j, c.energy_per_item_j,
             options.energy_threshold)):
        ratio = _median(cand) / _median(base) if base and cand else math.nan
        ratios.append(ratio)
        if limit is not None and math.isfinite(ratio) and ratio > 1 + limit:
            others.append(f"{name} +{(ratio - 1) * 100:.1f}% (limit {limit * 100:g}%)")
    return ratios[0], ratios[1], tuple(others)


def geometric_means(comparisons: Sequence[Comparison]) -> dict[tuple[str, str], tuple[float, int]]:
    """Per (suite, adapter): the geometric mean of the time ratios, and how many cases."""
    logs: dict[tuple[str, str], list[float]] = {}
    for c in comparisons:
        if math.isfinite(c.ratio) and c.ratio > 0:
            logs.setdefault((c.suite, c.adapter), []).append(math.log(c.ratio))
    return {key: (math.exp(sum(v) / len(v)), len(v)) for key, v in sorted(logs.items())}


def compare_paired(rows: Iterable[dict[str, Any]],
                   options: Options | None = None) -> ComparisonReport:
    """Judge an A/B run (``harness ab``): rows of variant ``baseline`` and ``candidate`` whose
    samples were interleaved, so sample i of each side form a pair taken moments apart.

    Per case and adapter: the time ratio is the median over repetitions of the median paired
    ratio (candidate / baseline); its 95% bounds come from a two-level bootstrap (repetitions,
    then pairs within each); significance from a one-sided Wilcoxon signed-rank test on the
    pooled log ratios, Benjamini–Hochberg across cases. Drift cancels within a pair; δ is the
    larger of the threshold and the robust spread of the repetitions' paired ratios (three or
    more repetitions). Verdicts follow :func:`compare`.
    """
    import numpy as np
    from scipy.stats import wilcoxon

    options = options or Options()
    rng = np.random.default_rng(options.seed)
    grouped: dict[tuple[str, str, str], dict[int, dict[str, dict[str, Any]]]] = {}
    problems: dict[tuple[str, str, str], str] = {}
    for row in rows:
        key = (str(row.get("suite", "")), str(row["case_id"]), str(row["adapter"]))
        variant = str(row.get("variant") or "")
        if variant not in ("baseline", "candidate"):
            continue
        if row.get("status") != "ok" or not _samples(row.get("samples_s")):
            problems.setdefault(key, f"{variant}: {row.get('status')}: "
                                     f"{row.get('message') or 'no samples'}")
            continue
        grouped.setdefault(key, {}).setdefault(int(row.get("repetition") or 0), {})[variant] = row
    measured = []
    missing = []
    for key in sorted(set(grouped) | set(problems)):
        reps = [(_samples(r["baseline"]["samples_s"]), _samples(r["candidate"]["samples_s"]))
                for r in grouped.get(key, {}).values() if len(r) == 2]
        if key in problems or not reps:
            missing.append(Comparison(*key, "missing", note=problems.get(key, "no pair")))
            continue
        logs = [np.log(np.asarray(c[:len(b)]) / np.asarray(b[:len(c)])) for b, c in reps]
        pooled = np.concatenate(logs)
        slower = float(wilcoxon(pooled, alternative="greater").pvalue)
        faster = float(wilcoxon(pooled, alternative="less").pvalue)
        boot = []
        for values in logs:
            draws = rng.integers(0, len(values), size=(BOOTSTRAP, len(values)))
            boot.append(np.median(values[draws], axis=1))
        medians = np.stack(boot, axis=1)
        if medians.shape[1] > 1:
            pick = rng.integers(0, medians.shape[1], size=medians.shape)
            medians = np.take_along_axis(medians, pick, axis=1)
        ratios = np.exp(np.median(medians, axis=1))
        tail = (1 - CONFIDENCE) * 100
        low, high = (float(x) for x in np.percentile(ratios, [tail, 100 - tail]))
        rep_ratios = [float(np.exp(np.median(v))) for v in logs]
        ratio = float(np.exp(np.median(np.log(rep_ratios))))
        base_median = _median([_median(b) for b, _ in reps])
        cand_median = _median([_median(c) for _, c in reps])
        measured.append((key, ratio, low, high, slower, faster, base_median, cand_median,
                         len(reps), between_noise(rep_ratios)))
    p_slower = _benjamini_hochberg([m[4] for m in measured])
    p_faster = _benjamini_hochberg([m[5] for m in measured])
    comparisons = list(missing)
    for i, (key, ratio, low, high, _, _, base_median, cand_median, n, noise) in enumerate(
            measured):
        # Pairs cancel drift within a repetition, not what differs between two builds of the
        # same code (memory layout, a neighbour's burst through one repetition): with three or
        # more repetitions, the spread of their paired ratios raises δ as in `compare`.
        delta = max(options.threshold, 0.0 if math.isnan(noise) else noise)
        verdict = decide(p_slower[i], p_faster[i], low, high, delta, options.alpha)
        comparisons.append(Comparison(
            *key, verdict, ratio=ratio, ratio_low=low, ratio_high=high, delta=delta,
            noise=noise, p_slower=p_slower[i], p_faster=p_faster[i], baseline_median_s=base_median,
            candidate_median_s=cand_median, repetitions=(n, n), note="paired, interleaved"))
    comparisons.sort(key=lambda x: (x.suite, x.case_id, x.adapter))
    return ComparisonReport(comparisons, geometric_means(comparisons), options, "paired")
