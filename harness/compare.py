"""Comparing two runs case by case: the statistics behind ``harness compare``.

The method is described in docs/architecture.md, "Comparing runs".

A regression must pass two tests, because either alone fails on a shared machine:

1. **Significance**: a one-sided Mann–Whitney U test on the per-call samples (candidate slower
   than baseline), its p-values corrected across all compared cases by Benjamini–Hochberg, below
   ``alpha``. Samples of one process are close to independent, so this test is powerful; but two
   processes differ by more than their samples say, so alone it raises false alarms.
2. **Size beyond noise**: a one-sided 95% confidence bound on the time ratio (candidate median /
   baseline median) beyond ``1 + δ``. The bound comes from a two-level bootstrap: repetitions
   (processes) are resampled, then samples within each, so between-process noise widens it.
   δ is the largest of the user's threshold, the noise seen between the baseline's own
   repetitions (robust σ of their medians), and the *small-sample bar* (:func:`spread_bar`).

The small-sample bar is a one-sided t-test's critical change on the repetitions' medians:
``t(1 − alpha/m, n_b + n_c − 2) × s × √(1/n_b + 1/n_c)`` on their logarithms, ``s`` the pooled
standard deviation of both sides' repetition medians, ``m`` the cases compared (Bonferroni: on
an A/A comparison no case crosses it with probability 1 − alpha). A bootstrap over two to five
repetitions is far too narrow (it cannot see beyond the few values it has), so on a machine
whose speed drifts between processes a sequential A/A comparison would alarm; the t-quantile
widens the bar as much as the few repetitions leave the between-process spread unknown (20 s
at two repetitions a side, 2.7 s at five, for 8 cases at alpha 0.01). With one repetition a
side no spread is measured and only the threshold guards (the comparison says so): use
``--repeat`` for a gate. Drift slower than a whole run moves all of one side's repetitions
alike and no sequential comparison can see it: ``harness ab`` pairs samples instead.

Verdicts: ``slower`` and ``faster`` when both tests agree; ``same`` when the whole confidence
interval lies within ``[1/(1+δ), 1+δ]``; ``inconclusive`` otherwise; ``missing`` when either run
lacks a measured row for the case. A ``slower`` case (or a memory or energy figure beyond its
optional threshold) is a confirmed regression. The whole comparison also fails, as ``missing``,
when the candidate lacks more of the cases the baseline measured than ``max_missing`` allows
(default 0: a case that stopped running is not a pass), or when nothing could be compared.
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
    #: the fraction of the baseline's measured cases the candidate may lack and still pass.
    max_missing: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("threshold", "memory_threshold", "energy_threshold"):
            value = getattr(self, name)
            if value is not None and not (0 <= value < 10):
                raise ValueError(f"{name} must be a fraction in [0, 10), got {value!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha!r}")
        if not 0 <= self.max_missing <= 1:
            raise ValueError(f"max_missing must be a fraction in [0, 1], got {self.max_missing!r}")


@dataclass
class Side:
    """One run's measurements of one case on one adapter: samples per repetition."""

    samples: list[list[float]] = field(default_factory=list)
    peak_memory_bytes: list[float] = field(default_factory=list)
    energy_per_item_j: list[float] = field(default_factory=list)
    problem: str = ""

    @property
    def medians(self) -> list[float]:
        return [median(s) for s in self.samples]

    @property
    def median(self) -> float:
        """The median of the repetitions' medians: one odd process moves it little."""
        return median(self.medians)


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
    #: the change that had to be exceeded: max(threshold, noise, spread).
    delta: float = math.nan
    #: relative spread of the baseline's repetition medians (robust σ), NaN with one repetition.
    noise: float = math.nan
    #: the small-sample bar (:func:`spread_bar`), NaN where no spread was measured.
    spread: float = math.nan
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
class GeoMean:
    """A suite's geometric mean of the time ratio over its compared cases, with an interval:
    the geometric means of the cases' bounds. It holds whenever every case's interval holds,
    however the cases' errors are correlated (they share the machine's drift)."""

    ratio: float
    low: float
    high: float
    cases: int


@dataclass(frozen=True)
class ComparisonReport:
    """Every comparison, and the geometric mean of the time ratio per suite and adapter."""

    comparisons: list[Comparison]
    geomeans: dict[tuple[str, str], GeoMean]
    options: Options
    #: "sequential" (two runs, unpaired) or "paired" (an interleaved A/B run).
    method: str = "sequential"
    #: (cases the baseline measured that the candidate lacks, cases the baseline measured);
    #: None where not counted (a report built by hand).
    lost: tuple[int, int] | None = None

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.regression]

    @property
    def missing_failure(self) -> str:
        """Why the comparison cannot pass for want of measurements; empty when it can."""
        if self.lost is None:
            return ""
        lost, measured = self.lost
        if measured == 0:
            return "the baseline measured no case: nothing to compare"
        if lost / measured > self.options.max_missing:
            return (f"the candidate lacks {lost} of the {measured} cases the baseline measured "
                    f"(at most {self.options.max_missing * 100:g}% may be missing)")
        return ""

    @property
    def failed(self) -> bool:
        """A confirmed regression, or too many cases missing: the exit status is 1."""
        return bool(self.regressions or self.missing_failure)

    def counts(self) -> dict[Verdict, int]:
        counts = dict.fromkeys(VERDICTS, 0)
        for c in self.comparisons:
            counts[c.verdict] += 1
        return counts


def median(values: Sequence[float]) -> float:
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
        side = out.setdefault(case_key(row), Side())
        samples = row_samples(row.get("samples_s"))
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


def case_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """(suite, case id, adapter) of a row. The adapter is its label with options
    (``cpu:threads=1``), so two configurations of one backend in a run stay apart, and an A/B
    run's variant is part of it (``cpu [baseline]``): its two sides are never pooled."""
    label = str(row.get("adapter_label") or row["adapter"])
    variant = row.get("variant")
    if isinstance(variant, str) and variant:
        label = f"{label} [{variant}]"
    return str(row.get("suite", "")), str(row["case_id"]), label


def _positive(row: dict[str, Any], column: str) -> float | None:
    """The column's value when it is a finite positive number, else None (missing)."""
    value = row.get(column)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def row_samples(raw: Any) -> list[float]:
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


def spread_bar(groups: Sequence[Sequence[float]], alpha: float) -> float:
    """The small-sample bar: the relative change that the repetitions' spread alone exceeds
    with probability ``alpha``, ``t(1 − alpha, df) × s × √(Σ 1/n)`` on the values' logarithms,
    where ``s`` is the pooled standard deviation of the groups (each about its own mean) and
    ``df`` the total count less the number of groups. Two groups: a two-sample t-test's critical
    difference; one group (paired ratios): a one-sample one. NaN without a degree of freedom."""
    import numpy as np
    from scipy.stats import t  # type: ignore[import-untyped]

    logs = [np.log(np.asarray(g, dtype=float)) for g in groups if len(g)]
    df = sum(len(g) for g in logs) - len(logs)
    if df < 1:
        return math.nan
    squares = sum(float(((g - g.mean()) ** 2).sum()) for g in logs)
    error = math.sqrt(squares / df * sum(1 / len(g) for g in logs))
    return math.expm1(float(t.ppf(1 - alpha, df)) * error)


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
    from scipy.stats import mannwhitneyu

    def pooled(side: Side) -> Any:
        values = np.concatenate([np.asarray(s, dtype=float) for s in side.samples])
        if len(values) > MAX_TEST_SAMPLES:
            values = rng.choice(values, MAX_TEST_SAMPLES, replace=False)
        return values

    b, c = pooled(baseline), pooled(candidate)
    slower = float(mannwhitneyu(c, b, alternative="greater").pvalue)
    faster = float(mannwhitneyu(c, b, alternative="less").pvalue)
    return slower, faster


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
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
    p_slower = benjamini_hochberg([m[3][0] for m in measured])
    p_faster = benjamini_hochberg([m[3][1] for m in measured])
    comparisons = []
    for i, ((suite, case_id, adapter), b, c, _, (low, high)) in enumerate(measured):
        noise = between_noise(b.medians)
        spread = spread_bar([b.medians, c.medians], options.alpha / len(measured))
        delta = bar(options.threshold, noise, spread)
        ratio = c.median / b.median
        verdict = decide(p_slower[i], p_faster[i], low, high, delta, options.alpha)
        memory_ratio, energy_ratio, others = _side_figures(b, c, options)
        comparisons.append(Comparison(
            suite, case_id, adapter, verdict, ratio=ratio, ratio_low=low, ratio_high=high,
            delta=delta, noise=noise, spread=spread, p_slower=p_slower[i],
            p_faster=p_faster[i], baseline_median_s=b.median, candidate_median_s=c.median,
            repetitions=(len(b.samples), len(c.samples)), memory_ratio=memory_ratio,
            energy_ratio=energy_ratio, other_regressions=others,
            note="" if math.isfinite(spread) else UNMEASURED_SPREAD))
    comparisons.extend(missing)
    comparisons.sort(key=lambda x: (x.suite, x.case_id, x.adapter))
    measured_keys = {key for key, side in base.items() if side.samples}
    lost = sum(1 for key in measured_keys if key not in cand or not cand[key].samples)
    return ComparisonReport(comparisons, geometric_means(comparisons), options,
                            lost=(lost, len(measured_keys)))


#: the note on a comparison of one repetition a side: nothing says how far runs drift apart.
UNMEASURED_SPREAD = "one repetition a side: run-to-run noise not measured"


def bar(threshold: float, noise: float, spread: float) -> float:
    """δ, the change a verdict must clear: the largest of the threshold and the measured noise
    figures (NaN ones, not measured, do not count)."""
    return max([threshold, *(x for x in (noise, spread) if math.isfinite(x))])


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
        ratio = median(cand) / median(base) if base and cand else math.nan
        ratios.append(ratio)
        if limit is not None and math.isfinite(ratio) and ratio > 1 + limit:
            others.append(f"{name} +{(ratio - 1) * 100:.1f}% (limit {limit * 100:g}%)")
    return ratios[0], ratios[1], tuple(others)


def geometric_means(comparisons: Sequence[Comparison]) -> dict[tuple[str, str], GeoMean]:
    """Per (suite, adapter): the geometric mean of the time ratios with its interval
    (:class:`GeoMean`), over the cases compared (missing ones have no ratio)."""
    logs: dict[tuple[str, str], list[list[float]]] = {}
    for c in comparisons:
        figures = (c.ratio, c.ratio_low, c.ratio_high)
        if all(math.isfinite(x) and x > 0 for x in figures):
            logs.setdefault((c.suite, c.adapter), []).append([math.log(x) for x in figures])
    out = {}
    for key, values in sorted(logs.items()):
        ratio, low, high = (math.exp(sum(v) / len(v)) for v in zip(*values, strict=True))
        out[key] = GeoMean(ratio, low, high, len(values))
    return out
