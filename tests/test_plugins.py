"""Plugin discovery: the built-ins are written once, in pyproject.toml, and found from there."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from harness import plugins

GROUPS = ("harness.adapters", "harness.collectors", "harness.suites")


def test_a_checkout_reads_its_built_ins_from_pyproject() -> None:
    found = plugins.checkout_entry_points()
    assert found["harness.adapters"]["cpu"] == "harness.adapters.cpu:CpuAdapter"
    assert found["harness.collectors"]["memory"] == "harness.collectors.memory:PeakRssCollector"
    assert found["harness.suites"]["lookup"] == "suites.lookup"


def test_the_installed_entry_points_match_the_checkout() -> None:
    # The editable install's metadata is generated from the same file: one source of truth.
    try:
        installed = importlib.metadata.distribution(plugins.PROJECT).entry_points
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("this checkout is not pip-installed")
    for group in GROUPS:
        assert {ep.name: ep.value for ep in installed.select(group=group)} == (
            plugins.checkout_entry_points()[group])


def test_without_installed_metadata_the_checkout_still_finds_every_built_in(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [])
    assert set(plugins.registered("harness.adapters")) == {
        "cpu", "cuda", "fpga", "null", "onnxruntime", "tpu", "xla-cpu"}
    assert plugins.adapter_class("null").name == "null"


def test_a_pyproject_of_another_project_is_not_read(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "pyproject.toml"
    other.write_text('[project]\nname = "someone-else"\n'
                     '[project.entry-points."harness.adapters"]\nevil = "x:Y"\n', "utf-8")
    monkeypatch.setattr(plugins, "PYPROJECT", other)
    plugins.checkout_entry_points.cache_clear()
    try:
        assert plugins.checkout_entry_points() == {}
    finally:
        plugins.checkout_entry_points.cache_clear()


@pytest.mark.parametrize(("make", "said"), [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: None, "does not exist"),
])
def test_a_suite_path_that_is_not_a_file_says_what_it_is(tmp_path: Path, make, said: str
                                                         ) -> None:
    path = tmp_path / "suite_dir"
    make(path)
    for spec in (str(path), f"{path}/"):
        with pytest.raises(plugins.PluginError) as raised:
            plugins.load_suite(spec)
        assert str(raised.value) == (f"suite file {spec!r} {said}: -s takes a .py file, a "
                                     "registered suite or a dotted module")
