"""CPU package energy from the Linux RAPL counters in /sys/class/powercap, net of idle power."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.collectors import EnergyCollector, Figures

DEFAULT_ROOT = Path("/sys/class/powercap")

#: Numeric columns this collector fills (NaN with a reason when it cannot), plus ``energy_source``.
NUMERIC_COLUMNS = (
    "energy_j",
    "idle_power_w",
    "energy_net_j",
    "mean_power_w",
    "energy_per_item_j",
    "energy_net_per_item_j",
)

# Top-level zones only. /sys/class/powercap lists every zone flat: `intel-rapl` (the control type,
# no colon), `intel-rapl:0` (a package), `intel-rapl:0:0` (its core/uncore/dram subdomains) and on
# some Intel client parts `intel-rapl-mmio:0`, a second interface to the same package counter.
# Summing anything but the `intel-rapl:N` zones would count energy twice. AMD CPUs (Zen, kernel
# >= 5.8) are exposed by the same driver under the same `intel-rapl:N` names.
_ZONE = re.compile(r"intel-rapl:(\d+)")

_PERMISSION_HINT = (
    "permission denied: RAPL counters are root-only since the CVE-2020-8694 fix; run as root or "
    "add a udev rule that makes energy_uj readable"
)


class RaplUnavailable(Exception):
    """RAPL cannot be read here; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RaplDomain:
    """One package-level RAPL zone: its name (``package-0``), counter file and wrap point in µJ."""

    name: str
    energy_path: Path
    max_energy_range_uj: int


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except PermissionError:
        raise RaplUnavailable(f"cannot read {path}: {_PERMISSION_HINT}") from None
    except OSError as exc:
        raise RaplUnavailable(f"cannot read {path}: {exc.strerror or exc}") from None


def _read_uj(path: Path) -> int:
    text = _read(path)
    try:
        return int(text)
    except ValueError:
        raise RaplUnavailable(f"{path} holds {text!r}, not a count of microjoules") from None


def discover(root: Path = DEFAULT_ROOT) -> list[RaplDomain]:
    """The package-level RAPL domains under ``root``, in package order.

    Raises :class:`RaplUnavailable` when there are none or a counter cannot be read (each counter
    is read once here, so that a permission problem shows up before any measurement).
    """
    found: list[tuple[int, RaplDomain]] = []
    try:
        entries = sorted(root.iterdir()) if root.is_dir() else []
    except OSError as exc:
        raise RaplUnavailable(f"cannot list {root}: {exc.strerror or exc}") from None
    for entry in entries:
        match = _ZONE.fullmatch(entry.name)
        if match is None or not entry.is_dir():
            continue
        name = _read(entry / "name")
        # `psys` (platform, Skylake+ clients) is a top-level zone that already contains the
        # package energy; only `package-N` (or `package-N-die-M`) zones are summed.
        if not name.startswith("package"):
            continue
        max_range = _read_uj(entry / "max_energy_range_uj")
        _read_uj(entry / "energy_uj")
        found.append((int(match.group(1)), RaplDomain(name, entry / "energy_uj", max_range)))
    if not found:
        raise RaplUnavailable(
            f"no RAPL domains under {root} (kernel without intel_rapl or a virtual machine)"
        )
    return [domain for _, domain in sorted(found, key=lambda pair: pair[0])]


def _counters(domains: Sequence[RaplDomain]) -> tuple[int, ...]:
    return tuple(_read_uj(domain.energy_path) for domain in domains)


def _energy_j(domains: Sequence[RaplDomain], before: Sequence[int], after: Sequence[int]) -> float:
    total_uj = 0
    for domain, start, end in zip(domains, before, after, strict=True):
        # The counter wraps to 0 at max_energy_range_uj (about 262 kJ on most parts: minutes at
        # full load even on the largest packages). A window lasts seconds, so it can wrap at most
        # once; a second wrap inside one window would go unnoticed.
        total_uj += end - start if end >= start else end + domain.max_energy_range_uj - start
    return total_uj / 1e6


@dataclass(frozen=True)
class _Mark:
    domains: tuple[RaplDomain, ...]
    counters: tuple[int, ...]
    t_s: float


class RaplCollector(EnergyCollector):
    """Energy of all CPU packages over a window, from RAPL counters (µJ) in sysfs.

    RAPL measures whole packages, not this process: anything else running on the machine is
    counted too, which is why :meth:`calibrate` measures idle power once and the net figures
    subtract it. Both gross and net figures are reported; the net ones are NaN (with a reason)
    until calibration succeeds. Nothing here raises on a machine without usable RAPL: every figure
    is NaN with the reason in :attr:`Figures.missing`.

    Args:
        root: the powercap folder; tests point it at a fake tree.
        idle_window_s: how long :meth:`calibrate` measures idle power.
        sleep: waits that many seconds (injected for tests).
        clock: monotonic seconds (injected for tests); also times each window.
    """

    name: ClassVar[str] = "energy"
    # Counters update about every ms, but a >= 1 s window keeps quantisation and the jitter of
    # reading several sysfs files small relative to the total.
    min_window_s: ClassVar[float] = 1.0

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        *,
        idle_window_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__(idle_window_s, sleep, clock)
        self.root = Path(root)
        self._mark: _Mark | None = None
        self._mark_reason = "stop() called without start()"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether RAPL is readable under the default root; the reason when not."""
        return cls().check()

    def check(self) -> tuple[bool, str]:
        """Whether RAPL is readable under this instance's root; the reason when not."""
        try:
            discover(self.root)
        except RaplUnavailable as exc:
            return False, exc.reason
        return True, ""

    def _take_mark(self, domains: Sequence[RaplDomain]) -> _Mark:
        # Counters first, then the clock, at both ends: the offsets cancel in the window.
        counters = _counters(domains)
        return _Mark(tuple(domains), counters, self._clock())

    def calibrate(self) -> None:
        """Measure idle power over ``idle_window_s``; a failure leaves the net figures NaN."""
        self._idle_power_w = None
        try:
            domains = discover(self.root)
            before = self._take_mark(domains)
            self._sleep(self.idle_window_s)
            after = self._take_mark(domains)
        except RaplUnavailable as exc:
            self._idle_reason = f"idle power not measured: {exc.reason}"
            return
        elapsed_s = after.t_s - before.t_s
        if elapsed_s <= 0:
            self._idle_reason = "idle power not measured: the clock did not advance"
            return
        self._idle_power_w = _energy_j(domains, before.counters, after.counters) / elapsed_s

    def start(self) -> None:
        """Read the counters and the clock; a failure is reported by :meth:`stop`."""
        self._mark = None
        try:
            self._mark = self._take_mark(discover(self.root))
        except RaplUnavailable as exc:
            self._mark_reason = exc.reason

    def stop(self, calls: int, items_per_call: int) -> Figures:
        """Energy over the window since :meth:`start`; see :data:`NUMERIC_COLUMNS`."""
        start, self._mark = self._mark, None
        if start is None:
            return _unavailable(self._mark_reason)
        try:
            end = self._take_mark(start.domains)
        except RaplUnavailable as exc:
            return _unavailable(exc.reason)
        window_s = end.t_s - start.t_s
        items = calls * items_per_call
        energy_j = _energy_j(start.domains, start.counters, end.counters)
        figures = Figures(
            values={"energy_source": "rapl:" + "+".join(d.name for d in start.domains)}
        )

        self.put_energy(figures, energy_j, window_s, items)
        return figures


def _unavailable(reason: str) -> Figures:
    """Every numeric figure NaN with ``reason``; the source says why."""
    values: dict[str, object] = dict.fromkeys(NUMERIC_COLUMNS, float("nan"))
    values["energy_source"] = f"unavailable: {reason}"
    return Figures(values=values, missing=dict.fromkeys(NUMERIC_COLUMNS, reason))
