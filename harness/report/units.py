"""Human-readable numbers with units (seconds, bytes, rates), NaN printed as a dash, and the
fixed-width grid the terminal tables are printed in."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.terminal import printable

DASH = "-"


def missing(value: Any) -> bool:
    """True for None and NaN: a figure that was not measured."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _num(v: float) -> str:
    """Three significant digits, never in scientific notation (1020 MiB, not 1.02e+03 MiB)."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def seconds(value: Any) -> str:
    """``0.00123`` → ``1.23 ms``."""
    if missing(value):
        return DASH
    v = float(value)
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(v) >= scale:
            return f"{_num(v / scale)} {unit}"
    return f"{_num(v / 1e-9)} ns"


def rate(value: Any, unit: str = "/s") -> str:
    """``12345.6`` → ``12.3 k/s``."""
    if missing(value):
        return DASH
    v = float(value)
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{_num(v / scale)} {prefix}{unit}"
    return f"{_num(v)} {unit}"


def size(value: Any) -> str:
    """Bytes in binary units: ``1536`` → ``1.5 KiB``."""
    if missing(value):
        return DASH
    v = float(value)
    for scale, unit in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(v) >= scale:
            return f"{_num(v / scale)} {unit}"
    return f"{v:.0f} B"


def percent(fraction: Any) -> str:
    """``0.4567`` → ``45.7%``."""
    if missing(fraction):
        return DASH
    return f"{float(fraction) * 100:.3g}%"


def grid(lines: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, the first line a header underlined by dashes.
    Cells come from cases and results files: control characters are escaped (``printable``)."""
    lines = [[printable(cell) for cell in line] for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
