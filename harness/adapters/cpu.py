"""The ``cpu`` adapter: torch eager on the host, with an explicit, recorded thread count."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from harness.adapters import Adapter, AdapterError, Step
from harness.adapters.calibration import measure_peaks
from harness.collectors import Collector
from harness.roofline import Ceiling, Peaks
from harness.workload import ParamValue, Task

if TYPE_CHECKING:
    from harness.profiling.model import NativeProfile


def physical_cores() -> int:
    """The host's physical cores (logical ones, or 1, where psutil cannot tell)."""
    try:
        import psutil

        return int(psutil.cpu_count(logical=False) or os.cpu_count() or 1)
    except ImportError:  # psutil is a dependency, but the count must never break a run
        return os.cpu_count() or 1


#: eager: as written; compile: torch.compile (Inductor, C++ on the CPU).
ENGINES = ("eager", "compile")


class CpuAdapter(Adapter):
    """Runs torch workloads eagerly on the CPU under ``torch.inference_mode``.

    Option ``threads`` (default: torch's own default, one per physical core) sets
    ``torch.set_num_threads``; the value in force is recorded in every row.
    """

    name: ClassVar[str] = "cpu"
    preload: ClassVar[tuple[str, ...]] = ("torch",)
    options: ClassVar[dict[str, ParamValue | None]] = {"threads": None}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        import torch

        threads = self.config["threads"]
        if threads is None:
            threads = torch.get_num_threads()
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise AdapterError(f"cpu:threads must be a positive integer, got {threads!r}")
        self._previous_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        self.config["threads"] = threads

    @classmethod
    def available(cls) -> tuple[bool, str]:
        # find_spec, not import: `harness list` must not pay torch's import time.
        if importlib.util.find_spec("torch") is None:
            return False, "torch is not installed; pip install torch"
        return True, ""

    def info(self) -> dict[str, Any]:
        import torch

        return {
            **super().info(),
            "processor": platform.processor() or platform.machine(),
            "physical_cores": physical_cores(),
            "logical_cores": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "interop_threads": torch.get_num_interop_threads(),
            "torch": torch.__version__,
            "mkldnn": bool(torch.backends.mkldnn.is_available()),  # type: ignore[no-untyped-call]
        }

    def collectors(self) -> list[Collector]:
        from harness.collectors.energy import RaplCollector

        # The CPU package energy counter: this adapter's device is the host's processor.
        return [RaplCollector()]

    def supports(self, task: Task) -> tuple[bool, str]:
        if task.engine not in ENGINES:
            return False, (f"the cpu adapter has no engine {task.engine!r}; "
                           f"it runs {', '.join(ENGINES)}")
        return True, ""

    def prepare(self, task: Task) -> Step:
        import torch

        fn = task.fn_for(self.name)
        if isinstance(fn, torch.nn.Module):
            fn.eval()
        if task.engine == "compile":
            # Compilation happens lazily in the first call, which the timer keeps apart as
            # first_call_s: compile time is its own figure, never part of latency.
            fn = torch.compile(fn)
            self.compile_missing = "torch.compile compiles in the first call: see first_call_s"
        inputs = task.inputs

        def step() -> Any:
            return fn(*inputs)

        return step

    def profile(self, task: Task, step: Step, calls: int) -> NativeProfile:
        """torch.profiler's aten operators; cProfile for host-only Python work (no aten
        operator to see)."""
        if task.runs_on_host:
            return super().profile(task, step, calls)
        from harness.profiling import torch_profile

        return torch_profile.profile(step, self.synchronize, calls, self.device,
                                     phases=task.generation is not None)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        import torch

        # Entered once around a whole sampling loop, so its cost is outside each call.
        with torch.inference_mode():
            yield

    def ceiling(self, dtype: str) -> Ceiling:
        from harness.adapters.cpu_ceiling import host_ceiling

        return host_ceiling(dtype, self.config["threads"])

    def close(self) -> None:
        import torch

        torch.set_num_threads(self._previous_threads)


_HOST_PEAKS: dict[str, Peaks] = {}


def host_peaks(dtype: str) -> Peaks:
    """The host CPU's peaks measured through torch (this adapter), once per process: the
    roof other runtimes on the same CPU (XLA, ONNX Runtime) are held to."""
    if dtype not in _HOST_PEAKS:
        adapter = CpuAdapter()
        try:
            _HOST_PEAKS[dtype] = measure_peaks(adapter, dtype)
        finally:
            adapter.close()
    return _HOST_PEAKS[dtype]
