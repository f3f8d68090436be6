"""The shape of the ``harness`` package, read from its source with ``ast`` (nothing is imported):
no import cycle among its modules, counting imports made inside functions and under
``TYPE_CHECKING``; no module takes another module's private (``_``-prefixed) name; no file over
500 lines.

See docs/architecture.md, "Layers".
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "harness"
MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``source`` imports (a name from) ``target``."""

    source: str
    target: str
    #: the name taken by ``from target import name``; empty for ``import target``.
    name: str
    line: int


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _known(name: str, known: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a module of the package (``harness.a.B`` → ``a``)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def imports(module: str, known: dict[str, Path]) -> Iterator[Import]:
    """Every import in ``module`` of a package module, wherever it stands in the file.

    ``from a import b`` where ``a.b`` is a module counts as importing ``a.b``; otherwise as
    importing ``a``."""
    for _, found in _bindings(module, known):
        yield found


def _bindings(module: str, known: dict[str, Path]) -> Iterator[tuple[str, Import]]:
    """Each import with the name it binds in ``module`` (``a.b`` for ``import a.b``)."""
    path = known[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, known)
                if target is not None:
                    bound = alias.asname or alias.name
                    yield bound, Import(module, target, "", node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: drop a package level per dot beyond the first
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                target = _known(f"{base}.{alias.name}", known)
                if target != f"{base}.{alias.name}":
                    target = _known(base, known)
                if target is not None:
                    yield alias.asname or alias.name, Import(module, target, alias.name,
                                                             node.lineno)


@functools.cache  # each test walks every file: parse each once
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _private(name: str) -> bool:
    """``_x`` is private; a dunder such as ``__version__`` is public."""
    return name.startswith("_") and not name.startswith("__")


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for module in known:
        edges[module] |= {i.target for i in imports(module, known) if i.target != module}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(out)


def private_imports() -> list[Import]:
    """Private names one module takes from another: ``from harness.x import _y``, and
    ``x._y`` or ``Y._z`` on a module ``x`` or a name ``Y`` imported from another module."""
    known = modules()
    out = []
    for module in known:
        bound: dict[str, Import] = {}
        for name, found in _bindings(module, known):
            if found.target == module:
                continue
            if _private(found.name):
                out.append(found)
            bound[name] = found
        for node in ast.walk(_tree(known[module])):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = bound.get(_dotted(node.value) or "")
                if owner is not None:
                    taken = f"{owner.name}.{node.attr}" if owner.name else node.attr
                    out.append(Import(module, owner.target, taken, node.lineno))
    return out


def long_files() -> list[tuple[str, int]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            out.append((str(path.relative_to(ROOT.parent)), lines))
    return out


def _show(found: list[Import]) -> str:
    return "\n".join(f"{i.source}:{i.line} takes {i.target}.{i.name}" for i in found)


# --- the checks on the whole package --------------------------------------------------------


def test_no_import_cycle() -> None:
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)


def test_no_private_name_is_imported() -> None:
    found = private_imports()
    assert not found, _show(found)


def test_no_file_is_over_the_limit() -> None:
    found = long_files()
    assert not found, f"over {MAX_LINES} lines: {found}"


# --- the checks check ------------------------------------------------------------------------


def test_the_checks_see_what_they_look_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A checker that could not see a cycle or a private name would pass every tree: show it
    # sees both, through imports inside functions and attributes of an imported module.
    package = tmp_path / "harness"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Top."""\n__version__ = "1"\n')
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from harness import sub\n\n\ndef f():\n"
                                  "    from harness import b\n    return b._hidden\n")
    (package / "b.py").write_text("from harness import __version__\nfrom . import c\n\n\n"
                                  "def g():\n    from harness.c import C, _y\n"
                                  "    return C._z\n")
    (package / "c.py").write_text("import harness.a\n" + "x = 1\n" * MAX_LINES)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", package)
    assert cycles(graph()) == [["harness.a", "harness.b", "harness.c"]]
    assert {(i.source, i.target, i.name) for i in private_imports()} == {
        ("harness.a", "harness.b", "b._hidden"), ("harness.b", "harness.c", "_y"),
        ("harness.b", "harness.c", "C._z")}
    assert long_files() == [("harness/c.py", MAX_LINES + 1)]
    assert cycles({"a": {"b"}, "b": set()}) == []
