"""Small text facts shared across modules: a message's first line, an installed version."""

from __future__ import annotations

import importlib.metadata


def first_line(text: object, limit: int = 200) -> str:
    """The first non-blank line of ``text``, stripped and cut to ``limit`` characters (an
    ellipsis marks a cut): enough of a tool's output or an exception for a one-line message."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
