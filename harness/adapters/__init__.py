"""The adapter base class: runs tasks on one kind of hardware or runtime."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from harness.workload import ParamValue, Task, WorkloadError, parse_typed

if TYPE_CHECKING:
    from harness.collectors import Collector
    from harness.profiling.model import NativeProfile
    from harness.roofline import Ceiling, Peaks

Step = Callable[[], Any]


#: Why graph-compiling adapters skip generation tasks.
GENERATION_REASON = (
    "generation is a loop of forward passes whose KV cache grows by one position per token; "
    "this adapter lowers one call into one static graph, and no static-shape decode step "
    "(fixed-size cache updated in place, position as an input) is exported for it yet")


def host_refusal(task: Task, host_only: str, runtime: str) -> str:
    """Why an adapter that runs torch work elsewhere than in this interpreter (a compiled
    graph, a GPU) refuses ``task``, or "" when it need not: ``host_only`` (the adapter's words)
    for a task that says it runs on the host, a plain-function reason naming ``runtime`` for
    one found to hold no torch (:attr:`~harness.workload.Task.runs_on_host`)."""
    if not task.runs_on_host:
        return ""
    if task.host_only:
        return host_only
    return (f"plain Python function: {runtime} never runs it (no torch module or tensor in its "
            "callable or inputs; Task(host_only=False) if it builds its own)")


def graph_support(task: Task, host_only: str, engine: str, pinned: str,
                  runtime: str = "this adapter") -> tuple[bool, str]:
    """What adapters that compile a whole graph themselves (XLA, ONNX) cannot run: host-only
    Python implementations (said, or found: :func:`host_refusal`), torch's own engines, and
    pinned torch kernels; each refusal explained by the adapter's own words (``engine`` may
    use ``{engine}``, ``pinned`` ``{kernel}``; ``runtime`` names what would run the graph)."""
    refusal = host_refusal(task, host_only, runtime)
    if refusal:
        return False, refusal
    if task.generation is not None:
        return False, GENERATION_REASON
    if task.engine != "eager":
        return False, engine.format(engine=repr(task.engine))
    if task.torch_kernel is not None:
        return False, pinned.format(kernel=task.torch_kernel)
    return True, ""


class AdapterError(ValueError):
    """An adapter was given options it does not accept."""


class Adapter(ABC):
    """Runs tasks on one kind of hardware.

    Subclasses declare ``name``, their ``options`` with defaults, and implement the abstract
    methods. Everything that moves data, compiles or binds inputs happens in :meth:`prepare`,
    outside the clock; :meth:`synchronize` waits for all queued device work, inside the clock.
    """

    name: ClassVar[str]
    #: option name → default value; the default's type is the option's type.
    options: ClassVar[Mapping[str, ParamValue | None]] = {}
    #: Ray resources one case needs on a cluster node besides its share of the node's CPUs
    #: (``harness run --cluster``): ``GPU`` for one whole GPU, custom ones (``TPU``, ``fpga``)
    #: that cluster owners give the nodes holding that hardware. Empty: any node will do.
    cluster_resources: ClassVar[Mapping[str, float]] = {}
    #: Why this adapter cannot run under an address-space cap (``--max-memory`` sets
    #: ``RLIMIT_AS`` on workers), which a run then refuses; empty where it can.
    no_address_space_cap: ClassVar[str] = ""
    #: False for adapters whose step does not compute the task's output (``null``).
    checks_output: ClassVar[bool] = True
    #: modules a case on this adapter imports, which per-case worker processes can import once
    #: before forking (:mod:`harness.execution.workers`); only modules that start no thread
    #: and touch no device when imported.
    preload: ClassVar[tuple[str, ...]] = ()
    #: Seconds the last :meth:`prepare` spent compiling ahead of time (stored as ``compile_s``),
    #: or None, with :attr:`compile_missing` saying why. Adapters that compile in ``prepare``
    #: set both; the runner resets them before each case.
    compile_s: float | None = None
    compile_missing: str = "this adapter compiles nothing ahead of time"

    def __init__(self, **options: Any) -> None:
        self.config: dict[str, Any] = self.resolve_options(options)

    @classmethod
    def resolve_options(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` with the defaults filled in; an :class:`AdapterError` for an unknown one."""
        unknown = set(options) - set(cls.options)
        if unknown:
            valid = ", ".join(cls.options) or "(none)"
            raise AdapterError(
                f"adapter {cls.name!r} has no option {sorted(unknown)[0]!r}; valid: {valid}"
            )
        return {**cls.options, **options}

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Refuse what building this adapter with ``options`` would refuse (an
        :class:`AdapterError`), in a process that must start no device: a run's parent checks
        its plan this way, and the workers build the adapters.

        By default it builds one and closes it, which suits adapters whose construction touches
        no device; an adapter whose construction would (a CUDA context, a TPU claimed) overrides
        this with checks that start none.
        """
        cls(**options).close()

    @classmethod
    def parse_options(cls, text: str) -> dict[str, ParamValue]:
        """Parse ``k=v,k=v`` as this adapter's typed options."""
        result: dict[str, ParamValue] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise AdapterError(f"adapter option {part!r} is not of the form key=value")
            if key not in cls.options:
                valid = ", ".join(cls.options) or "(none)"
                raise AdapterError(f"adapter {cls.name!r} has no option {key!r}; valid: {valid}")
            default = cls.options[key]
            examples = [default] if default is not None else [0]
            try:
                result[key] = parse_typed(value, examples, f"{cls.name}:{key}")
            except WorkloadError as exc:
                raise AdapterError(str(exc)) from None
        return result

    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this adapter can run here, and if not, why (one line: what is missing)."""

    @property
    def device(self) -> str:
        """The device name stored in each row (e.g. ``cpu``, ``cuda:0``)."""
        return self.name

    def info(self) -> dict[str, Any]:
        """Facts about the hardware and runtime, stored once per run in ``context.json``."""
        return {"name": self.name, "device": self.device, "options": dict(self.config)}

    def supports(self, task: Task) -> tuple[bool, str]:
        """Whether this adapter can run ``task``; the reason when it cannot."""
        return True, ""

    @abstractmethod
    def prepare(self, task: Task) -> Step:
        """Move, compile and bind everything; return a zero-argument call running the task once."""

    def synchronize(self) -> None:
        """Wait until all work queued on the device has finished (a no-op on synchronous hosts)."""

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Context entered around every call of a prepared step (e.g. ``torch.inference_mode``)."""
        yield

    def to_host(self, output: Any) -> Any:
        """Bring a step's output back to host memory for the correctness check. A structured
        output (a Hugging Face ``ModelOutput``, a dict or dataclass of tensors) comes back as
        the one tensor it stands for (:func:`harness.adapters.tensors.primary_output`), so a
        check sees the same thing on every adapter."""
        from harness.adapters.tensors import primary_output

        return primary_output(output)[0]

    def keep_output(self, output: Any) -> Any:
        """A copy of a step's output that later calls cannot overwrite, for checking it after
        timing; called outside the clock. Steps that return fresh outputs need none."""
        return output

    def call_timer(self) -> Callable[[Step], float] | None:
        """Times one call of a step on the device's own clock (launch to completion, seconds),
        for adapters whose calls are asynchronous; None where there is no such clock."""
        return None

    def case_meta(self) -> dict[str, Any]:
        """Facts the adapter learnt about the last prepared case (e.g. where each node ran),
        merged into the row's ``meta``; empty by default."""
        return {}

    def utilization(self, since_us: int) -> tuple[float, str]:
        """The device's NVML utilization (a duty cycle: any kernel running, on however few
        SMs, counts as busy) since ``since_us`` (µs since the epoch), read after the window;
        or NaN and why there is none."""
        return float("nan"), f"the {self.name} adapter has no NVML utilization counter"

    def memory_stats(self) -> dict[str, Any]:
        """Device memory figures of the last case; empty for adapters without device memory."""
        return {}

    def reset_memory_stats(self) -> None:
        """Reset the device's peak-memory counters before a case."""

    def collectors(self) -> list[Collector]:
        """Counters of this adapter's own device (energy), run in the collector pass.

        Host-wide collectors (peak RSS, third-party ones) come from entry points; these are the
        ones only the adapter can know, e.g. RAPL for ``cpu`` or NVML for a GPU. Adapters
        without an energy counter return none, and rows say so.
        """
        return []

    def profile(self, task: Task, step: Step, calls: int) -> NativeProfile:
        """Run ``calls`` calls of the prepared ``step`` under this adapter's native profiler
        (``harness run --profile``, after timing, inside :meth:`running`) and return what it
        saw: operators with categories, the trace, the device's busy time.

        The default is cProfile (Python functions by self time), right for host-only Python
        work; adapters with a runtime of their own override it with that runtime's profiler.
        """
        from harness.profiling import python_profile

        return python_profile.profile(step, self.synchronize, calls, self.device)

    def peaks(self, dtype: str) -> Peaks:
        """The attainable roof: peak FLOP/s and bytes/s for ``dtype`` measured through this
        adapter (a datasheet figure belongs in :meth:`ceiling`, not here). Adapters without
        hardware raise :class:`harness.roofline.NoPeaks` with the reason.
        """
        from harness.adapters.calibration import measure_peaks

        return measure_peaks(self, dtype)

    def ceiling(self, dtype: str) -> Ceiling:
        """The hardware's theoretical ceilings for ``dtype`` (FLOP/s and bytes/s no run can pass:
        a CPU's cores × clock × FLOPs per cycle, a device's datasheet), each figure None with the
        reason where it cannot be known here. Rows' ``peak_fraction`` is taken against it."""
        from harness.roofline import Ceiling

        return Ceiling.unknown(f"the {self.name} adapter knows no theoretical ceiling of its "
                               "hardware")

    def close(self) -> None:
        """Release the device and anything prepared."""
