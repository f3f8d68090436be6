"""Entry-point discovery of adapters, collectors and suites; loads only what is selected."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from harness.workload import Workload

if TYPE_CHECKING:
    from harness.adapters import Adapter
    from harness.collectors import Collector

#: The project file of a source checkout, beside the ``harness`` package.
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
PROJECT = "inference-harness"


@functools.cache
def checkout_entry_points() -> dict[str, dict[str, str]]:
    """The entry points ``pyproject.toml`` declares, when this package runs from a checkout.

    The built-in adapters, collectors and suites are written once, in ``pyproject.toml``. An
    installed copy finds them through its installed metadata; a source checkout that was never
    pip-installed has no metadata, and one installed before an entry was added has stale
    metadata, so the checkout's own file is read as well. Only a file naming this project
    counts (a stray ``pyproject.toml`` above an installed package is someone else's).
    """
    try:
        project = tomllib.loads(PYPROJECT.read_text("utf-8")).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    if not isinstance(project, dict) or project.get("name") != PROJECT:
        return {}
    groups = project.get("entry-points", {})
    return {group: {str(k): str(v) for k, v in targets.items()}
            for group, targets in groups.items() if isinstance(targets, dict)}


class PluginError(ValueError):
    """A requested adapter, collector or suite does not exist or cannot be loaded."""


def registered(group: str) -> dict[str, str]:
    """Name → ``module:attr`` target for every plugin of ``group``, without importing any."""
    targets = dict(checkout_entry_points().get(group, {}))
    for ep in importlib.metadata.entry_points(group=group):
        targets[ep.name] = ep.value
    return dict(sorted(targets.items()))


def _load_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def adapter_class(name: str) -> type[Adapter]:
    """The adapter class registered as ``name``; a clear error naming the valid ones if none."""
    targets = registered("harness.adapters")
    if name not in targets:
        raise PluginError(f"unknown adapter {name!r}; valid: {', '.join(targets)}")
    try:
        cls: type[Adapter] = _load_target(targets[name])
    except ImportError as exc:
        raise PluginError(f"adapter {name!r} cannot be imported: {exc}") from None
    return cls


def adapter_status(name: str) -> tuple[bool, str]:
    """Whether adapter ``name`` can run here and why not, without raising."""
    try:
        return adapter_class(name).available()
    except PluginError as exc:
        return False, str(exc)
    except Exception as exc:  # a third-party probe must not break `harness list`
        return False, f"availability check failed: {type(exc).__name__}: {exc}"


def collector_classes() -> dict[str, type[Collector]]:
    """Every registered collector class that imports; others are left out."""
    classes = {}
    for name, target in registered("harness.collectors").items():
        try:
            classes[name] = _load_target(target)
        except ImportError:
            continue
    return classes


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its name, module and the workloads it defines, in definition order."""

    name: str
    module: ModuleType
    workloads: dict[str, Workload]


def _module_from_path(path: Path) -> ModuleType:
    name = f"harness_suite_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"cannot load suite from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def load_suite(spec: str) -> Suite:
    """Load a suite by registered name, dotted module path, or path to a ``.py`` file."""
    targets = registered("harness.suites")
    try:
        if spec in targets:
            name, module = spec, _load_target(targets[spec])
        elif spec.endswith(".py") or "/" in spec or "\\" in spec:
            path = Path(spec)
            if not path.is_file():
                what = ("is a folder" if path.is_dir() else
                        "is not a regular file" if path.exists() else "does not exist")
                raise PluginError(f"suite file {spec!r} {what}: -s takes a .py file, a "
                                  "registered suite or a dotted module")
            name, module = path.stem, _module_from_path(path)
        elif "." in spec:
            name, module = spec.rsplit(".", 1)[-1], importlib.import_module(spec)
        else:
            raise PluginError(
                f"unknown suite {spec!r}; valid: {', '.join(targets)} "
                "(or a dotted module, or a path to a .py file)"
            )
    except ModuleNotFoundError as exc:
        raise PluginError(f"suite {spec!r} cannot be imported: {exc}") from None
    except PluginError:
        raise
    except Exception as exc:  # a broken third-party suite gets one line, not a traceback
        raise PluginError(f"suite {spec!r} failed to import: {type(exc).__name__}: {exc}") from None
    name = getattr(module, "SUITE", name)
    workloads = {w.name: w for w in vars(module).values() if isinstance(w, Workload)}
    if not workloads:
        raise PluginError(
            f"suite {spec!r} defines no workloads (decorate functions with @workload)"
        )
    return Suite(name=name, module=module, workloads=workloads)


def all_suites() -> list[Suite]:
    """Every registered suite."""
    return [load_suite(name) for name in registered("harness.suites")]
