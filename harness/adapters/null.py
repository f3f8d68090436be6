"""The ``null`` adapter: does nothing, so its figures are the harness's own overhead per call."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.adapters import Adapter, Step
from harness.roofline import Ceiling, NoPeaks, Peaks
from harness.workload import Task

NO_HARDWARE = "the null adapter runs no hardware: it has no peak to compare with"


def _nothing() -> None:
    return None


class NullAdapter(Adapter):
    """Times an empty call in place of every task: what remains is loop and clock overhead."""

    name: ClassVar[str] = "null"
    checks_output: ClassVar[bool] = False

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    def prepare(self, task: Task) -> Step:
        return _nothing

    def peaks(self, dtype: str) -> Peaks:
        raise NoPeaks(NO_HARDWARE)

    def ceiling(self, dtype: str) -> Ceiling:
        return Ceiling.unknown(NO_HARDWARE)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "purpose": "harness overhead"}
