"""Progress callbacks that every run mode calls as cases start and rows arrive."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.plan import AdapterSpec
    from harness.workload import Case

#: (case, adapter, 1-based position, total) as a case starts.
OnStart = Callable[["Case", "AdapterSpec", int, int], None]
#: (row, 1-based position, total) as its row arrives.
OnRow = Callable[[dict[str, Any], int, int], None]
#: (repetition, repetitions, cases in the plan, cases already in the run folder) as a pass over
#: the plan begins.
OnPass = Callable[[int, int, int, int], None]


@dataclass
class Hooks:
    """Progress callbacks for the command line; all optional."""

    on_start: OnStart | None = None
    on_row: OnRow | None = None
    on_pass: OnPass | None = None
    #: a pass over the plan ended (finished or interrupted).
    on_pass_end: Callable[[], None] | None = None

    def pass_begins(self, repetition: int, repetitions: int, total: int, skipped: int) -> None:
        if self.on_pass:
            self.on_pass(repetition, repetitions, total, skipped)

    def pass_ends(self) -> None:
        if self.on_pass_end:
            self.on_pass_end()

    def started(self, case: Case, spec: AdapterSpec, index: int, total: int) -> None:
        if self.on_start:
            self.on_start(case, spec, index, total)

    def arrived(self, row: dict[str, Any], index: int, total: int) -> None:
        if self.on_row:
            self.on_row(row, index, total)
