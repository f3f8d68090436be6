"""Progress on stderr while a run goes: a redrawn bar on a terminal, one line per case otherwise."""

from __future__ import annotations

import time
from typing import Any, TextIO

from harness.execution.hooks import Hooks
from harness.plan import AdapterSpec
from harness.report import units
from harness.terminal import printable
from harness.workload import Case

BAR = 24


class Progress:
    """Feeds on the runner's hooks; never touches stdout, where the table goes."""

    def __init__(self, total: int, stream: TextIO):
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._width = 0

    def hooks(self) -> Hooks:
        """The execution layer's callbacks, drawing this progress."""
        return Hooks(on_start=self.start, on_row=self.done, on_pass=self.begin,
                     on_pass_end=self.finish)

    def begin(self, repetition: int, repetitions: int, total: int, skipped: int) -> None:
        """A pass over the plan begins: repetition ``repetition`` (0-based) of ``repetitions``,
        ``skipped`` of its ``total`` cases already in the run folder."""
        if repetitions > 1:
            self.stream.write(f"repetition {repetition + 1}/{repetitions}\n")
        self.total, self.started, self._width = total, time.monotonic(), 0
        self.skipped(skipped)

    def skipped(self, count: int) -> None:
        """Say how many cases a resumed run already holds (and will not run again)."""
        if count:
            self.stream.write(f"{count} of {self.total} case(s) already in the run folder: "
                              "not run again\n")
            self.stream.flush()

    def _draw(self, text: str) -> None:
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def start(self, case: Case, spec: AdapterSpec, index: int, total: int) -> None:
        if self.tty:
            filled = BAR * (index - 1) // max(total, 1)
            bar = "#" * filled + "." * (BAR - filled)
            elapsed = time.monotonic() - self.started
            self._draw(printable(f"[{bar}] {index}/{total} {elapsed:5.0f}s  {case.id} on "
                                 f"{spec.label}")[:160])

    def done(self, row: dict[str, Any], index: int, total: int) -> None:
        if not self.tty:
            figure = units.seconds(row.get("latency_median_s")) if row["status"] == "ok" else ""
            self.stream.write(printable(f"[{index}/{total}] {row['status']:<7} {row['case_id']} "
                                        f"on {row['adapter']} {figure}".rstrip()) + "\n")
            self.stream.flush()

    def finish(self) -> None:
        if self.tty and self._width:
            self._draw("")
            self.stream.write("\r")
            self.stream.flush()
