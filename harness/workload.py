"""Workloads, tasks and cases: the public API that suites (ours and third parties') build on."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.torch_use import holds_torch

ParamValue = int | float | bool | str
Params = dict[str, ParamValue]
Check = Callable[[Any], None]


class WorkloadError(ValueError):
    """A workload's definition or a requested parameter value is not valid."""


class Skip(Exception):
    """Raised by a workload's build function when a case cannot run here; the message says why."""


#: Element types a task may declare, by torch's names (``torch.float32`` → ``"float32"``).
DTYPES = ("float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2",
          "int64", "int32", "int16", "int8", "uint8")
#: The typed :class:`Task` facts stored in a row's ``meta`` (``torch_kernel`` is not: the
#: suite's own parameters say which implementation ran).
ROW_FACTS = ("items_unit", "dtype", "engine", "host_only", "footprint_bytes")


@dataclass(frozen=True)
class Phase:
    """Analytic work of one phase of a call: FLOPs and compulsory bytes (None: unknown)."""

    flops: float | None
    bytes: float | None


@dataclass(frozen=True)
class Generation:
    """What makes a task a generation task.

    Attributes:
        timed: called like ``Task.fn`` with the task's inputs (adapters prepare it the same
            way); returns ``(tokens, marks)``: the tokens, and ``new_tokens + 1`` marks from
            :func:`harness.generation.mark` (one before prefill, one after each token).
        batch: sequences per call.
        new_tokens: tokens generated per sequence (exactly; end-of-sequence is ignored).
        prefill: the prompt's forward pass and the first token.
        decode: every further token, all decode steps of one call together.
        agreement: the fraction of generated tokens equal to the float32 reference's, given the
            tokens on the host; None when there is no reference.
    """

    timed: Callable[..., Any]
    batch: int
    new_tokens: int
    prefill: Phase
    decode: Phase
    agreement: Callable[[Any], float] | None = None


@dataclass(frozen=True)
class Task:
    """What a case builds: the callable, its inputs, its work size and a correctness check.

    Attributes:
        fn: called as ``fn(*inputs)``; a ``torch.nn.Module`` is fine (adapters move it), and
            so is a plain Python function (see ``host_only``). It may return a structured
            output, a Hugging Face ``ModelOutput`` or a dict or dataclass of tensors: that
            stands for one tensor, ``last_hidden_state``, else ``logits``, else the first tensor
            field (:func:`harness.adapters.tensors.primary_output`), the one that ``check``
            receives, the probe compares and graph adapters compile; rows name it in
            ``meta.output_field``.
        inputs: positional arguments for ``fn``.
        items: units of useful work per call (sequences, tokens, lookups) for throughput.
        flops: analytic floating-point operations per call, or None when not meaningful.
        bytes: analytic minimum bytes moved per call (inputs, weights, outputs), or None.
        check: called with the adapter's output (moved to the host; a structured output's
            primary tensor); raises AssertionError with a message when the output disagrees
            with the reference.
        impls: adapter-specific implementations of ``fn``, keyed by adapter name.
        meta: free-form facts about the task, stored with the result (e.g. the model's size);
            the facts adapters and the runner act on are the typed fields below.
        vary: returns other inputs for which an honest ``fn`` gives a different output; the
            runner uses it to flag cached or constant answers. Default:
            :func:`harness.checks.vary`; a workload whose outputs can legitimately coincide
            under that generic change (lookups that all miss) supplies its own.
        items_unit: what one of ``items`` is, for throughput columns and tables
            (``tokens`` reads ``tokens/s``); ``items`` by default.
        dtype: the element type the task computes in, by torch's name (one of :data:`DTYPES`),
            or None when it has none; peak calibration uses it (float32 when None), and an
            adapter may refuse a type its device lacks.
        engine: how a torch adapter runs ``fn``: ``eager`` as written, ``compile`` through
            ``torch.compile``; an adapter refuses an engine it does not have.
        host_only: ``fn`` works on Python objects on the host (a dict, a B-tree), so an
            adapter for another device has nothing to run it on and refuses the task. None
            (the default): decided by looking, see :attr:`runs_on_host`; say True or False
            where the look would be wrong (a function that builds its tensors from scalars).
        footprint_bytes: the memory the task's data structure holds, measured, or None.
        torch_kernel: one of torch's own kernels the task pins (``"SDPA FLASH_ATTENTION"``),
            or None; adapters that compile a whole graph themselves (XLA, ONNX) have no torch
            kernels and refuse such a task.
        generation: set by tasks that generate tokens (:mod:`harness.generation`): the runner
            then also measures time to first token, time per output token and tokens per second.
    """

    fn: Callable[..., Any]
    inputs: tuple[Any, ...] = ()
    items: int = 1
    flops: float | None = None
    bytes: float | None = None
    check: Check | None = None
    impls: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    vary: Callable[[tuple[Any, ...]], tuple[Any, ...] | None] | None = None
    items_unit: str = "items"
    dtype: str | None = None
    engine: str = "eager"
    host_only: bool | None = None
    footprint_bytes: int | None = None
    torch_kernel: str | None = None
    generation: Generation | None = None

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise WorkloadError(f"Task.fn must be callable, got {type(self.fn).__name__}")
        if not isinstance(self.items, int) or self.items < 1:
            raise WorkloadError(f"Task.items must be a positive int, got {self.items!r}")
        if not isinstance(self.inputs, tuple):
            object.__setattr__(self, "inputs", tuple(self.inputs))
        for name in ("items_unit", "engine"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise WorkloadError(f"Task.{name} must be a non-empty string, "
                                    f"got {getattr(self, name)!r}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise WorkloadError(f"Task.dtype must be None or one of {', '.join(DTYPES)}, "
                                f"got {self.dtype!r}")
        if self.host_only is not None and not isinstance(self.host_only, bool):
            raise WorkloadError("Task.host_only must be True, False or None (decide by looking), "
                                f"got {self.host_only!r}")
        if self.footprint_bytes is not None and (
                isinstance(self.footprint_bytes, bool) or not isinstance(self.footprint_bytes, int)
                or self.footprint_bytes < 0):
            raise WorkloadError("Task.footprint_bytes must be None or an int of at least 0, "
                                f"got {self.footprint_bytes!r}")
        if self.torch_kernel is not None and (
                not isinstance(self.torch_kernel, str) or not self.torch_kernel):
            raise WorkloadError("Task.torch_kernel must be None or a non-empty string, "
                                f"got {self.torch_kernel!r}")
        # These facts were meta keys once; one left there would now be ignored without a word.
        typed = sorted(set(self.meta) & set(ROW_FACTS))
        if typed:
            raise WorkloadError(f"Task.meta key {typed[0]!r} is a Task field: "
                                f"pass Task({typed[0]}=...) instead")

    @functools.cached_property
    def runs_on_host(self) -> bool:
        """Whether ``fn`` runs only as Python on the host: ``host_only`` where the task says,
        else whether its callable and inputs hold no torch module, tensor or function
        (:func:`harness.torch_use.holds_torch`): a plain Python function (``sorted`` of a
        list). Adapters that compile a torch graph or run on a device skip such a task with
        the reason, and the ``cpu`` adapter profiles it with cProfile."""
        if self.host_only is not None:
            return self.host_only
        return not holds_torch(self.fn, self.inputs)

    def row_meta(self) -> dict[str, Any]:
        """The free-form ``meta`` and the typed facts, as stored in a result row's ``meta``
        (reports and stored baselines read ``items_unit``, ``dtype`` ... there); a fact
        that is None (no dtype, no footprint) is left out rather than stored empty;
        ``host_only`` is stored as decided (:attr:`runs_on_host`)."""
        facts = {name: getattr(self, name) for name in ROW_FACTS}
        facts["host_only"] = self.runs_on_host
        return {**self.meta, **{k: v for k, v in facts.items() if v is not None}}

    def fn_for(self, adapter: str) -> Callable[..., Any]:
        """The implementation an adapter should run: its own if the task has one, else ``fn``."""
        return self.impls.get(adapter, self.fn)


@dataclass(frozen=True)
class Case:
    """A workload with one concrete parameter set."""

    suite: str
    workload: Workload
    params: Params

    @property
    def id(self) -> str:
        # An empty string ("no checkpoint") names nothing: left out, not shown as `model_path=`.
        inner = ",".join(f"{k}={format_value(v)}" for k, v in self.params.items() if v != "")
        return f"{self.suite}/{self.workload.name}[{inner}]"

    @property
    def params_json(self) -> str:
        return json.dumps(self.params, sort_keys=False)

    def build(self) -> Task:
        task = self.workload.build(**self.params)
        if not isinstance(task, Task):
            raise WorkloadError(
                f"workload {self.workload.name!r} returned {type(task).__name__}, not a Task"
            )
        return task


def format_value(value: ParamValue) -> str:
    """How a parameter value appears in a case id (``True`` → ``true``, so ids are stable)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Workload:
    """A named, parametrised factory of tasks.

    ``params`` maps each parameter to the values of the full grid; unless ``quick`` says
    otherwise, the first value of each forms the quick preset.
    """

    name: str
    build: Callable[..., Task]
    params: Mapping[str, tuple[ParamValue, ...]]
    quick: Mapping[str, tuple[ParamValue, ...]]
    tags: tuple[str, ...] = ()
    description: str = ""
    #: string parameters that take any value; other string parameters only take grid values.
    free: frozenset[str] = frozenset()
    #: parameter → a function raising WorkloadError for a value that cannot work (checked
    #: before the run starts, so bad input is a clear error rather than a failed case).
    validate: Mapping[str, Callable[[Any], None]] = field(default_factory=dict)
    #: predicted peak memory of one case in bytes, from its parameters (None: unknown); a case
    #: predicted not to fit is skipped with the reason before it is built.
    memory: Callable[..., float] | None = None
    #: heavy modules its build imports (``transformers``): per-case worker processes import
    #: them once before forking instead of once per case.
    imports: tuple[str, ...] = ()

    def check_params(self, params: Params) -> None:
        """Run the parameter validators on one case's values."""
        for key, validator in self.validate.items():
            if key in params:
                try:
                    validator(params[key])
                except WorkloadError as exc:
                    text = str(exc)
                    # Name the workload and parameter unless the validator already did.
                    raise WorkloadError(text if text.startswith(f"{self.name}.") else
                                        f"{self.name}.{key} {text}") from None

    def grid(self, preset: str = "quick",
             overrides: Mapping[str, Iterable[ParamValue]] | None = None) -> list[Params]:
        """Expand the preset's grid (``quick`` or ``full``), with ``overrides`` replacing axes."""
        if preset not in ("quick", "full"):
            raise WorkloadError(f"unknown preset {preset!r}; choose quick or full")
        chosen = self.quick if preset == "quick" else self.params
        axes: dict[str, tuple[ParamValue, ...]] = dict(chosen)
        for key, values in (overrides or {}).items():
            if key not in self.params:
                raise WorkloadError(
                    f"workload {self.name!r} has no parameter {key!r}; "
                    f"valid: {', '.join(self.params) or '(none)'}"
                )
            axes[key] = tuple(values)
        keys = list(axes)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]

    def parse_value(self, key: str, text: str) -> ParamValue:
        """Parse a command-line value for ``key`` as the type of that parameter's grid values."""
        if key not in self.params:
            raise WorkloadError(
                f"workload {self.name!r} has no parameter {key!r}; "
                f"valid: {', '.join(self.params) or '(none)'}"
            )
        value = parse_typed(text, self.params[key], f"{self.name}.{key}")
        grid = self.params[key]
        if isinstance(value, str) and key not in self.free and value not in grid:
            raise WorkloadError(
                f"{self.name}.{key} takes one of {', '.join(map(str, grid))}, got {value!r}"
            )
        return value


def parse_typed(text: str, examples: Iterable[ParamValue], what: str) -> ParamValue:
    """Parse ``text`` as the type shared by ``examples`` (bool, int, float or str)."""
    kinds = {type(v) for v in examples}
    text = text.strip()
    if kinds == {bool}:
        lowered = text.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise WorkloadError(f"{what} takes true or false, got {text!r}")
    if kinds == {int}:
        try:
            return int(text)
        except ValueError:
            raise WorkloadError(f"{what} takes an integer, got {text!r}") from None
    if kinds <= {int, float}:
        try:
            return float(text)
        except ValueError:
            raise WorkloadError(f"{what} takes a number, got {text!r}") from None
    if not text:
        raise WorkloadError(f"{what} takes a non-empty value")
    return text


def workload(
    params: Mapping[str, Iterable[ParamValue]] | None = None,
    *,
    quick: Mapping[str, Iterable[ParamValue]] | None = None,
    name: str | None = None,
    tags: Iterable[str] = (),
    free: Iterable[str] = (),
    validate: Mapping[str, Callable[[Any], None]] | None = None,
    memory: Callable[..., float] | None = None,
    imports: Iterable[str] = (),
) -> Callable[[Callable[..., Task]], Workload]:
    """Turn a function ``(**params) -> Task`` into a :class:`Workload`.

    ``params`` gives each parameter's full grid; the first values form the quick preset unless
    ``quick`` lists the quick values for some parameters. A string parameter accepts only the
    values in its grid unless it is named in ``free`` (e.g. a path). ``validate`` maps a
    parameter to a function that raises :class:`WorkloadError` for a value that cannot work
    (:func:`at_least` covers sizes). ``memory`` predicts a case's peak bytes from its
    parameters, so that a case that cannot fit is skipped before it is tried. ``imports``
    names heavy modules the build imports, for worker processes to load once.

    Example::

        @workload(params={"n": [1024, 4096]})
        def vector_add(n: int) -> Task:
            a, b = torch.rand(n), torch.rand(n)
            return Task(fn=torch.add, inputs=(a, b), items=n)
    """
    grid: dict[str, tuple[ParamValue, ...]] = {}
    for key, values in (params or {}).items():
        values = tuple(values)
        if not values:
            raise WorkloadError(f"parameter {key!r} has no values")
        for v in values:
            if not isinstance(v, int | float | bool | str):
                raise WorkloadError(
                    f"parameter {key!r}: values must be int, float, bool or str, got {v!r}"
                )
        grid[key] = values
    quick_axes = {key: values[:1] for key, values in grid.items()}
    for key, values in (quick or {}).items():
        if key not in grid:
            raise WorkloadError(f"quick preset names unknown parameter {key!r}")
        quick_axes[key] = tuple(values)

    def decorate(fn: Callable[..., Task]) -> Workload:
        doc = (fn.__doc__ or "").strip().splitlines()
        return Workload(
            name=name or fn.__name__,
            build=fn,
            params=grid,
            quick=quick_axes,
            tags=tuple(tags),
            description=doc[0] if doc else "",
            free=frozenset(free),
            validate=dict(validate or {}),
            memory=memory,
            imports=tuple(imports),
        )

    return decorate


def at_least(minimum: int) -> Callable[[Any], None]:
    """A validator: the value is an integer of at least ``minimum`` (batch ≥ 1, seq ≥ 1)."""
    def validate(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise WorkloadError(f"must be an integer of at least {minimum}, got {value!r}")
    return validate
