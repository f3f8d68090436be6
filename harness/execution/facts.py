"""Each adapter's facts (:meth:`~harness.adapters.Adapter.info`) in a run's ``context.json``, as
the process that runs its cases first reports them.

A run's parent builds no adapter to ask: a device adapter would start its device there (a CUDA
context held all run long, counted in every case's device memory, and refusing the workers a GPU
in exclusive-process mode). So the first worker that runs a case of an adapter brings its info
back with the row, and the parent records it; with ``--no-isolate`` the parent is that process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the key a placeholder carries when the adapter's info() itself failed.
FAILED = "info_missing"


class AdapterFacts:
    """Adapter label → info, read from a run folder's context and written back as learnt."""

    def __init__(self, run: Path) -> None:
        from harness.results import read_context

        self.run = run
        self.known: dict[str, Any] = dict(read_context(run).get("adapters") or {})

    def wants(self, label: str) -> bool:
        """Whether the run has no info of ``label`` yet (or only why it failed)."""
        known = self.known.get(label)
        return not isinstance(known, dict) or FAILED in known

    def record(self, label: str, info: dict[str, Any] | None) -> None:
        """Store ``info`` (None: nothing came back) unless the run already holds it; a real
        info replaces an earlier failure's placeholder."""
        from harness.results import update_context

        if info is None or not self.wants(label) or (FAILED in info and label in self.known):
            return
        self.known[label] = info
        update_context(self.run, {"adapters": {label: info}})


def info_of(adapter: Any) -> dict[str, Any]:
    """``adapter.info()``, or a placeholder naming why it failed (the case's row is kept)."""
    from harness.execution.rows import error_text

    try:
        info: dict[str, Any] = adapter.info()
    except Exception as exc:
        return {"name": adapter.name, FAILED: f"info() failed: {error_text(exc)}"}
    return info


def record_facts(run: Path, adapters: dict[str, Any]) -> None:
    """Record in the run's context the info of ``adapters`` (by label), built in this process
    to run the cases (``--no-isolate``, or a repetition's worker)."""
    facts = AdapterFacts(run)
    for label, adapter in adapters.items():
        if facts.wants(label):
            facts.record(label, info_of(adapter))
