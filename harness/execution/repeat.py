"""``--repeat N`` without isolation: each repetition runs every case inline, in a fresh process.

Cases of an isolated run are fresh workers already, so their repetitions are a plain loop
(:func:`harness.execution.execute`). Without isolation all cases share one process, and what
that process has learnt (allocator state, caches, JIT) would carry from one repetition to the
next; so each repetition is a worker of its own that reads the run's configuration from the run
folder, as ``--resume`` does, and appends its rows there. Each repetition runs every case once,
in order, so slow drifts of the machine spread over all cases alike; the parent only waits.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from harness.execution.workers import Limits, run_in_worker

REPETITION_TARGET = "harness.execution.repeat:repetition_target"


def run_repetitions(run: Path, repeat: int, recalibrate: bool = False) -> str | None:
    """Run repetitions 0…``repeat``-1 of the run folder ``run``, each in a fresh worker; None,
    or why one failed (rows finished so far stay on disk)."""
    for k in range(repeat):
        print(f"repetition {k + 1}/{repeat}", file=sys.stderr)
        result = run_in_worker(REPETITION_TARGET, {"run": str(run), "repetition": k,
                                                   "recalibrate": recalibrate},
                               Limits(timeout_s=None))
        if "error" in result:
            return f"repetition {k + 1}: {result['error']}"
    return None


def repetition_target(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one repetition of a run folder's plan inline, appending its rows: ``{"rows": n}``."""
    import dataclasses

    from harness.config import RunConfig
    from harness.execution.facts import record_facts
    from harness.execution.hooks import Hooks
    from harness.execution.loop import Runner, close_all, instantiate
    from harness.execution.rows import row_key
    from harness.plan import make_plan
    from harness.progress import Progress
    from harness.results import RunWriter, read_context, read_rows

    run = Path(payload["run"])
    config = dataclasses.replace(
        RunConfig.from_stored(read_context(run)["config"], run.parent, payload["recalibrate"]),
        repetition=payload["repetition"])
    plan = make_plan(config)
    done = {row_key(row) for row in read_rows(run)}
    progress = Progress(len(plan), sys.stderr)
    writer = RunWriter.reopen(run)
    adapters = instantiate(plan)
    try:
        record_facts(run, adapters)
        rows = Runner(config, plan, writer, Hooks(progress.start, progress.done),
                      done=done).run(adapters)
    finally:
        writer.close()
        progress.finish()
        failure = close_all(list(adapters.values()))
    if failure:
        return {"rows": len(rows), "error": f"{failure}, after its cases"}
    return {"rows": len(rows)}
