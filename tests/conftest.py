"""Shared fixtures: every test gets its own peak cache, so no test sees another's calibration
(or the developer's own, under ~/.cache)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_peak_cache(tmp_path_factory: pytest.TempPathFactory,
                    monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(path))
    return path
