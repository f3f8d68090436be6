"""A task handed to :func:`harness.bench`, made into a case that worker processes can rebuild.

A worker is forked from the harness's forkserver and rebuilds its case from a suite it loads
(docs/architecture.md, "Workers"); a function handed to ``harness.bench`` belongs to no suite.
So the task's parts (:class:`TaskSpec`) are pickled into a folder of their own, beside a fixed,
generated suite module (:data:`SUITE_SOURCE`) that unpickles them when the worker builds the
case: the worker then runs it exactly as it runs any suite's case.

Pickle sends functions and classes by reference (their module and name), to be imported again
in the worker. Those defined in ``__main__`` (a notebook, a script), inside a function (a
closure, a lambda) or in a module the worker could not import cannot travel that way:
:func:`pickled` refuses them with the reason, found while pickling (nothing is imported or run
to find out), and ``harness.bench`` then measures the task in its own process and says so.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.workload import Params, ParamValue, Task, Workload

#: the generated suite module: it names no task, so nothing of the caller's is ever executed as
#: source; the suite and workload names come from ``task.json`` beside it.
SUITE_SOURCE = '''"""A task handed to harness.bench, for the workers that measure it (generated)."""

from harness.portable import task_suite

SUITE, WORKLOAD = task_suite(__file__)
'''

@dataclass
class TaskSpec:
    """What ``harness.bench`` was handed: the callable, its inputs and the :class:`Task` fields;
    ``expected``: empty, or the one output the check compares with, exactly (it may be None)."""

    fn: Callable[..., Any]
    inputs: tuple[Any, ...]
    fields: dict[str, Any] = field(default_factory=dict)
    expected: tuple[Any, ...] = ()

    def task(self) -> Task:
        """The task (a ``WorkloadError`` for fields it refuses)."""
        fields = dict(self.fields)
        if self.expected:
            fields["check"] = equals(self.expected[0], fields.get("check"))
        return Task(fn=self.fn, inputs=self.inputs, **fields)


def equals(expected: Any, then: Callable[[Any], None] | None = None) -> Callable[[Any], None]:
    """A check that the output is exactly ``expected`` (tensors, arrays, numbers and nests of
    them, as :func:`harness.checks.same_output` compares), then ``then``'s, if given."""
    from harness.checks import same_output

    def check(output: Any) -> None:
        if not same_output(output, expected):
            raise AssertionError(f"the output differs from the expected one: got "
                                 f"{_short(output)}, expected {_short(expected)}")
        if then is not None:
            then(output)

    return check


def _short(value: Any, width: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= width else text[:width - 1] + "…"


class NotPortable(Exception):
    """The task cannot be sent to a worker process; the message says what holds it back."""


def importable(module: str) -> bool:
    """Whether a fresh process with this one's import path and finders could import
    ``module``'s top package: asked of each finder on ``sys.meta_path`` directly, which neither
    imports anything nor takes ``sys.modules`` (where a module loaded from a file by another
    name, or ``__main__``, would be found) for an answer."""
    top = module.partition(".")[0]
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        try:
            if find is not None and find(top, None) is not None:
                return True
        except Exception:  # a third-party finder that fails: it finds nothing
            continue
    return False


def why_not_portable(obj: Any) -> str:
    """Why a function or class cannot be pickled by reference for a worker, or ""."""
    module = getattr(obj, "__module__", None)
    name = str(getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?"))
    if "<lambda>" in name:
        return "a lambda has no name a worker could import it by"
    if "<locals>" in name:
        return f"{name} is defined inside a function"
    if module == "__main__":
        return f"{name} is defined in __main__ (a notebook or a script)"
    if isinstance(module, str) and not importable(module):
        return f"{name}'s module {module} cannot be imported by a worker"
    return ""


class _Pickler(pickle.Pickler):
    """A pickler that refuses what a worker could not import again (see the module's
    docstring), instead of writing a pickle that fails in the worker."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.FunctionType | type):
            why = why_not_portable(obj)
            if why:
                raise NotPortable(why)
        return NotImplemented  # pickle's own way


def pickled(spec: TaskSpec) -> bytes:
    """``spec`` as a pickle a worker can load; :class:`NotPortable` with the reason if not."""
    import io

    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(spec)
    except NotPortable:
        raise
    except Exception as exc:  # pickle raises many kinds (TypeError, AttributeError, ...)
        text = str(exc).strip().splitlines()
        raise NotPortable(f"it cannot be pickled ({type(exc).__name__}: "
                          f"{text[0] if text else ''})") from None
    return buffer.getvalue()


def write_suite(folder: Path, suite: str, workload: str, params: Params, data: bytes) -> Path:
    """Write a suite holding one case, ``suite/workload[params]``, whose build unpickles ``data``
    (:func:`pickled`); the path of its module, for ``Plan.sources``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task.pkl").write_bytes(data)
    # The worker's import path: this one, with relative entries made absolute (the worker
    # may start in another directory), so the pickle's modules import there as here.
    path = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
    (folder / "task.json").write_text(json.dumps(
        {"suite": suite, "workload": workload, "params": params, "sys_path": path}),
        encoding="utf-8")
    module = folder / "suite.py"
    module.write_text(SUITE_SOURCE, encoding="utf-8")
    return module


def task_suite(module_file: str) -> tuple[str, Workload]:
    """The suite name and the workload of a :func:`write_suite` folder (called by its module)."""
    folder = Path(module_file).parent
    about = json.loads((folder / "task.json").read_text(encoding="utf-8"))

    def build(**params: Any) -> Task:
        sys.path.extend(p for p in about["sys_path"] if p not in sys.path)
        spec = pickle.loads((folder / "task.pkl").read_bytes())
        if not isinstance(spec, TaskSpec):
            raise TypeError(f"{folder / 'task.pkl'} holds no task")
        return spec.task()

    return about["suite"], one_workload(about["workload"], build, about["params"])


def one_workload(name: str, build: Callable[..., Task], params: Params) -> Workload:
    """A workload of one case, ``params`` (each parameter's one value); ``build`` ignores them."""
    grid: Mapping[str, tuple[ParamValue, ...]] = {k: (v,) for k, v in params.items()}
    return Workload(name=name, build=build, params=grid, quick=grid)
