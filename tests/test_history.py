"""Many runs as one history: ordered by start time, with git SHA and change per case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.history import history, trend
from harness.results import RunWriter


def a_run(results: Path, started: str, sha: str, median: float) -> None:
    writer = RunWriter(results, {"started_at": started, "git_sha": sha})
    for rep in range(2):
        writer.append({"suite": "s", "case_id": "s/w", "adapter": "cpu", "status": "ok",
                       "repetition": rep, "latency_median_s": median * (1 + rep / 100)})
    writer.close()


def test_runs_are_ordered_by_start_and_trend_gives_the_change(tmp_path: Path) -> None:
    a_run(tmp_path, "2026-01-03T00:00:00+00:00", "ccc", 1.1e-3)
    a_run(tmp_path, "2026-01-01T00:00:00.123+00:00", "aaa", 1e-3)  # another ISO spelling
    frame = history([tmp_path])
    assert list(frame.git_sha) == ["aaa", "aaa", "ccc", "ccc"]
    table = trend(frame)
    assert list(table.git_sha) == ["aaa", "ccc"]
    assert table.latency_median_s.tolist() == pytest.approx([1.005e-3, 1.1055e-3])
    assert table.change.iloc[1] == pytest.approx(0.1)


def test_a_run_without_context_dates_sorts_last(tmp_path: Path) -> None:
    a_run(tmp_path, "2026-01-01T00:00:00+00:00", "aaa", 1e-3)
    a_run(tmp_path, "", "bbb", 1e-3)
    context = next(p for p in tmp_path.glob("*/context.json") if "bbb" in p.read_text())
    context.write_text(json.dumps({"git_sha": "bbb"}))
    assert list(history([tmp_path]).git_sha)[-1] == "bbb"


def test_ab_sides_and_adapter_options_are_never_blended(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, {"started_at": "2026-01-01T00:00:00+00:00", "git_sha": "aaa"})
    for rep in range(2):
        for variant, median in (("baseline", 1e-3), ("candidate", 2e-3)):
            writer.append({"suite": "s", "case_id": "s/w", "adapter": "cpu",
                           "adapter_label": "cpu", "variant": variant, "status": "ok",
                           "repetition": rep, "latency_median_s": median})
        for label, median in (("cpu", 3e-3), ("cpu:threads=1", 4e-3)):
            writer.append({"suite": "s", "case_id": "s/w", "adapter": "cpu",
                           "adapter_label": label, "status": "ok", "repetition": rep,
                           "latency_median_s": median})
    writer.close()
    a_run(tmp_path, "2026-01-02T00:00:00+00:00", "bbb", 3.3e-3)  # an older run: no label
    table = trend(history([tmp_path]))
    lines = {(r.adapter, r.variant, r.git_sha): (r.latency_median_s, r.change)
             for r in table.itertuples()}
    assert lines[("cpu", "baseline", "aaa")][0] == pytest.approx(1e-3)
    assert lines[("cpu", "candidate", "aaa")][0] == pytest.approx(2e-3)
    assert lines[("cpu:threads=1", "", "aaa")][0] == pytest.approx(4e-3)
    assert lines[("cpu", "", "aaa")][0] == pytest.approx(3e-3)
    # The plain cpu line follows the plain cpu line of the next run, not an A/B side.
    assert lines[("cpu", "", "bbb")][1] == pytest.approx(3.3e-3 * 1.005 / 3e-3 - 1)
    assert len(table) == 5
