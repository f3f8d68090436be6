"""Fixtures shared by the adapter tests."""

from __future__ import annotations

import pytest

from harness.adapters import cpu_ceiling
from harness.roofline import Ceiling


@pytest.fixture
def host_ceiling_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int | None]]:
    """Replaces the host CPU's ceiling by 1 TFLOP/s and records each (dtype, threads) asked."""
    asked: list[tuple[str, int | None]] = []

    def host(dtype: str, threads: int | None = None) -> Ceiling:
        asked.append((dtype, threads))
        return Ceiling(1e12, "host", None, "no DMI")

    monkeypatch.setattr(cpu_ceiling, "host_ceiling", host)
    return asked
