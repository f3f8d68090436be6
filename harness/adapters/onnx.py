"""The ``onnxruntime`` and ``fpga`` adapters: a task exported to ONNX, run by ONNX Runtime.

Both adapters take the same path:

1. **Export** the task's callable with ``torch.onnx.export(..., dynamo=True)`` (needs ``onnx``
   and ``onnxscript``; weights land in a ``.onnx.data`` file beside the model). Tensor inputs
   become graph inputs with their exact shapes; every other input (Python ints such as a hash
   table's shift or a tree's depth) is baked into the graph as a constant. Exports are cached
   per case on disk (see :mod:`harness.adapters.onnx_export`), so a second run of a case only
   builds a session.
2. **Build** an ``onnxruntime.InferenceSession`` under the adapter's execution provider and
   **check the provider is really in use**: ONNX Runtime silently falls back to its CPU provider
   when a requested one is missing, and may place only part of a graph on it.
3. **Run** ``session.run`` on numpy views of the inputs, converted once in :meth:`prepare`.

``onnxruntime`` runs this on the CPU provider, so CI tests the export and execution path;
``fpga`` runs it under AMD's Vitis AI provider (ONNX Runtime builds with it come from AMD, not
PyPI) and refuses to report figures when the provider is not the one doing the work.

Facts found here (torch 2.13, onnxscript 0.7, onnx 1.23, onnxruntime 1.32): ``aten.searchsorted``
has no ONNX translation; the int64 hash probing and the Eytzinger search export and agree
exactly; float16 attention, FFN and BERT run on the CPU provider; bfloat16 models export but the
CPU provider has no bfloat16 kernels for Gemm, MatMul, Mul or Add (``NOT_IMPLEMENTED`` when the
session is built), so those cases skip. A provider the build lacks only draws a warning, and the
session runs on the CPU provider. Idle intra-op threads spin by default, which on a busy 2-core
host made BERT-tiny alternate between 2 and 6 ms per call (``spin=false`` steadies it).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.adapters import Adapter, AdapterError, Step, graph_support
from harness.adapters.onnx_export import MODEL_FILE, case_key, export, is_constant, output_field
from harness.text import first_line, package_version
from harness.workload import ParamValue, Skip, Task

if TYPE_CHECKING:
    from harness.collectors import Collector
    from harness.profiling.model import NativeProfile
    from harness.roofline import Ceiling, Peaks

CPU_PROVIDER = "CPUExecutionProvider"
VITIS_AI_PROVIDER = "VitisAIExecutionProvider"
INSTALL = "pip install 'inference-harness[onnx]'"
VITIS_AI_INSTALL = ("install AMD's Vitis AI ONNX Runtime build (Ryzen AI or Vitis AI) and the "
                    "board's XRT")
#: Where exports are cached when neither the ``cache_dir`` option nor this variable is set:
#: ``$XDG_CACHE_HOME/inference-harness/onnx`` (``~/.cache/...`` by default).
CACHE_ENV = "HARNESS_ONNX_CACHE"
HOST_ONLY_REASON = "runs Python objects on the host; there is no graph to export to ONNX"

log = logging.getLogger(__name__)


class ProviderNotInUse(RuntimeError):
    """The session does not run the task on the requested provider (ONNX Runtime fell back)."""


def _ort() -> Any:
    """``onnxruntime``, imported on first use (and replaceable by a fake module in tests)."""
    return importlib.import_module("onnxruntime")


def _missing(modules: tuple[str, ...]) -> list[str]:
    # find_spec, not import: `harness list` must not pay for torch or the exporter.
    return [name for name in modules if importlib.util.find_spec(name) is None]


def default_cache_dir() -> Path:
    """``$HARNESS_ONNX_CACHE``, else ``$XDG_CACHE_HOME/inference-harness/onnx``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "inference-harness" / "onnx"


# --- the adapters --------------------------------------------------------------------------


def to_numpy(tensor: Any) -> Any:
    """A numpy view of a CPU tensor (a copy only where it must move or be made contiguous)."""
    import torch

    if tensor.dtype == torch.bfloat16:
        # numpy has no bfloat16, and ONNX Runtime's Python feeds take numpy arrays only.
        raise Skip("bfloat16 inputs cannot be fed to ONNX Runtime from Python (numpy has no "
                   "bfloat16)")
    return tensor.detach().to("cpu").contiguous().numpy()


def placement(profile: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Provider → node count and kernel seconds, from an ONNX Runtime profile's node events.

    A provider that fuses a subgraph (Vitis AI) shows it as one node.
    """
    found: dict[str, dict[str, float]] = {}
    for event in profile:
        args = event.get("args") or {}
        if event.get("cat") != "Node" or "provider" not in args:
            continue
        entry = found.setdefault(str(args["provider"]), {"nodes": 0, "kernel_s": 0.0})
        entry["nodes"] += 1
        entry["kernel_s"] += float(event.get("dur", 0)) / 1e6  # µs in the profile
    return found


#: what a worker of either ONNX adapter imports: the exporter and the runtime.
ONNX_PRELOAD = ("torch", "torch.onnx", "onnx", "onnxscript", "onnxruntime")


class OnnxAdapter(Adapter):
    """Exports each task to ONNX (cached per case) and runs it with ONNX Runtime.

    ``compile_s`` is the export plus the session build; when the export came from the cache it
    is the session build alone (``last_export_s`` is then 0). The first export in a process also
    pays for the exporter's start-up (about 4 s here). ``session.run`` returns only once the
    outputs are in host memory, so :meth:`synchronize` has nothing to wait for.
    """

    default_provider: ClassVar[str] = CPU_PROVIDER

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        provider = self.config["provider"]
        if not isinstance(provider, str) or not provider:
            raise AdapterError(f"{self.name}:provider must be a provider name, got {provider!r}")
        self.provider: str = provider
        if "threads" in self.options:
            threads = self.config["threads"]
            if threads is None:
                from harness.adapters.cpu import physical_cores

                # ONNX Runtime's own default (intra_op_num_threads=0) is one thread per physical
                # core; setting that count explicitly records a number in every row.
                threads = physical_cores()
            if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
                raise AdapterError(f"{self.name}:threads must be a positive integer, "
                                   f"got {threads!r}")
            self.config["threads"] = threads
        if not isinstance(self.config.get("spin", True), bool):
            raise AdapterError(f"{self.name}:spin must be true or false, "
                               f"got {self.config['spin']!r}")
        cache = self.config.get("cache_dir") or ""
        self.cache_dir = Path(cache).expanduser() if cache else default_cache_dir()
        self._session: Any = None
        self._feeds: dict[str, Any] = {}
        #: seconds the last prepare spent exporting (0 when the cache had the model).
        self.last_export_s: float | None = None
        #: path of the last model run, and provider → nodes/kernel seconds where profiled.
        self.last_model: Path | None = None
        self.last_placement: dict[str, dict[str, float]] = {}
        self.output_field = ""  # the tensor of a structured output the last model returns
        self._check_provider()

    def _check_provider(self) -> None:
        available = list(_ort().get_available_providers())
        if self.provider not in available:
            raise AdapterError(f"ONNX Runtime here has no {self.provider} (providers: "
                               f"{', '.join(available)})")

    @property
    def device(self) -> str:
        short = self.provider.removesuffix("ExecutionProvider").lower()
        return "cpu" if self.provider == CPU_PROVIDER else f"{self.name}:{short}"

    def info(self) -> dict[str, Any]:
        ort = _ort()
        return {
            **super().info(),
            "onnxruntime": getattr(ort, "__version__", None),
            "available_providers": list(ort.get_available_providers()),
            "requested_providers": self._providers(),
            "session_providers": (list(self._session.get_providers())
                                  if self._session is not None else None),
            # None: ONNX Runtime's defaults (fpga does not set them).
            "threads": self.config.get("threads"),
            "spin": self.config.get("spin"),
            "torch": package_version("torch"), "onnx": package_version("onnx"),
            "onnxscript": package_version("onnxscript"),
            "export": "torch.onnx.export(dynamo=True), cached per case",
            "cache_dir": str(self.cache_dir),
        }

    def supports(self, task: Task) -> tuple[bool, str]:
        ok, reason = graph_support(
            task, HOST_ONLY_REASON,
            engine=f"engine {{engine}} is a torch compiler; the {self.name} adapter runs the "
                   "exported ONNX graph (engine=eager only)",
            pinned="the task pins torch's own {kernel} kernel; an exported ONNX graph has no "
                   "torch kernels to pin", runtime="ONNX Runtime")
        if not ok:
            return ok, reason
        import torch

        for position, item in enumerate(task.inputs):
            if not isinstance(item, torch.Tensor) and not is_constant(item):
                return False, (f"input {position} is a {type(item).__name__}: only tensors (graph "
                               "inputs) and Python scalars (constants) export to ONNX")
        return True, ""

    # --- sessions ----------------------------------------------------------------------

    def _provider_options(self) -> dict[str, str]:
        return {}

    def _providers(self) -> list[Any]:
        options = self._provider_options()
        first: Any = (self.provider, options) if options else self.provider
        # The CPU provider stays last: it runs the nodes the first one does not take.
        return [first] if self.provider == CPU_PROVIDER else [first, CPU_PROVIDER]

    def _session_options(self, profile_dir: Path | None) -> Any:
        ort = _ort()
        options = ort.SessionOptions()
        threads = self.config.get("threads")
        if threads is not None:
            options.intra_op_num_threads = threads
        if self.config.get("spin") is False:
            # Idle intra-op threads busy-wait for work by default. On a shared or oversubscribed
            # host they steal the cores the next call needs: BERT-tiny here alternated between
            # 2 and 6 ms per call on 2 busy cores with spinning, and held 2-3 ms without.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Errors only: a provider fallback is checked explicitly below, not left to a log line.
        options.log_severity_level = 3
        if profile_dir is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(profile_dir / "placement")
        return options

    def _build_session(self, model: Path, profile_dir: Path | None) -> Any:
        ort = _ort()
        try:
            with warnings.catch_warnings():
                # "Specified provider ... is not in available provider names": checked below.
                warnings.simplefilter("ignore")
                return ort.InferenceSession(str(model), self._session_options(profile_dir),
                                            providers=self._providers())
        except Exception as exc:
            text = str(exc)
            if "NOT_IMPLEMENTED" in text or type(exc).__name__ == "NotImplemented":
                detail = text.split("NOT_IMPLEMENTED :", 1)[-1].strip()
                raise Skip(f"ONNX Runtime's {self.provider} has no kernel for this graph: "
                           f"{first_line(detail, 300)}") from None
            raise

    def _check_in_use(self, session: Any) -> None:
        in_use = list(session.get_providers())
        if not in_use or in_use[0] != self.provider:
            raise ProviderNotInUse(self._refusal(
                f"{self.provider} not in use (session providers: {', '.join(in_use) or 'none'})"))

    def _refusal(self, what: str) -> str:
        return what

    def _check_placement(self, session: Any, feeds: dict[str, Any]) -> None:
        """Run once with profiling on, read which provider ran each node, then stop profiling.

        ``get_providers()`` lists every provider registered with the session even when one
        takes no node, so only the profile says where the work ran.
        """
        session.run(None, feeds)
        path = session.end_profiling()  # also turns profiling off for the timed calls
        if not path:
            self.last_placement = {}
            return
        try:
            events = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.last_placement = {}
            return
        finally:
            Path(path).unlink(missing_ok=True)
        self.last_placement = placement(events if isinstance(events, list) else [])
        mine = self.last_placement.get(self.provider, {}).get("nodes", 0)
        if self.last_placement and not mine:
            where = ", ".join(f"{int(v['nodes'])} on {k}" for k, v in self.last_placement.items())
            raise ProviderNotInUse(self._refusal(f"{self.provider} ran no node of this graph "
                                                 f"({where})"))
        log.info("%s placement: %s", self.name, self.last_placement)

    # --- the adapter protocol ----------------------------------------------------------

    def prepare(self, task: Task) -> Step:
        import torch

        fn = task.fn_for(self.name)
        if isinstance(fn, torch.nn.Module):
            fn.eval()
        ok, reason = self.supports(task)  # measure_peaks calls prepare without supports
        if not ok:
            raise Skip(reason)

        folder = self.cache_dir / case_key(fn, task.inputs, task.row_meta())
        model = folder / MODEL_FILE
        started = time.perf_counter()
        if model.is_file():
            self.last_export_s = 0.0
        else:
            model = export(fn, task.inputs, folder)
            self.last_export_s = time.perf_counter() - started
        self.last_model = model
        self.output_field = output_field(model)
        self.last_placement = {}
        self._session = None
        profile_dir = None
        if self.provider != CPU_PROVIDER:
            profile_dir = Path(tempfile.mkdtemp(prefix="harness-ort-profile-"))
        try:
            session = self._build_session(model, profile_dir)
            self.compile_s = time.perf_counter() - started
            self._check_in_use(session)
            # Converted once, outside the clock: numpy views share the tensors' memory.
            arrays = [to_numpy(item) for item in task.inputs if isinstance(item, torch.Tensor)]
            names = [arg.name for arg in session.get_inputs()]
            if len(names) != len(arrays):
                raise RuntimeError(f"the exported graph takes {len(names)} inputs, the task "
                                   f"has {len(arrays)} tensors")
            feeds = dict(zip(names, arrays, strict=True))
            if profile_dir is not None:
                self._check_placement(session, feeds)
        finally:
            if profile_dir is not None:
                shutil.rmtree(profile_dir, ignore_errors=True)
        self._session, self._feeds = session, feeds
        run = session.run

        def step() -> Any:
            return run(None, feeds)

        return step

    def peaks(self, dtype: str) -> Peaks:
        from harness.adapters.calibration import best_of, measure_peaks
        from harness.adapters.cpu import host_peaks
        from harness.roofline import NoPeaks

        try:
            own = measure_peaks(self, dtype)
        except Skip as exc:  # e.g. no bfloat16 matmul kernel on the CPU provider
            raise NoPeaks(f"the calibration matmul cannot run here: {exc}") from None
        # On the CPU provider the hardware is the host's CPU: its roof is the best any runtime
        # reaches on it (torch's BLAS usually beats ORT's own 2048² matmul).
        return best_of(own, host_peaks(dtype)) if self.provider == CPU_PROVIDER else own

    def ceiling(self, dtype: str) -> Ceiling:
        from harness.adapters.cpu_ceiling import host_ceiling
        from harness.roofline import Ceiling

        if self.provider == CPU_PROVIDER:
            return host_ceiling(dtype, self.config.get("threads"))
        return Ceiling.unknown(f"no theoretical ceiling is known for {self.provider}'s device")

    def profile(self, task: Task, step: Step, calls: int) -> NativeProfile:
        """ONNX Runtime's own profiling, in a second session of the same model (the timed one
        is never profiled): nodes by op type and provider."""
        from harness.profiling import ort_profile

        folder = Path(tempfile.mkdtemp(prefix="harness-ort-profile-"))
        try:
            model = self.last_model
            if model is None:
                raise RuntimeError("no case was prepared")
            return ort_profile.profile(lambda: self._build_session(model, folder),
                                       self._feeds, calls, self.device, self.provider)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def case_meta(self) -> dict[str, Any]:
        # Where the graph's nodes ran (from the first call's profile, non-CPU providers only),
        # and which tensor of a structured output the graph returns.
        facts = {"placement": self.last_placement, "output_field": self.output_field}
        return {key: value for key, value in facts.items() if value}

    def to_host(self, output: Any) -> Any:
        import torch

        tensors = [torch.from_numpy(item) for item in output]
        return tensors[0] if len(tensors) == 1 else tuple(tensors)

    def close(self) -> None:
        self._session, self._feeds = None, {}


class OnnxRuntimeAdapter(OnnxAdapter):
    """ONNX Runtime on the host's CPU provider (or ``provider=NAME``, if this build has it).

    Options: ``provider``; ``threads`` (intra-op threads; default one per physical core, ONNX
    Runtime's own default, set explicitly so that rows record the number); ``spin`` (idle
    intra-op threads busy-wait, ONNX Runtime's default; ``spin=false`` turns that off, which
    steadies latency on a shared host); ``cache_dir`` (default ``$HARNESS_ONNX_CACHE`` or
    ``~/.cache/inference-harness/onnx``).
    """

    name: ClassVar[str] = "onnxruntime"
    preload: ClassVar[tuple[str, ...]] = ONNX_PRELOAD
    options: ClassVar[dict[str, ParamValue | None]] = {
        "provider": CPU_PROVIDER, "threads": None, "spin": True, "cache_dir": "",
    }

    @classmethod
    def available(cls) -> tuple[bool, str]:
        missing = _missing(("onnxruntime", "onnx", "onnxscript", "torch"))
        if missing:
            return False, (f"{', '.join(missing)} not installed (ONNX Runtime runs the models; "
                           f"torch, onnx and onnxscript export them); {INSTALL}")
        return True, ""

    def collectors(self) -> list[Collector]:
        from harness.collectors.energy import RaplCollector

        # The CPU provider runs on the host's processor: its package energy is the figure.
        return [RaplCollector()] if self.provider == CPU_PROVIDER else []


class FpgaAdapter(OnnxAdapter):
    """ONNX Runtime under an FPGA/NPU vendor's execution provider (AMD Vitis AI by default).

    Options: ``provider`` (default ``VitisAIExecutionProvider``); ``config_file`` (passed to
    Vitis AI as its ``config_file`` provider option, e.g. ``vaip_config.json``); ``bdf`` (the
    board's PCIe address, for XRT's power readings); ``cache_dir`` as for ``onnxruntime``.

    A case runs only when the session really uses the provider: ONNX Runtime falls back to the
    CPU silently when the provider is missing, and a profile of one call shows whether the
    provider took any node (Vitis AI takes quantized subgraphs; float graphs may stay on the
    CPU). Otherwise the case fails rather than report CPU figures as FPGA figures. Where only
    part of the graph runs on the provider, ``last_placement`` holds the split.
    """

    name: ClassVar[str] = "fpga"
    preload: ClassVar[tuple[str, ...]] = ONNX_PRELOAD
    cluster_resources: ClassVar[dict[str, float]] = {"fpga": 1}
    options: ClassVar[dict[str, ParamValue | None]] = {
        "provider": VITIS_AI_PROVIDER, "config_file": "", "bdf": "", "cache_dir": "",
    }
    default_provider: ClassVar[str] = VITIS_AI_PROVIDER

    def __init__(self, **options: Any) -> None:
        provider = options.get("provider", VITIS_AI_PROVIDER)
        if provider == CPU_PROVIDER:
            raise AdapterError("fpga:provider=CPUExecutionProvider runs on the host CPU; use the "
                               "onnxruntime adapter for that")
        super().__init__(**options)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        missing = _missing(("onnxruntime", "onnx", "onnxscript", "torch"))
        if "onnxruntime" in missing:
            return False, f"onnxruntime is not installed; {VITIS_AI_INSTALL}"
        if missing:
            return False, (f"{', '.join(missing)} not installed (the ONNX export needs torch, "
                           f"onnx and onnxscript); pip install 'inference-harness[fpga]'")
        try:
            providers = list(_ort().get_available_providers())
        except Exception as exc:  # a broken vendor build must not break `harness list`
            return False, (f"onnxruntime failed to load: {type(exc).__name__}: "
                           f"{first_line(str(exc), 300)}")
        if cls.default_provider not in providers:
            return False, (f"ONNX Runtime here has no {cls.default_provider} (providers: "
                           f"{', '.join(providers)}); {VITIS_AI_INSTALL}")
        return True, ""

    def _provider_options(self) -> dict[str, str]:
        config_file = self.config.get("config_file") or ""
        return {"config_file": str(config_file)} if config_file else {}

    def _refusal(self, what: str) -> str:
        return f"{what}; refusing to report CPU figures as FPGA figures"

    def info(self) -> dict[str, Any]:
        from harness.collectors.xrt_power import find_tool

        return {**super().info(), "bdf": self.config.get("bdf") or None,
                "xrt_tool": find_tool()}

    def collectors(self) -> list[Collector]:
        from harness.collectors.xrt_power import XrtPowerCollector

        return [XrtPowerCollector(device=self.config.get("bdf") or None)]

    def peaks(self, dtype: str) -> Peaks:
        from harness.roofline import NoPeaks

        # Measuring through this adapter would time whatever the provider takes of a float
        # matmul (often nothing: it falls back to the CPU), and no datasheet figure is known.
        raise NoPeaks(f"no datasheet peak is known for {self.provider} boards, and a measured "
                      "matmul may not run on the board at all")
