"""Many runs as one history: every row with its run's date and git SHA, oldest first."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def history(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Rows of every run under ``paths`` with ``run_started_at`` (UTC) and ``git_sha`` columns,
    sorted by start time; repetitions stay separate rows."""
    import pandas as pd

    from harness.results import load, read_context, run_folders

    runs = list(run_folders(paths))
    frame = load(*runs)
    facts = {}
    for run in runs:
        context = read_context(run)
        facts[run.name] = (context.get("started_at"), context.get("git_sha"))
    frame["run_started_at"] = pd.to_datetime(
        [facts.get(r, (None, None))[0] for r in frame["run_id"]], utc=True, errors="coerce",
        format="ISO8601")
    frame["git_sha"] = [facts.get(r, (None, None))[1] for r in frame["run_id"]]
    return frame.sort_values(["run_started_at", "run_id"], kind="stable").reset_index(drop=True)


def trend(frame: pd.DataFrame) -> pd.DataFrame:
    """Per run, case, adapter and A/B variant: the median latency (median over repetitions),
    with the change from the previous run of the same case, adapter and variant; timing-loop
    rows only.

    The adapter is its label with options (``cpu:threads=1``), so two configurations of one
    backend stay apart, and an ``ab`` run's baseline and candidate rows are two lines
    (``variant``), never one median of both sides."""
    from harness.scenarios import LOAD_SCENARIOS

    # Load-scenario rows (latency under load) are not comparable with timing-loop medians.
    ok = frame[(frame["status"] == "ok") & ~frame["scenario"].isin(LOAD_SCENARIOS)]
    label = ok["adapter_label"].where(ok["adapter_label"].notna() & (ok["adapter_label"] != ""),
                                      ok["adapter"])
    variant = ok["variant"].where(ok["variant"].notna(), "").astype(str)
    ok = ok.assign(adapter=label, variant=variant)
    keys = ["case_id", "adapter", "variant"]
    grouped = (ok.groupby(["run_started_at", "run_id", "git_sha", *keys], dropna=False,
                          sort=False)["latency_median_s"].median().reset_index())
    grouped = grouped.sort_values([*keys, "run_started_at"], kind="stable")
    previous = grouped.groupby(keys)["latency_median_s"].shift()
    grouped["change"] = grouped["latency_median_s"] / previous - 1
    return grouped.reset_index(drop=True)
