"""The ``cuda`` adapter: torch on an NVIDIA GPU, optionally compiled and replayed as CUDA graphs."""

from __future__ import annotations

import contextlib
import gc
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from harness import nvml
from harness.adapters import Adapter, AdapterError, Step, host_refusal
from harness.adapters.gpu_datasheets import datasheet_ceiling
from harness.adapters.tensors import place, primary_output, snapshot, to_device
from harness.adapters.torch_build import torch_build
from harness.text import first_line
from harness.workload import ParamValue, Task

if TYPE_CHECKING:
    import torch

    from harness.collectors import Collector
    from harness.profiling.model import NativeProfile
    from harness.roofline import Ceiling, Peaks

#: Where CUDA builds of torch come from (CUDA 12.8 wheels); this project's own .venv holds a
#: CPU-only build, which the adapter reports as the reason it is unavailable.
CUDA_INDEX_URL = "https://download.pytorch.org/whl/cu128"
#: eager: as written; compile: torch.compile (Inductor, Triton kernels on the GPU).
ENGINES = ("eager", "compile")
#: Calls on a side stream before capturing a graph: the CUDA-graphs notes in torch's docs ask for
#: a few, so that lazy initialisation, autotuning and compilation happen outside the capture.
GRAPH_WARMUP_CALLS = 3
HOST_ONLY_REASON = "runs Python objects on the host; not a GPU workload"
#: Peak calibration, the attainable roof beside the datasheet's ceiling: matmuls this size reach
#: the tensor-core roof of current GPUs (1024 leaves them far below it), and a copy of this many
#: bytes dwarfs the largest L2 cache (126 MB on B200), so memory bandwidth is what is measured.
PEAK_GEMM_N = 8192
PEAK_COPY_BYTES = 2**30


# --- the adapter ----------------------------------------------------------------------------


class CudaAdapter(Adapter):
    """Runs torch workloads on one NVIDIA GPU under ``torch.inference_mode``.

    Options: ``device`` (the CUDA index, as in ``cuda:device=1``) and ``graphs`` (capture each
    step in a CUDA graph and replay it, which removes per-kernel launch cost). The timer
    synchronises the device inside the clock through :meth:`synchronize` (docs/architecture.md,
    "Timing").

    With ``graphs``, warm-up and capture happen in :meth:`prepare`; compilation under
    ``engine=compile`` then lands there as well, not in ``first_call_s``.
    """

    name: ClassVar[str] = "cuda"
    preload: ClassVar[tuple[str, ...]] = ("torch",)
    cluster_resources: ClassVar[dict[str, float]] = {"GPU": 1}
    options: ClassVar[dict[str, ParamValue | None]] = {"device": 0, "graphs": False}
    no_address_space_cap: ClassVar[str] = (
        "CUDA reserves far more virtual address space than it uses when it starts (tens of GiB "
        "and more), so under an address-space cap every case would fail at CUDA's start")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.index: int = self._checked(self.config)
        #: Whether this process prepared work on the GPU (close() synchronises only then).
        self._worked = False
        #: Bytes the last CUDA graph capture added to the reserved pool; None without graphs.
        self._graph_pool_bytes: int | None = None
        self._utilization_source = ""  # where nvml_utilization came from (meta)

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        # Without building one: a run's parent calls this and must start no CUDA.
        cls._checked(cls.resolve_options(options))

    @staticmethod
    def _checked(config: Mapping[str, Any]) -> int:
        """The device index of resolved options; an :class:`AdapterError` for bad ones."""
        index = config["device"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise AdapterError(f"cuda:device must be a non-negative integer, got {index!r}")
        if not isinstance(config["graphs"], bool):
            raise AdapterError(f"cuda:graphs must be true or false, got {config['graphs']!r}")
        import torch

        # device_count() asks NVML where it can and so initialises no CUDA. Checked only where
        # a GPU is visible, so that the adapter can be built (and tested) without one.
        count = torch.cuda.device_count()
        if count and index >= count:
            raise AdapterError(f"cuda:device={index} does not exist: {count} GPU(s) visible")
        return index

    @classmethod
    def available(cls) -> tuple[bool, str]:
        build = torch_build()
        if build is None:
            return False, ("torch is not installed; install a CUDA build: "
                           f"pip install torch --index-url {CUDA_INDEX_URL}")
        if build.cuda is None:
            install = (f"pip install torch=={build.version.split('+')[0]} "
                       f"--index-url {CUDA_INDEX_URL}")
            if build.hip:
                return False, (f"torch {build.version} is a ROCm build (torch.version.hip is "
                               f"{build.hip}), not a CUDA one; install a CUDA build: {install}")
            return False, (f"torch {build.version} is a CPU-only build (torch.version.cuda is "
                           f"None); install a CUDA build: {install}")
        import torch

        # device_count() goes through NVML and initialises no CUDA where NVML works; a driver
        # too old for this build, or a broken one, shows only as a warning.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            count = torch.cuda.device_count()
        note = first_line(str(caught[0].message)) if caught else ""
        if count == 0:
            parts = ["no NVIDIA GPU visible (torch.cuda.device_count() == 0)"]
            if "CUDA_VISIBLE_DEVICES" in os.environ:
                parts.append(f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r}")
            if note:
                parts.append(note)
            else:
                ok, why = nvml.probe()
                if not ok:
                    parts.append(why)
            return False, "; ".join(parts)
        driver, _ = driver_cuda_version()
        if driver is not None:
            needed = build.cuda.split(".")[0]
            if int(driver.split(".")[0]) < int(needed):
                return False, (f"the NVIDIA driver supports CUDA up to {driver}, and torch "
                               f"{build.version} needs CUDA {needed}.x: update the driver")
            return True, ""
        # No NVML to ask: only CUDA itself can say, and asking initialises it in this process.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            usable = torch.cuda.is_available()
        note = first_line(str(caught[0].message)) if caught else note
        if not usable:
            return False, f"CUDA is unusable here: {note or 'torch.cuda.is_available() is False'}"
        return True, ""

    @property
    def device(self) -> str:
        return f"cuda:{self.index}"

    def _torch_device(self) -> torch.device:
        import torch

        return torch.device("cuda", self.index)

    def _uuid(self) -> str | None:
        """The device's UUID as CUDA gives it (torch spells it bare, without ``GPU-``/``MIG-``):
        one name for the device in CUDA and NVML, which :func:`nvml.find_device` resolves."""
        import torch

        uuid = str(getattr(torch.cuda.get_device_properties(self.index), "uuid", "") or "")
        return uuid or None

    def _is_mig(self) -> bool:
        """Whether this device is a MIG instance: CUDA names them ``<GPU> MIG <profile>``."""
        import torch

        return " MIG " in f" {torch.cuda.get_device_name(self.index)} "

    def info(self) -> dict[str, Any]:
        import torch

        props = torch.cuda.get_device_properties(self.index)
        facts: dict[str, Any] = {
            **super().info(),
            "gpu": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "total_memory_bytes": int(props.total_memory),
            "multiprocessors": int(props.multi_processor_count),
            "uuid": self._uuid(),
            "torch": torch.__version__,
            "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),  # type: ignore[no-untyped-call]
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
        }
        facts["mig"] = self._is_mig()
        facts.update(_nvml_facts(self._uuid(), self.index, facts["mig"]))
        return facts

    def supports(self, task: Task) -> tuple[bool, str]:
        refusal = host_refusal(task, HOST_ONLY_REASON, "CUDA")
        if refusal:
            return False, refusal
        if task.engine not in ENGINES:
            return False, (f"the cuda adapter has no engine {task.engine!r}; "
                           f"it runs {', '.join(ENGINES)}")
        if task.dtype == "bfloat16":
            import torch

            # Pre-Ampere GPUs only emulate bfloat16: slow, and some kernels refuse it.
            if torch.cuda.is_available():
                major, minor = torch.cuda.get_device_capability(self.index)
                if major < 8:
                    return False, (f"bfloat16 needs compute capability 8.0 or newer; "
                                   f"{self.device} is {major}.{minor}")
        return True, ""

    def prepare(self, task: Task) -> Step:
        import torch

        self._worked = True
        self._graph_pool_bytes = None
        fn, inputs = place(task.fn_for(self.name), task.inputs, self._torch_device())
        if task.engine == "compile":
            # Compilation happens lazily in the first call (first_call_s), never in latency.
            fn = torch.compile(fn)
            self.compile_missing = ("torch.compile compiles in the first call (see first_call_s)"
                                    if not self.config["graphs"] else
                                    "torch.compile compiles during graph capture in prepare")
        if self.config["graphs"]:
            return self._capture(fn, inputs)

        def step() -> Any:
            return fn(*inputs)

        return step

    def profile(self, task: Task, step: Step, calls: int) -> NativeProfile:
        """torch.profiler with CUDA activity: the GPU's kernels and copies by device time."""
        from harness.profiling import torch_profile

        return torch_profile.profile(step, self.synchronize, calls, self.device, cuda=True,
                                     phases=task.generation is not None)

    def _capture(self, fn: Any, inputs: tuple[Any, ...]) -> Step:
        """Warm ``fn`` up on a side stream, capture one call in a CUDA graph, return a replay."""
        import torch

        device = self._torch_device()
        with torch.cuda.device(device), torch.inference_mode():
            # Warm-up on a side stream, as torch's CUDA-graphs docs require: lazy init and
            # autotuning must not happen inside the capture, and the capture stream must not be
            # the legacy default stream.
            side = torch.cuda.Stream(device)  # type: ignore[no-untyped-call]
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(GRAPH_WARMUP_CALLS):
                    fn(*inputs)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            reserved = torch.cuda.memory_reserved(device)
            with torch.cuda.graph(graph):
                output = fn(*inputs)
            # The capture's intermediates live in the graph's private pool: reserved for every
            # replay, but not "allocated", so torch's allocated peak never shows them.
            self._graph_pool_bytes = int(torch.cuda.memory_reserved(device)) - int(reserved)
        # The graph reads the captured input tensors and overwrites `output` on each replay.

        def step() -> Any:
            graph.replay()
            return output

        return step

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize(self.index)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        import torch

        # Entered once around a whole sampling loop: its cost is outside each call. The device
        # context makes this GPU current, which graph replay and new allocations rely on.
        with torch.cuda.device(self.index), torch.inference_mode():
            yield

    def to_host(self, output: Any) -> Any:
        # Only the tensor a structured output stands for: its cache stays on the device.
        return to_device(primary_output(output)[0], "cpu")

    def keep_output(self, output: Any) -> Any:
        # A graph's replay overwrites its one output tensor: keep a copy (on the device).
        return snapshot(output) if self.config["graphs"] else output

    def call_timer(self) -> Callable[[Step], float]:
        return self._time_call

    def _time_call(self, step: Step) -> float:
        """One call between two CUDA events (~0.5 µs resolution): from the moment the stream
        reaches the first to the moment it finishes the call's work, host launch gaps included."""
        import torch

        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        start.record()
        step()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end)) / 1e3

    def utilization(self, since_us: int) -> tuple[float, str]:
        """NVML's duty cycle since ``since_us``; its source goes into meta."""
        value, self._utilization_source, why = nvml.device_utilization(
            self._uuid(), self.index, self._is_mig(), since_us)
        return value, why

    def case_meta(self) -> dict[str, Any]:
        source = ({"nvml_utilization_source": self._utilization_source}
                  if self._utilization_source else {})
        if self._graph_pool_bytes is None:
            return source
        return {**source, "graph_pool_reserved_bytes": self._graph_pool_bytes,
                "graph_memory": ("the CUDA graph's intermediates live in its private pool: "
                                 "counted in peak_device_reserved_bytes, not in "
                                 "peak_device_bytes")}

    def reset_memory_stats(self) -> None:
        import torch

        # The previous case's tensors are garbage by now: return their cached blocks to the
        # driver, so that the reserved peak is this case's alone.
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.index)

    def memory_stats(self) -> dict[str, Any]:
        import torch

        return {
            "peak_device_bytes": int(torch.cuda.max_memory_allocated(self.index)),
            "peak_device_reserved_bytes": int(torch.cuda.max_memory_reserved(self.index)),
        }

    def collectors(self) -> list[Collector]:
        from harness.collectors.nvml_energy import NvmlEnergyCollector

        return [NvmlEnergyCollector(self.index, uuid=self._uuid(), mig=self._is_mig())]

    def peaks(self, dtype: str) -> Peaks:
        from harness.adapters.calibration import measure_peaks

        return measure_peaks(self, dtype, gemm_n=PEAK_GEMM_N, copy_bytes=PEAK_COPY_BYTES)

    def ceiling(self, dtype: str) -> Ceiling:
        import torch

        return datasheet_ceiling(torch.cuda.get_device_name(self.index), dtype,
                                 tf32=tf32_matmul(torch))

    def close(self) -> None:
        # Only after work of this process's own: a synchronise would otherwise create a CUDA
        # context here (in a run's parent, one held all run long).
        if self._worked:
            import torch

            torch.cuda.synchronize(self.index)
            torch.cuda.empty_cache()


def _nvml_facts(uuid: str | None, index: int, mig: bool) -> dict[str, Any]:
    """Driver, CUDA driver version and power limit from NVML; a reason for each one missing."""
    facts: dict[str, Any] = {}
    try:
        session = nvml.Nvml.open()
    except nvml.NvmlError as exc:
        return {"nvml": f"unavailable: {exc.reason}"}
    with session:
        queries: dict[str, Any] = {
            "driver": session.driver_version,
            "cuda_driver": session.cuda_driver_version,
        }
        try:
            device = nvml.find_device(session, uuid, index, mig=mig)
        except nvml.NvmlError as exc:
            facts["nvml_device_missing"] = exc.reason
        else:
            facts["nvml_name"] = device.name
            if device.mig:
                facts["power_limit_w"] = None
                facts["power_limit_w_missing"] = nvml.MIG_ENERGY
            else:
                queries["power_limit_w"] = lambda: session.power_limit_w(device.handle)
        for key, query in queries.items():
            try:
                facts[key] = query()
            except nvml.NvmlError as exc:
                facts[key] = None
                facts[f"{key}_missing"] = exc.reason
    return facts


def driver_cuda_version(module: Any = None) -> tuple[str | None, str]:
    """The newest CUDA the driver supports (``12.8``) from NVML, which initialises no CUDA;
    None and the reason where NVML cannot say."""
    try:
        with nvml.Nvml.open(module) as session:
            return session.cuda_driver_version(), ""
    except nvml.NvmlError as exc:
        return None, exc.reason


def tf32_matmul(torch_module: Any, environ: Mapping[str, str] | None = None) -> bool:
    """Whether float32 matmuls may run on TF32 tensor cores in this process.

    torch's own settings (``set_float32_matmul_precision``, ``allow_tf32``, ``fp32_precision``)
    say so, and two variables override them: ``TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1`` turns TF32 on
    in cuBLAS whatever torch says, and ``NVIDIA_TF32_OVERRIDE=0`` turns it off in every NVIDIA
    library.
    """
    env = os.environ if environ is None else environ
    if env.get("NVIDIA_TF32_OVERRIDE") == "0":
        return False
    if env.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE") == "1":
        return True
    matmul = torch_module.backends.cuda.matmul
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # allow_tf32 is deprecated in favour of fp32_precision
        return bool(torch_module.get_float32_matmul_precision() != "highest"
                    or getattr(matmul, "allow_tf32", False)
                    or getattr(matmul, "fp32_precision", "") == "tf32")

