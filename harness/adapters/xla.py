"""The ``xla-cpu`` and ``tpu`` adapters: torch workloads compiled and run by JAX/XLA via torchax.

Both run the task's unmodified torch callable: ``torchax.extract_jax`` turns it into a pure JAX
function of (weights, inputs), ``jax.jit(...).lower(...).compile()`` compiles it ahead of time for
one device (timed apart as ``compile_s``), and each step calls the compiled executable. The two
differ only in the JAX platform: ``cpu`` (XLA's CPU back end; runs in CI) or ``tpu`` (a Cloud TPU
VM with ``jax[tpu]``).

Process-wide state is kept to the adapters: torchax's changes to torch are undone or scoped by
:mod:`harness.adapters.torchax_bridge`; and JAX defaults to 32-bit types, while the lookup
workloads need int64 keys (a 32-bit trace fails on their hash constants, or silently truncates
the keys), so 64-bit mode is entered as a scoped JAX config (``jax.enable_x64``) around
conversion, tracing and the timed calls, never set for the whole process. Float32 work stays
float32 in it: only scalar constants appear as f64 in the lowered program, converted once to f32
(the tests check the compiled program has no f64).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from harness.adapters import Adapter, AdapterError, Step, graph_support
from harness.adapters.torchax_bridge import bound_class, load_torchax, to_torch, tracing, wait
from harness.text import package_version
from harness.workload import ParamValue, Task

if TYPE_CHECKING:
    from harness.collectors import Collector
    from harness.profiling.model import NativeProfile
    from harness.roofline import Ceiling, Peaks

XLA_INSTALL = "pip install 'inference-harness[xla]'"
TPU_INSTALL = "on a Cloud TPU VM: pip install 'inference-harness[tpu]'"
HOST_ONLY_REASON = "runs Python objects on the host; there is nothing for XLA to compile"
#: ``jax.default_matmul_precision`` values accepted by the ``matmul_precision`` option.
MATMUL_PRECISIONS = ("default", "high", "highest")


# --- TPU datasheets -------------------------------------------------------------------------


@dataclass(frozen=True)
class TpuSheet:
    """One TPU generation's per-chip peaks from Google Cloud's system-architecture pages.

    A JAX device is one chip on these generations (v4 and v5p present their two TensorCores as
    one "megacore" device), so per-chip figures are per-device figures.
    """

    name: str
    kinds: tuple[str, ...]
    bf16_flops_per_s: float
    bytes_per_s: float


TPU_SHEETS: tuple[TpuSheet, ...] = (
    TpuSheet("Cloud TPU v4", ("TPU v4",), 275e12, 1.2e12),
    TpuSheet("Cloud TPU v5e", ("TPU v5e", "TPU v5 lite"), 197e12, 819e9),
    TpuSheet("Cloud TPU v5p", ("TPU v5p", "TPU v5"), 459e12, 2.76e12),
    TpuSheet("Cloud TPU v6e (Trillium)", ("TPU v6e", "TPU v6 lite"), 918e12, 1.64e12),
)


def tpu_datasheet_ceiling(device_kind: str, dtype: str) -> Ceiling:
    """The datasheet ceiling of a JAX ``device_kind`` (e.g. ``TPU v5 lite``) for ``dtype``.

    The datasheets give one matmul rate, bfloat16's. It bounds float32 too: the MXU computes a
    float32 matmul as bfloat16 passes (one at ``default`` precision, six at ``highest``). Other
    dtypes, and unknown kinds, have no FLOP/s ceiling.
    """
    from harness.roofline import Ceiling

    sheet = next((s for s in TPU_SHEETS if device_kind.strip() in s.kinds), None)
    if sheet is None:
        return Ceiling.unknown(f"no datasheet entry for {device_kind!r}")
    memory = f"datasheet: {sheet.name}, HBM {sheet.bytes_per_s / 1e12:g} TB/s"
    if dtype not in ("bfloat16", "float32"):
        return Ceiling(None, f"the {sheet.name} datasheet gives no {dtype} rate",
                       sheet.bytes_per_s, memory)
    how = "" if dtype == "bfloat16" else " (bounds float32: the MXU runs it as bfloat16 passes)"
    return Ceiling(sheet.bf16_flops_per_s, f"datasheet: {sheet.name}, dense bfloat16{how}",
                   sheet.bytes_per_s, memory)


# --- the adapters ---------------------------------------------------------------------------


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


class XlaAdapter(Adapter):
    """Runs torch workloads through torchax on one JAX device of :attr:`platform`.

    Options: ``device`` (the index into ``jax.devices(platform)``) and ``matmul_precision``
    (``jax.default_matmul_precision`` while tracing; ``highest`` by default, so float32 matmuls
    are float32 on a TPU too, whose ``default`` is a single bfloat16 pass).
    """

    platform: ClassVar[str]
    install: ClassVar[str] = XLA_INSTALL
    options: ClassVar[dict[str, ParamValue | None]] = {"device": 0,
                                                        "matmul_precision": "highest"}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        index = self.config["device"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise AdapterError(f"{self.name}:device must be a non-negative integer, "
                               f"got {index!r}")
        precision = self.config["matmul_precision"]
        if precision not in MATMUL_PRECISIONS:
            raise AdapterError(f"{self.name}:matmul_precision must be one of "
                               f"{', '.join(MATMUL_PRECISIONS)}, got {precision!r}")
        self.index: int = index
        self._last: Any = None
        self._compiled: Any = None
        #: the field of a structured output the last compiled case returns ("" for none).
        self.output_field = ""
        self._resolved: Any = None
        self._warm = False
        # Fail now on a bad index where the platform is present; where it is not (a TpuAdapter
        # built on a machine without a TPU, as in tests) the error waits for first use.
        with contextlib.suppress(RuntimeError):
            self._jax_device()

    @classmethod
    def _missing(cls) -> str | None:
        """What is not installed, as a one-line reason, or None (find_spec: no imports)."""
        for module in ("jax", "jaxlib", "torchax"):
            if not _installed(module):
                return f"{module} is not installed; {cls.install}"
        return None

    @property
    def device(self) -> str:
        return f"{self.platform}:{self.index}"

    def _jax_device(self) -> Any:
        """The JAX device this adapter runs on (RuntimeError when the platform is absent)."""
        if self._resolved is None:
            import jax

            devices = jax.devices(self.platform)
            if self.index >= len(devices):
                hint = (" (XLA_FLAGS=--xla_force_host_platform_device_count=N makes N)"
                        if self.platform == "cpu" else "")
                raise AdapterError(f"{self.name}:device={self.index} does not exist: "
                                   f"{len(devices)} {self.platform} device(s) visible{hint}")
            self._resolved = devices[self.index]
        return self._resolved

    @contextlib.contextmanager
    def _jax_config(self) -> Iterator[None]:
        """64-bit types, this adapter's device and matmul precision, scoped to the block."""
        import jax

        with (jax.enable_x64(True), jax.default_device(self._jax_device()),
              jax.default_matmul_precision(self.config["matmul_precision"])):
            yield

    def info(self) -> dict[str, Any]:
        import jax

        device = self._jax_device()
        return {
            **super().info(),
            "platform": self.platform,
            "device_kind": device.device_kind,
            "device_count": len(jax.devices(self.platform)),
            "jax": jax.__version__,
            "jaxlib": package_version("jaxlib"),
            "torchax": package_version("torchax"),
            "matmul_precision": self.config["matmul_precision"],
            "x64": "scoped: jax.enable_x64 around tracing and timed calls",
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        }

    def supports(self, task: Task) -> tuple[bool, str]:
        return graph_support(
            task, HOST_ONLY_REASON,
            engine=f"engine {{engine}} is a torch engine; the {self.name} adapter always "
                   "compiles through XLA (run engine=eager)",
            pinned="the task pins torch's own {kernel} kernel, which XLA does not have: XLA "
                   "lowers the torch operations itself", runtime="XLA")

    def _compile(self, fn: Any, inputs: tuple[Any, ...]) -> tuple[Any, Any, Any]:
        """(compiled executable, weights, args) for ``fn(*inputs)`` on this adapter's device;
        sets :attr:`compile_s` to the seconds spent tracing, lowering and compiling."""
        import jax
        import torch

        torchax = load_torchax()
        if isinstance(fn, torch.nn.Module):
            fn.eval()
        module = bound_class()(fn, inputs)
        tensors = tuple(x for x in inputs if isinstance(x, torch.Tensor))
        device = self._jax_device()
        with self._jax_config(), tracing():
            # Moving data is not compilation: weights and inputs go to the device first.
            with warnings.catch_warnings():
                # extract_jax finds weights by getattr over dir(module), which reads every
                # property of the model and sets off its deprecation warnings: not the user's.
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                weights, jax_fn = torchax.extract_jax(module)
            weights = jax.device_put(weights, device)
            args = jax.device_put(torchax.default_env().t2j_copy(tensors), device)
            wait((weights, args))
            # Tracing through torchax, lowering to StableHLO and XLA's compilation: compile_s.
            start = time.perf_counter()
            compiled = jax.jit(jax_fn).lower(weights, args).compile()
            self.compile_s = time.perf_counter() - start
        self.output_field = module.output_field  # known once traced
        return compiled, weights, args

    def _warm_up(self) -> None:
        """Compile a tiny module once, untimed, before the first case.

        The first trace through torchax pays one-time costs that belong to no workload: torch
        imports ``torch._dynamo`` on torchax's first dispatch (its ops pass through
        ``torch._dynamo.disable``), and XLA starts its compiler. Measured here: 1.6 s of the
        first case's 1.7 s "compile" on XLA:CPU, against 0.1 s for the same module afterwards.
        """
        if self._warm:
            return
        import torch

        layer = torch.nn.Linear(4, 4)
        self._compile(torch.nn.Sequential(layer, torch.nn.GELU()), (torch.ones(2, 4),))
        self._warm = True

    def prepare(self, task: Task) -> Step:
        self._warm_up()
        compiled, weights, args = self._compile(task.fn_for(self.name), task.inputs)
        self._compiled = compiled  # its HLO names the operations a profile sees

        # The step waits for its own result (block_until_ready) rather than leaving that to
        # synchronize() after a loop of calls: each timed call is then a complete request
        # (dispatch, run, result ready) on any platform, whatever its queueing, and no queue
        # of outputs builds up during the collector pass. Waiting on a finished result costs
        # about a microsecond. synchronize() still waits on the last output, for any caller
        # that did not go through a step.
        def step() -> Any:
            out = compiled(weights, args)
            wait(out)
            self._last = out
            return out

        return step

    def profile(self, task: Task, step: Step, calls: int) -> NativeProfile:
        """The JAX profiler's trace: one event per executed XLA operation or fusion, named and
        categorised from the compiled program."""
        from harness.profiling import jax_profile

        return jax_profile.profile(step, self.synchronize, calls, self._compiled, self.device)

    def synchronize(self) -> None:
        if self._last is not None:
            wait(self._last)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        # Entered once around a whole sampling loop: the scoped 64-bit mode (and device) of the
        # trace stay in force for the calls and the check, at no per-call cost.
        with self._jax_config():
            yield

    def to_host(self, output: Any) -> Any:
        return to_torch(output)

    def case_meta(self) -> dict[str, Any]:
        # The traced program returns one tensor of a structured output: say which.
        return {"output_field": self.output_field} if self.output_field else {}

    def memory_stats(self) -> dict[str, Any]:
        """Peak device memory where the platform counts it (TPU: since the process started,
        as JAX cannot reset it); XLA's CPU client keeps no counters, so ``{}`` there."""
        stats = self._jax_device().memory_stats() or {}
        figures: dict[str, Any] = {}
        if "peak_bytes_in_use" in stats:
            figures["peak_device_bytes"] = int(stats["peak_bytes_in_use"])
        if "peak_bytes_reserved" in stats:
            figures["peak_device_reserved_bytes"] = int(stats["peak_bytes_reserved"])
        return figures

    def reset_memory_stats(self) -> None:
        """Nothing to reset: JAX exposes no call to reset a device's peak-memory counter."""

    def collectors(self) -> list[Collector]:
        """None: XLA's CPU client has no energy counter of its own (the host's RAPL belongs to
        the ``cpu`` adapter), and TPUs expose no public energy or power counter to a VM."""
        return []

    def peaks(self, dtype: str) -> Peaks:
        """Measured through XLA on this device: the calibration's square matmul through
        torchax, and a copy into a donated buffer.

        Not :func:`harness.adapters.calibration.measure_peaks` as it stands: its copy,
        ``dst.copy_(src)``, becomes an XLA program returning a fresh 128 MiB buffer per call, and
        on XLA:CPU a fresh buffer of that size is new pages from the OS each time: 3.4 GB/s
        measured here, where torch's copy into an existing buffer gets 23 GB/s. Donating the
        destination makes XLA write into the same buffer on every call (22 GB/s): the memory
        roof, not page faults.
        """
        import jax
        import jax.numpy as jnp
        import torch

        from harness.adapters.calibration import (
            CALIBRATION_TIMING,
            COPY_BYTES,
            GEMM_N,
            best_rate,
        )
        from harness.roofline import Peaks
        from harness.timer import Timer

        n = GEMM_N.get(dtype, 1024)
        generator = torch.Generator().manual_seed(0)
        a, b = (torch.randn(n, n, generator=generator).to(getattr(torch, dtype))
                for _ in range(2))
        flops = 2.0 * n**3
        flops_per_s = best_rate(self, Task(fn=torch.matmul, inputs=(a, b), flops=flops), flops)

        with self._jax_config():
            device = self._jax_device()
            src = jax.device_put(jnp.ones(COPY_BYTES // 4, jnp.float32), device)
            buffer = [jax.device_put(jnp.zeros(COPY_BYTES // 4, jnp.float32), device)]
            copy = jax.jit(lambda s, d: d.at[:].set(s), donate_argnums=1).lower(
                src, buffer[0]).compile()

            def step() -> Any:
                buffer[0] = copy(src, buffer[0])  # the donated buffer comes back as the output
                wait(buffer[0])
                return buffer[0]

            measurement = Timer(CALIBRATION_TIMING).measure(step, self.synchronize)
        moved = 2.0 * COPY_BYTES  # read the source, write the destination
        return Peaks(
            flops_per_s=flops_per_s,
            bytes_per_s=moved / min(measurement.samples_s),
            source=f"measured through XLA: matmul {n}x{n} {dtype} (torchax), copy "
                   f"{COPY_BYTES // 2**20} MiB float32 into a donated buffer; best sample",
        )

    def close(self) -> None:
        self._last = self._compiled = None


class XlaCpuAdapter(XlaAdapter):
    """torch workloads through torchax on XLA's CPU back end: the whole TPU path, testable in CI.

    Peaks are measured through the adapter (a matmul and a copy compiled by XLA; see
    :meth:`XlaAdapter.peaks`) and through torch on the same CPU; the roof is the better of the
    two, since it belongs to the chip, not to the runtime.
    """

    name: ClassVar[str] = "xla-cpu"
    preload: ClassVar[tuple[str, ...]] = ("torch", "jax")
    platform: ClassVar[str] = "cpu"

    def peaks(self, dtype: str) -> Peaks:
        from harness.adapters.calibration import best_of
        from harness.adapters.cpu import host_peaks

        return best_of(super().peaks(dtype), host_peaks(dtype))

    def ceiling(self, dtype: str) -> Ceiling:
        from harness.adapters.cpu_ceiling import host_ceiling

        # XLA's CPU client runs its thread pool on every core this process may use.
        return host_ceiling(dtype)

    @property
    def device(self) -> str:
        return f"xla:cpu:{self.index}"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        missing = cls._missing()
        return (False, missing) if missing else (True, "")


class TpuAdapter(XlaAdapter):
    """torch workloads through torchax on one Cloud TPU chip.

    Peaks are measured through XLA (:meth:`XlaAdapter.peaks`); the ceiling is Google's datasheet
    figure for known generations (:func:`tpu_datasheet_ceiling`).
    """

    name: ClassVar[str] = "tpu"
    preload: ClassVar[tuple[str, ...]] = ("torch", "jax")
    cluster_resources: ClassVar[dict[str, float]] = {"TPU": 1}
    platform: ClassVar[str] = "tpu"
    install: ClassVar[str] = TPU_INSTALL

    @classmethod
    def available(cls) -> tuple[bool, str]:
        missing = cls._missing()
        if missing:
            return False, missing
        # Without libtpu jax has no TPU runtime to load: say so without importing jax.
        if not _installed("libtpu") and "TPU_LIBRARY_PATH" not in os.environ:
            return False, f"libtpu is not installed (jax has no TPU runtime); {TPU_INSTALL}"
        import jax

        try:
            count = len(jax.devices("tpu"))
            error = ""
        except RuntimeError as exc:
            count, error = 0, (str(exc).strip().splitlines() or [""])[0]
        if count == 0:
            backends = ", ".join(sorted({d.platform for d in jax.devices()}))
            return False, (f"no TPU device: jax.devices('tpu') found none (backends here: "
                           f"{backends})" + (f": {error}" if error else ""))
        return True, ""

    def ceiling(self, dtype: str) -> Ceiling:
        return tpu_datasheet_ceiling(self._jax_device().device_kind, dtype)
