"""FPGA board energy from XRT's board-power sensor, sampled with ``xrt-smi``/``xbutil``.

XRT exposes no energy counter, only the board's instantaneous power
(``electrical.power_consumption_watts`` in the ``electrical`` report of ``xbutil examine``). So
this collector samples that figure in a background thread over the window and integrates it as
mean power × window length. The figures are therefore *sampled*: ``energy_source`` says so, with
the sample count, and a board whose power swings faster than the sampling period (each call of
the tool takes ~0.1–1 s) is averaged coarsely.

XRT renamed ``xbutil`` to ``xrt-smi`` in 2024.2 and dropped the old name in 2025.1; either is
used, the new name first. The JSON report (XRT's ``JSON-2020.2`` schema, written with
``--format JSON --output FILE``) looks like::

    {"schema_version": {...}, "system": {...},
     "devices": [{"device_id": "0000:b3:00.1", ...,
                  "electrical": {"power_consumption_max_watts": "225",
                                 "power_consumption_watts": "23.100000",
                                 "power_rails": [...]}}]}

with every value a string (boost's property-tree JSON writer). Parsing is defensive: the power
figure is looked for under the chosen device, then anywhere in the report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from harness.collectors import EnergyCollector, Figures
from harness.collectors.energy import NUMERIC_COLUMNS
from harness.text import first_line

#: XRT's board tool under its current name first, then the name it had until 2024.2.
TOOLS = ("xrt-smi", "xbutil")
POWER_KEY = "power_consumption_watts"
NOT_FOUND = "xbutil/xrt-smi (XRT) not found on PATH; install XRT for the board"
NAN = float("nan")


class XrtError(Exception):
    """One power reading failed; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def find_tool() -> str | None:
    """The path of ``xrt-smi`` or ``xbutil`` on PATH, or None."""
    for name in TOOLS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``node``, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def parse_power(report: Any, device: str | None = None) -> float:
    """Board power in watts from an ``xbutil examine --report electrical`` JSON report.

    With ``device`` (a BDF), the entry of ``devices`` whose ``device_id`` matches is read;
    otherwise the first power figure in the report. Raises :class:`XrtError` when there is none
    or it is not a positive number (a board without the sensor reports 0 or ``N/A``).
    """
    scope: Any = report
    if device and isinstance(report, dict) and isinstance(report.get("devices"), list):
        matching = [d for d in report["devices"]
                    if isinstance(d, dict) and str(d.get("device_id", "")).lower()
                    == device.lower()]
        if not matching:
            ids = [str(d.get("device_id")) for d in report["devices"] if isinstance(d, dict)]
            raise XrtError(f"the report has no device {device} (devices: {', '.join(ids)})")
        scope = matching[0]
    for node in _walk(scope):
        if POWER_KEY in node:
            raw = node[POWER_KEY]
            try:
                watts = float(raw)
            except (TypeError, ValueError):
                raise XrtError(f"{POWER_KEY} is {raw!r}, not a number") from None
            if not watts > 0:  # also catches NaN
                raise XrtError(f"{POWER_KEY} is {raw!r}: the board reports no power reading")
            return watts
    raise XrtError(f"no {POWER_KEY} in the electrical report (no xclbin loaded, or a board "
                   "without a power sensor)")


class XrtPowerCollector(EnergyCollector):
    """Energy of one FPGA board over a window, from sampled board power (XRT).

    A background thread runs ``<tool> examine [--device BDF] --report electrical --format JSON
    --output FILE`` every ``interval_s`` (plus the tool's own run time) while the case runs;
    energy is the mean of the samples × the window. :meth:`calibrate` samples idle power the same
    way; the net figures subtract it. The columns are the RAPL collector's. Nothing raises: a
    missing tool or unreadable reports leave every figure NaN with the reason.

    Args:
        device: the board's PCIe BDF (``0000:b3:00.1``); optional when XRT sees one board.
        tool: the tool's path; found on PATH (``xrt-smi``, then ``xbutil``) by default.
        interval_s: pause between samples.
        idle_window_s: how long :meth:`calibrate` samples idle power.
        timeout_s: longest wait for one call of the tool.
        clock: monotonic seconds (injected for tests); times each window.
        sleep: waits that many seconds (injected for tests); used by :meth:`calibrate`.
    """

    name: ClassVar[str] = "xrt_power"
    # Each sample costs a process start and a sensor read (~0.1–1 s): a window of a few seconds
    # gives a handful of samples at least.
    min_window_s: ClassVar[float] = 2.0

    def __init__(
        self,
        device: str | None = None,
        *,
        tool: str | None = None,
        interval_s: float = 0.2,
        idle_window_s: float = 2.0,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if interval_s < 0 or idle_window_s <= 0 or timeout_s <= 0:
            raise ValueError("interval_s must be >= 0, idle_window_s and timeout_s positive")
        super().__init__(idle_window_s, sleep, clock)
        self.device = device or None
        self.tool = tool or find_tool()
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._folder: Path | None = None
        self._cleanup: weakref.finalize[Any, Any] | None = None
        self._count = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._samples: list[float] = []
        self._errors: list[str] = []
        self._start_s: float | None = None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether an XRT board tool is on PATH (a board may still refuse to report power)."""
        return (True, "") if find_tool() else (False, NOT_FOUND)

    @property
    def tool_name(self) -> str:
        """``xrt-smi`` or ``xbutil``: the name the figures are labelled with."""
        return Path(self.tool).name if self.tool else "xbutil"

    # --- one reading ---------------------------------------------------------------------

    def sample(self) -> float:
        """One board-power reading in watts; raises :class:`XrtError` with the reason."""
        if self.tool is None:
            raise XrtError(NOT_FOUND)
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="harness-xrt-"))
            # Removed by close(), or when the collector is garbage-collected without it.
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._folder, True)
        self._count += 1
        # A fresh file per reading: `examine --output` refuses to overwrite without --force.
        output = self._folder / f"electrical-{self._count}.json"
        command = [self.tool, "examine"]
        if self.device:
            command += ["--device", self.device]
        command += ["--report", "electrical", "--format", "JSON", "--output", str(output)]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise XrtError(f"{self.tool_name} examine took over {self.timeout_s:g} s") from None
        except OSError as exc:
            raise XrtError(f"cannot run {self.tool}: {exc.strerror or exc}") from None
        try:
            if done.returncode != 0:
                detail = first_line(done.stderr) or first_line(done.stdout) or "no output"
                raise XrtError(f"{self.tool_name} examine exited with {done.returncode}: {detail}")
            try:
                text = output.read_text(encoding="utf-8")
            except OSError:
                raise XrtError(f"{self.tool_name} examine wrote no report to {output}") from None
            try:
                report = json.loads(text)
            except json.JSONDecodeError:
                raise XrtError(f"{self.tool_name} examine wrote a report that is not JSON: "
                               f"{first_line(text, 80)!r}") from None
            return parse_power(report, self.device)
        finally:
            output.unlink(missing_ok=True)

    # --- windows -------------------------------------------------------------------------

    def _sampling(self, stop: threading.Event, samples: list[float], errors: list[str]) -> None:
        while not stop.is_set():
            try:
                samples.append(self.sample())
            except XrtError as exc:
                errors.append(exc.reason)
            stop.wait(self.interval_s)

    def calibrate(self) -> None:
        """Sample idle power for ``idle_window_s``; a failure leaves the net figures NaN."""
        self._idle_power_w = None
        if self.tool is None:
            self._idle_reason = f"idle power not measured: {NOT_FOUND}"
            return
        readings: list[float] = []
        errors: list[str] = []
        deadline = self._clock() + self.idle_window_s
        while True:
            try:
                readings.append(self.sample())
            except XrtError as exc:
                errors.append(exc.reason)
            if self._clock() >= deadline:
                break
            self._sleep(self.interval_s)
        if readings:
            self._idle_power_w = sum(readings) / len(readings)
        else:
            self._idle_reason = f"idle power not measured: {errors[-1]}"

    def start(self) -> None:
        """Start sampling in a background thread; failures are reported by :meth:`stop`."""
        self._halt()
        self._samples, self._errors = [], []
        self._stop = threading.Event()
        self._start_s = self._clock()
        if self.tool is None:
            return
        self._thread = threading.Thread(target=self._sampling, name="xrt-power",
                                        args=(self._stop, self._samples, self._errors),
                                        daemon=True)
        self._thread.start()

    def _halt(self) -> None:
        if self._thread is not None:
            self._stop.set()
            # A reading in flight finishes (or times out) first; it still belongs to the window.
            self._thread.join(self.timeout_s + 1.0)
            self._thread = None

    def stop(self, calls: int, items_per_call: int) -> Figures:
        """Figures of the window since :meth:`start`; the RAPL collector's columns."""
        end_s = self._clock()
        start_s, self._start_s = self._start_s, None
        self._halt()
        if self.tool is None:
            return _unavailable(NOT_FOUND)
        if start_s is None:
            return _unavailable("stop() called without start()")
        samples, errors = list(self._samples), list(self._errors)
        if not samples:
            return _unavailable(errors[-1] if errors else
                                "no power reading finished inside the window")
        window_s = end_s - start_s
        if window_s <= 0:
            return _unavailable(f"the window lasted {window_s} s")
        mean_w = sum(samples) / len(samples)
        failed = f", {len(errors)} failed" if errors else ""
        figures = Figures(values={
            "energy_source": f"{self.tool_name} sampled board power ({len(samples)} samples"
                             f"{failed}; mean power × window)",
        })
        # Sampled power integrated over the window: an estimate of energy between samples,
        # which the source says; the arithmetic is the same as for counters.
        self.put_energy(figures, mean_w * window_s, window_s, calls * items_per_call)
        return figures

    def close(self) -> None:
        """Stop any sampling thread and remove the report folder."""
        self._halt()
        if self._cleanup is not None:
            self._cleanup()
        self._folder, self._cleanup = None, None


def _unavailable(reason: str) -> Figures:
    """Every numeric figure NaN with ``reason``; the source says why."""
    values: dict[str, object] = dict.fromkeys(NUMERIC_COLUMNS, NAN)
    values["energy_source"] = f"unavailable: {reason}"
    return Figures(values=values, missing=dict.fromkeys(NUMERIC_COLUMNS, reason))
