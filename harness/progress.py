"""Progress on stderr while a run goes: on a terminal, a bar (drawn by ``rich``) with the cases
done, the time so far and an estimate of the time left; otherwise one plain line per case.

The bar is redrawn only when a case starts or its row arrives, never by a timer: a refresh
thread in this process would take the GIL from a case timed in it (``--no-isolate``) and wake
on the cores being measured (docs/architecture.md, "Workers", rule 5). So the elapsed time on
the bar stands still during a long case; the plain lines and the table are unaffected.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TextIO

from harness.execution.hooks import Hooks
from harness.plan import AdapterSpec
from harness.report import units
from harness.terminal import printable
from harness.workload import Case

if TYPE_CHECKING:
    from rich.progress import Progress as Bar
    from rich.progress import TaskID

#: the bar's width in characters.
BAR = 24


def clock(seconds: float) -> str:
    """``75.4`` → ``1:15``; ``3725`` → ``1:02:05``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def estimate_left(elapsed: float, done: int, remaining: int) -> float | None:
    """Seconds still to go at the mean pace of the ``done`` cases so far; None before the first
    case is done (nothing to estimate from). Cases differ in length, so this is an estimate
    and is labelled one wherever it is shown."""
    if done <= 0:
        return None
    return elapsed / done * max(remaining, 0)


class Progress:
    """Feeds on the runner's hooks; never touches stdout, where the table goes."""

    def __init__(self, total: int, stream: TextIO):
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        #: rows arrived in this pass, and the cases of this pass the run folder already had.
        self.finished = 0
        self.skipped_count = 0
        #: adapter labels of the cases running now (interleaved runs start several at once).
        self._running: dict[str, str] = {}
        self._bar: Bar | None = None
        self._task: TaskID | None = None

    def hooks(self) -> Hooks:
        """The execution layer's callbacks, drawing this progress."""
        return Hooks(on_start=self.start, on_row=self.done, on_pass=self.begin,
                     on_pass_end=self.finish)

    def begin(self, repetition: int, repetitions: int, total: int, skipped: int) -> None:
        """A pass over the plan begins: repetition ``repetition`` (0-based) of ``repetitions``,
        ``skipped`` of its ``total`` cases already in the run folder."""
        self.finish()
        if repetitions > 1:
            self.stream.write(f"repetition {repetition + 1}/{repetitions}\n")
        self.total, self.started, self.finished = total, time.monotonic(), 0
        self.skipped_count = 0
        self.skipped(skipped)

    def skipped(self, count: int) -> None:
        """Say how many cases a resumed run already holds (and will not run again)."""
        self.skipped_count = count
        if count:
            self.stream.write(f"{count} of {self.total} case(s) already in the run folder: "
                              "not run again\n")
            self.stream.flush()

    def status(self, total: int) -> str:
        """``12/40  0:41 elapsed  ~2:10 left (estimate)``: the figures beside the bar."""
        elapsed = time.monotonic() - self.started
        to_run = max(total - self.skipped_count, 0)
        left = estimate_left(elapsed, self.finished, to_run - self.finished)
        guess = "time left: estimating" if left is None else f"~{clock(left)} left (estimate)"
        return f"{self.finished}/{to_run}  {clock(elapsed)} elapsed  {guess}"

    def start(self, case: Case, spec: AdapterSpec, index: int, total: int) -> None:
        if self.tty:
            self._running[spec.label] = case.id
            self._draw(total)

    def done(self, row: dict[str, Any], index: int, total: int) -> None:
        self.finished += 1
        label = str(row.get("adapter_label") or row["adapter"])
        if not self.tty:
            figure = units.seconds(row.get("latency_median_s")) if row["status"] == "ok" else ""
            self.stream.write(printable(f"[{index}/{total}] {row['status']:<7} {row['case_id']} "
                                        f"on {label} {figure}".rstrip()) + "\n")
            self.stream.flush()
            return
        self._running.pop(label, None)
        self._draw(total)

    def _draw(self, total: int) -> None:
        """Redraw the bar now (there is no refresh thread: see the module's docstring)."""
        if self._bar is None:
            self._bar, self._task = self._open(total)
        assert self._task is not None
        cases = set(self._running.values())
        what = ("" if not cases else  # an interleaved case runs on several adapters at once
                f"{cases.pop()} on {', '.join(self._running)}" if len(cases) == 1
                else f"{len(self._running)} cases running")
        line = printable(f"{self.status(total)}  {what}".rstrip())
        # Cut at the end, so that on a narrow terminal the case's name goes before the figures.
        room = max(self._bar.console.width - BAR - 2, 10)
        if len(line) > room:
            line = line[:room - 1] + "…"
        self._bar.update(self._task, total=max(total - self.skipped_count, 1),
                         completed=self.finished, line=line)
        self._bar.start()  # once (later calls do nothing), drawing the line just set
        self._bar.refresh()

    def _open(self, total: int) -> tuple[Bar, TaskID]:
        from rich.console import Console
        from rich.progress import BarColumn, TextColumn
        from rich.progress import Progress as Bar
        from rich.table import Column

        # markup=False: case ids hold brackets, which rich would read as style tags.
        bar = Bar(BarColumn(bar_width=BAR, table_column=Column(min_width=BAR, no_wrap=True)),
                  TextColumn("{task.fields[line]}", markup=False,
                             table_column=Column(no_wrap=True)),
                  console=Console(file=self.stream, force_terminal=True),
                  auto_refresh=False, transient=True, redirect_stdout=False)
        task = bar.add_task("", total=max(total - self.skipped_count, 1), line="")
        return bar, task

    def finish(self) -> None:
        """Take the bar off the terminal (a pass ended, finished or interrupted)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar, self._task = None, None
        self._running.clear()
