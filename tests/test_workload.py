"""Workloads: the decorator, grids, presets, overrides, typed values and case ids."""

from __future__ import annotations

import pytest

from harness import Task, workload
from harness.workload import Case, WorkloadError


def noop() -> None:
    return None


@workload(params={"batch": [1, 8], "dtype": ["float32", "bfloat16"], "causal": [False, True]})
def example(batch: int, dtype: str, causal: bool) -> Task:
    """An example workload."""
    return Task(fn=noop, items=batch)


def test_decorator_builds_a_workload_with_description() -> None:
    assert example.name == "example"
    assert example.description == "An example workload."
    assert example.params["batch"] == (1, 8)


def test_quick_preset_is_the_first_values() -> None:
    assert example.grid("quick") == [{"batch": 1, "dtype": "float32", "causal": False}]


def test_full_preset_is_the_product() -> None:
    grid = example.grid("full")
    assert len(grid) == 8
    assert grid[-1] == {"batch": 8, "dtype": "bfloat16", "causal": True}


def test_overrides_replace_an_axis() -> None:
    assert example.grid("quick", {"batch": [2, 4]}) == [
        {"batch": 2, "dtype": "float32", "causal": False},
        {"batch": 4, "dtype": "float32", "causal": False},
    ]


def test_explicit_quick_values() -> None:
    @workload(params={"n": [10, 100, 1000]}, quick={"n": [10, 100]})
    def sized(n: int) -> Task:
        return Task(fn=noop)

    assert sized.grid("quick") == [{"n": 10}, {"n": 100}]


def test_unknown_parameter_names_the_valid_ones() -> None:
    with pytest.raises(WorkloadError, match="no parameter 'seq'; valid: batch, dtype, causal"):
        example.grid("quick", {"seq": [1]})


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [("batch", "16", 16), ("causal", "true", True), ("causal", "0", False),
     ("dtype", "bfloat16", "bfloat16")],
)
def test_values_parse_as_the_grid_type(key: str, text: str, value: object) -> None:
    assert example.parse_value(key, text) == value


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [("batch", "x", "takes an integer"), ("causal", "maybe", "takes true or false"),
     ("dtype", "float64", "takes one of float32, bfloat16")],
)
def test_bad_values_are_rejected_clearly(key: str, text: str, message: str) -> None:
    with pytest.raises(WorkloadError, match=message):
        example.parse_value(key, text)


def test_free_string_parameters_take_any_value() -> None:
    @workload(params={"path": [""]}, free=["path"])
    def from_path(path: str) -> Task:
        return Task(fn=noop)

    assert from_path.parse_value("path", "/tmp/model") == "/tmp/model"


def test_case_id_and_build() -> None:
    case = Case(suite="demo", workload=example, params={"batch": 8, "dtype": "float32",
                                                          "causal": True})
    assert case.id == "demo/example[batch=8,dtype=float32,causal=true]"
    assert case.build().items == 8


def test_an_empty_parameter_is_left_out_of_the_case_id() -> None:
    @workload(params={"size": ["tiny"], "model_path": [""]}, free=["model_path"])
    def model(size: str, model_path: str) -> Task:
        return Task(fn=noop)

    assert Case("s", model, {"size": "tiny", "model_path": ""}).id == "s/model[size=tiny]"
    assert Case("s", model, {"size": "tiny", "model_path": "/m"}).id == \
        "s/model[size=tiny,model_path=/m]"


def test_build_must_return_a_task() -> None:
    @workload()
    def broken() -> Task:
        return "not a task"  # type: ignore[return-value]

    with pytest.raises(WorkloadError, match="returned str, not a Task"):
        Case(suite="demo", workload=broken, params={}).build()


@pytest.mark.parametrize("items", [0, -1, 1.5])
def test_task_rejects_non_positive_items(items: object) -> None:
    with pytest.raises(WorkloadError, match="items"):
        Task(fn=noop, items=items)  # type: ignore[arg-type]


def test_task_picks_an_adapter_specific_implementation() -> None:
    def special() -> None:
        return None

    task = Task(fn=noop, impls={"cuda": special})
    assert task.fn_for("cuda") is special
    assert task.fn_for("cpu") is noop


# --- the typed facts of a task ----------------------------------------------------------------


@pytest.mark.parametrize(("facts", "message"), [
    ({"items_unit": ""}, "Task.items_unit must be a non-empty string, got ''"),
    ({"items_unit": 3}, "Task.items_unit must be a non-empty string, got 3"),
    ({"engine": None}, "Task.engine must be a non-empty string, got None"),
    ({"dtype": "fp32"}, "Task.dtype must be None or one of float64, float32, float16, bfloat16"),
    ({"dtype": 32}, "Task.dtype must be None or one of float64, float32"),
    ({"host_only": 1}, "Task.host_only must be True, False or None (decide by looking), got 1"),
    ({"host_only": "no"}, "Task.host_only must be True, False or None (decide by looking), "
                          "got 'no'"),
    ({"footprint_bytes": -1}, "Task.footprint_bytes must be None or an int of at least 0, got -1"),
    ({"footprint_bytes": 1.5}, "Task.footprint_bytes must be None or an int of at least 0"),
    ({"footprint_bytes": True}, "Task.footprint_bytes must be None or an int of at least 0"),
    ({"torch_kernel": ""}, "Task.torch_kernel must be None or a non-empty string, got ''"),
])
def test_a_typed_fact_of_the_wrong_kind_names_the_valid_choices(facts: dict[str, object],
                                                                message: str) -> None:
    with pytest.raises(WorkloadError) as caught:
        Task(fn=noop, **facts)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("key", ["items_unit", "dtype", "engine", "host_only", "footprint_bytes"])
def test_a_typed_fact_left_in_meta_is_refused_not_ignored(key: str) -> None:
    with pytest.raises(WorkloadError, match=f"Task.meta key '{key}' is a Task field: "
                                            f"pass Task\\({key}=...\\) instead"):
        Task(fn=noop, meta={key: "float32"})


def test_row_meta_holds_the_free_form_meta_and_the_known_facts() -> None:
    task = Task(fn=noop, meta={"model": "tiny"}, items_unit="tokens", dtype="bfloat16",
                engine="compile", footprint_bytes=4096, torch_kernel="SDPA MATH")
    # host_only is stored as decided: noop holds no torch, so it is a plain Python function.
    assert task.row_meta() == {"model": "tiny", "items_unit": "tokens", "dtype": "bfloat16",
                               "engine": "compile", "host_only": True, "footprint_bytes": 4096}
    # Unknown facts are left out, not stored as None; torch_kernel is never stored.
    assert Task(fn=noop, host_only=False).row_meta() == {"items_unit": "items",
                                                         "engine": "eager", "host_only": False}


def test_replace_keeps_and_rechecks_the_typed_facts() -> None:
    import dataclasses

    task = Task(fn=noop, dtype="float16", host_only=True)
    assert dataclasses.replace(task, items=2).dtype == "float16"
    with pytest.raises(WorkloadError, match=r"Task\.dtype"):
        dataclasses.replace(task, dtype="half")
