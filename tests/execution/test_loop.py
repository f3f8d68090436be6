"""The runner with fake adapters: rows for ok, skipped and failed cases, peaks measured once."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import pytest

from harness import Skip, Task, plugins, workload
from harness.adapters import Adapter, Step
from harness.collectors import Collector, Figures
from harness.config import RunConfig, TimingOptions
from harness.execution.loop import Runner, close_all
from harness.execution.targets import case_target
from harness.plan import AdapterSpec, Plan
from harness.results import RunWriter
from harness.roofline import Ceiling, Peaks
from harness.workload import Case

FAST = TimingOptions(min_time_s=0.005, min_samples=3, max_time_s=0.5, max_warmup_s=0.05)


def double(x: int) -> int:
    return 2 * x


class FakeAdapter(Adapter):
    name: ClassVar[str] = "fake"
    peak_calls: ClassVar[list[str]] = []

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, ""

    def supports(self, task: Task) -> tuple[bool, str]:
        if task.meta.get("needs") == "gpu":
            return False, "fake has no gpu"
        return True, ""

    def prepare(self, task: Task) -> Step:
        fn, inputs = task.fn, task.inputs
        return lambda: fn(*inputs)

    def peaks(self, dtype: str) -> Peaks:
        self.peak_calls.append(dtype)
        return Peaks(flops_per_s=1e12, bytes_per_s=1e11, source=f"fake {dtype}")

    def ceiling(self, dtype: str) -> Ceiling:
        return Ceiling(2e12, f"fake {dtype} datasheet", 2e11, "fake memory")


def must_be(expected: int) -> Any:
    def check(out: int) -> None:
        assert out == expected, f"got {out}, expected {expected}"
    return check


@workload(params={"x": [2, 3], "dtype": ["float32", "bfloat16"]})
def doubler(x: int, dtype: str) -> Task:
    return Task(fn=double, inputs=(x,), items=4, flops=8.0, bytes=16.0, check=must_be(4),
                dtype=dtype, footprint_bytes=123)


@workload(params={"mode": ["build", "skip", "unsupported", "run"]})
def troubled(mode: str) -> Task:
    if mode == "build":
        raise ValueError("cannot build")
    if mode == "skip":
        raise Skip("not on this machine")

    def explode() -> None:
        raise RuntimeError("exploded")

    return Task(fn=explode, meta={"needs": "gpu"} if mode == "unsupported" else {})


def run(tmp_path: Path, cases: list[Case]) -> list[dict[str, Any]]:
    config = RunConfig(timing=FAST, collect=False, out=tmp_path)
    plan = Plan(cases=cases, adapters=[AdapterSpec("fake")])
    writer = RunWriter(tmp_path, {})
    rows = Runner(config, plan, writer).run({"fake": FakeAdapter()})
    writer.close()
    stored = [json.loads(line) for line in (writer.path / "rows.jsonl").read_text().splitlines()]
    assert [r["case_id"] for r in stored] == [r["case_id"] for r in rows]
    return rows


@workload(params={"n": [3]})
def structured(n: int) -> Task:
    """Returns a dict of tensors, as a Hugging Face model's ModelOutput is."""
    import torch

    x = torch.arange(float(n))

    def model(t: torch.Tensor) -> dict[str, Any]:
        return {"cache": [t], "logits": t * 2, "hidden": t + 1}

    def check(out: Any) -> None:
        assert isinstance(out, torch.Tensor) and out.tolist() == [0.0, 2.0, 4.0], out

    return Task(fn=model, inputs=(x,), check=check)


def test_a_structured_output_is_checked_by_its_primary_tensor_and_the_row_says_so(
        tmp_path: Path) -> None:
    (row,) = run(tmp_path, [Case("demo", structured, {"n": 3})])
    assert row["status"] == "ok" and row["correct"] is True, row["message"]
    assert row["output_varies"] is True  # the probe compared the tensors too
    assert row["meta"]["output_field"] == "dict['logits']"
    assert "used dict['logits'] as the output, its primary tensor" in row["message"]


def test_measured_rows_carry_timing_check_and_roofline(tmp_path: Path) -> None:
    FakeAdapter.peak_calls.clear()
    cases = [Case("demo", doubler, p) for p in doubler.grid("full")]
    rows = run(tmp_path, cases)
    by_id = {r["case_id"]: r for r in rows}
    ok = by_id["demo/doubler[x=2,dtype=float32]"]
    assert ok["status"] == "ok" and ok["correct"] is True
    assert ok["n_samples"] >= 3 and ok["latency_median_s"] > 0
    assert ok["throughput_items_per_s"] == 4 / ok["latency_median_s"]
    assert ok["peak_source"] == "fake float32"
    assert ok["attainable_fraction"] == max(8.0 / ok["latency_median_s"] / 1e12,
                                            16.0 / ok["latency_median_s"] / 1e11)
    assert ok["peak_fraction"] == max(8.0 / ok["latency_median_s"] / 2e12,
                                      16.0 / ok["latency_median_s"] / 2e11)
    assert ok["ceiling_source"] == "FLOP/s: fake float32 datasheet; bytes/s: fake memory"
    assert ok["footprint_bytes"] == 123
    # The task's typed facts are stored in the row's meta, where reports and baselines read them.
    assert {k: ok["meta"][k] for k in ("items_unit", "dtype", "engine", "host_only",
                                       "footprint_bytes")} == {
        # double(2) is plain Python: host_only is stored as the harness decided it.
        "items_unit": "items", "dtype": "float32", "engine": "eager", "host_only": True,
        "footprint_bytes": 123}
    assert "collectors were turned off" in ok["missing"]["peak_rss_bytes"]
    wrong = by_id["demo/doubler[x=3,dtype=float32]"]
    assert wrong["correct"] is False
    # (a note that warm-up never settled may follow on a busy machine)
    assert wrong["message"].startswith("check failed: got 6, expected 4")
    # Peaks are calibrated once per dtype, not once per case.
    assert sorted(FakeAdapter.peak_calls) == ["bfloat16", "float32"]


class SlowCalibration(FakeAdapter):
    """The onnxruntime ffn of a fresh clone: its calibration ran slower than a case, and a
    ceiling taken from a base clock is below what the case reaches."""

    name: ClassVar[str] = "slowcal"
    ceiling_flops: ClassVar[float] = 1e12

    def peaks(self, dtype: str) -> Peaks:
        return Peaks(flops_per_s=1e3, bytes_per_s=1e3, source="a slow calibration")

    def ceiling(self, dtype: str) -> Ceiling:
        return Ceiling(self.ceiling_flops, "cores × clock × FLOP/cycle", None, "no DMI tables")


def test_no_row_shows_a_peak_fraction_above_one(tmp_path: Path) -> None:
    # This would have caught the 109%: the case beats its calibration (a true finding, shown
    # as attainable_fraction > 1), but peak_fraction is against the hardware's ceiling.
    config = RunConfig(timing=FAST, collect=False, out=tmp_path)
    case = Case("demo", doubler, {"x": 2, "dtype": "float32"})
    for ceiling_flops in (1e12, 1.0):  # a true ceiling, then one below the case's rate
        SlowCalibration.ceiling_flops = ceiling_flops
        writer = RunWriter(tmp_path / str(ceiling_flops), {})
        (row,) = Runner(config, Plan(cases=[case], adapters=[AdapterSpec("slowcal")]),
                        writer).run({"slowcal": SlowCalibration()})
        writer.close()
        assert row["status"] == "ok"
        assert row["attainable_fraction"] > 1
        assert not row["peak_fraction"] > 1
        if ceiling_flops == 1.0:
            assert math.isnan(row["peak_fraction"])
            assert row["missing"]["peak_fraction"].startswith("the ceiling is wrong")
            assert "above the theoretical ceiling" in row["message"]
        else:
            assert 0 < row["peak_fraction"] < 1
            assert "ceiling" not in (row["message"] or "")


def test_failures_become_rows_and_the_run_goes_on(tmp_path: Path) -> None:
    rows = run(tmp_path, [Case("demo", troubled, p) for p in troubled.grid("full")])
    by_mode = {r["params"]["mode"]: r for r in rows}
    assert by_mode["build"]["status"] == "error"
    assert by_mode["build"]["message"].startswith("build failed: ValueError: cannot build")
    assert (by_mode["skip"]["status"], by_mode["skip"]["message"]) == (
        "skipped", "not on this machine")
    assert (by_mode["unsupported"]["status"], by_mode["unsupported"]["message"]) == (
        "skipped", "fake has no gpu")
    assert by_mode["run"]["status"] == "error"
    assert by_mode["run"]["message"].startswith("timing failed: RuntimeError: exploded")
    assert math.isnan(by_mode["run"].get("latency_median_s", math.nan))


class MeteredAdapter(FakeAdapter):
    name: ClassVar[str] = "metered"

    def collectors(self) -> list[Collector]:
        return [FakeEnergy()]


class FakeEnergy(Collector):
    name: ClassVar[str] = "fake-energy"
    calibrated: ClassVar[list[bool]] = []

    def calibrate(self) -> None:
        self.calibrated.append(True)

    def start(self) -> None:
        return None

    def stop(self, calls: int, items_per_call: int) -> Figures:
        return Figures(values={"energy_j": 2.0, "energy_source": "fake-counter",
                               "energy_per_item_j": 2.0 / (calls * items_per_call)})


def collected_row(tmp_path: Path, adapter: Adapter, label: str) -> dict[str, Any]:
    config = RunConfig(timing=FAST, collect=True, out=tmp_path)
    case = Case("demo", doubler, doubler.grid("quick")[0])
    writer = RunWriter(tmp_path, {})
    (row,) = Runner(config, Plan([case], [AdapterSpec(label)]), writer).run({label: adapter})
    writer.close()
    return row


def test_the_adapters_own_energy_counter_fills_the_energy_columns(tmp_path: Path) -> None:
    FakeEnergy.calibrated.clear()
    row = collected_row(tmp_path, MeteredAdapter(), "metered")
    assert FakeEnergy.calibrated == [True]  # idle baseline once per run and adapter
    assert row["energy_j"] == 2.0 and row["energy_source"] == "fake-counter"
    assert row["peak_rss_bytes"] > 10 * 2**20  # the host collector ran in the same pass
    assert row["peak_rss_source"] == "psutil-sampled-10ms"


def test_an_adapter_without_energy_counter_says_so(tmp_path: Path) -> None:
    row = collected_row(tmp_path, FakeAdapter(), "fake")
    assert row["energy_source"] == "unavailable: the fake adapter has no energy counter"
    assert row["missing"]["energy_j"] == "the fake adapter has no energy counter"
    assert "energy_j" not in row or math.isnan(row["energy_j"])


class CompilingAdapter(FakeAdapter):
    name: ClassVar[str] = "compiling"

    def prepare(self, task: Task) -> Step:
        self.compile_s = 1.5  # as if lowering and compiling took 1.5 s
        return super().prepare(task)


def test_compile_time_is_its_own_column_or_says_why_not(tmp_path: Path) -> None:
    compiled = collected_row(tmp_path / "a", CompilingAdapter(), "compiling")
    assert compiled["compile_s"] == 1.5
    assert "compile_s" not in compiled["missing"]
    plain = collected_row(tmp_path / "b", FakeAdapter(), "fake")
    assert math.isnan(plain["compile_s"])
    assert plain["missing"]["compile_s"] == "this adapter compiles nothing ahead of time"


# --- what a device adapter meets: memory, the probe, closing, and the worker's side ---------


class DeviceAdapter(FakeAdapter):
    """A device that keeps what each prepare puts on it, and reports its peak."""

    name: ClassVar[str] = "device"
    case_bytes: ClassVar[int] = 100 * 2**20

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.allocated = self.peak = 0

    def prepare(self, task: Task) -> Step:
        self.allocated += self.case_bytes
        self.peak = max(self.peak, self.allocated)
        return super().prepare(task)

    def reset_memory_stats(self) -> None:
        self.peak = self.allocated

    def memory_stats(self) -> dict[str, Any]:
        return {"peak_device_bytes": self.peak}


@workload(params={"n": [4]})
def neg(n: int) -> Task:
    import torch

    x = torch.arange(n, dtype=torch.float32)
    return Task(fn=torch.neg, inputs=(x,), check=lambda out: None)


def one_row(tmp_path: Path, adapter: Adapter, label: str, workload: Any = doubler,
            collect: bool = False) -> dict[str, Any]:
    config = RunConfig(timing=FAST, collect=collect, out=tmp_path)
    case = Case("demo", workload, workload.grid("quick")[0])
    (row,) = Runner(config, Plan([case], [AdapterSpec(label)]), None).run({label: adapter})
    return row


def test_peak_device_memory_is_the_timed_cases_alone(tmp_path: Path) -> None:
    # The changed-input probe prepares a second copy of the case on the device; read after
    # it, the peak was twice the case's own.
    adapter = DeviceAdapter()
    row = one_row(tmp_path, adapter, "device", neg)
    assert row["output_varies"] is True  # the probe ran, and prepared its own copy
    assert adapter.allocated == 2 * DeviceAdapter.case_bytes
    assert row["peak_device_bytes"] == DeviceAdapter.case_bytes


class ProbeFailingAdapter(FakeAdapter):
    """The probe's call fails; with ``sticky``, the device fails every call after it, as CUDA
    does after an illegal address or a device-side assert."""

    name: ClassVar[str] = "probe-failing"
    sticky: ClassVar[bool] = True
    error = "CUDA error: an illegal memory access was encountered"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.prepared = 0
        self.broken = False

    def prepare(self, task: Task) -> Step:
        self.prepared += 1
        if self.prepared == 1:
            return super().prepare(task)

        def fail() -> None:
            self.broken = self.sticky
            raise RuntimeError(self.error)
        return fail

    def synchronize(self) -> None:
        if self.broken:
            raise RuntimeError(self.error)


class ProbeOnlyFailingAdapter(ProbeFailingAdapter):
    name: ClassVar[str] = "probe-only-failing"
    sticky: ClassVar[bool] = False


def test_a_sticky_device_error_in_the_probe_fails_the_row(tmp_path: Path) -> None:
    row = one_row(tmp_path, ProbeFailingAdapter(), "probe-failing", neg)
    assert row["status"] == "error" and row["correct"] is None
    assert row["message"].startswith(
        "probe failed: RuntimeError: CUDA error: an illegal memory access was encountered")


def test_a_probe_that_fails_alone_leaves_the_case_ok_and_says_why(tmp_path: Path) -> None:
    row = one_row(tmp_path, ProbeOnlyFailingAdapter(), "probe-only-failing", neg)
    assert row["status"] == "ok" and row["output_varies"] is None
    assert row["missing"]["output_varies"].startswith(
        "the changed-input probe failed: RuntimeError: CUDA error: an illegal memory access")



@workload(params={"n": [4]})
def sorts(n: int) -> Task:
    return Task(fn=sorted, inputs=([5, 3, 8, 1][:n],), check=lambda out: None)


def test_sorting_a_list_is_not_called_a_constant_answer(tmp_path: Path) -> None:
    # The generic change once only rotated lists, which sorting cannot see.
    row = one_row(tmp_path, FakeAdapter(), "fake", sorts)
    assert row["status"] == "ok" and row["output_varies"] is True
    assert "did not change" not in row["message"]


class Boxed:
    def __init__(self, values: list[int]) -> None:
        self.values = values


@workload(params={"n": [3]})
def boxed_sort(n: int) -> Task:
    return Task(fn=lambda box: sorted(box.values), inputs=(Boxed(list(range(n, 0, -1))),),
                check=lambda out: None)


def test_an_input_the_probe_cannot_change_is_said_not_accused(tmp_path: Path) -> None:
    row = one_row(tmp_path, FakeAdapter(), "fake", boxed_sort)
    assert row["status"] == "ok" and row["output_varies"] is None
    assert "did not change" not in row["message"]
    assert row["missing"]["output_varies"] == (
        "could not change inputs of type Boxed: constant-output check not run")

# --- the worker's side: case_target, in this process ------------------------------------


class ClosingAdapter(FakeAdapter):
    """Its close() meets the error a sticky CUDA fault leaves for the last synchronise."""

    name: ClassVar[str] = "closing"
    worked = False

    def prepare(self, task: Task) -> Step:
        self.worked = True
        return super().prepare(task)

    def close(self) -> None:
        if self.worked:  # as the cuda adapter, which synchronises only after work
            raise RuntimeError("CUDA error: unspecified launch failure")


class OomAdapter(FakeAdapter):
    name: ClassVar[str] = "oom"

    def prepare(self, task: Task) -> Step:
        import torch

        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def worker_payload(adapter: str, workload: str = "neg", **extra: Any) -> dict[str, Any]:
    """What a worker gets for case ``workload`` of tests/execution/worker_suite.py."""
    payload = {"suite": "tests.execution.worker_suite", "workload": workload,
               "params": {"n": 8}, "adapter": adapter, "adapter_options": {},
               "timing": asdict(FAST), "collect": False, "repetition": 0,
               "max_memory_bytes": None, "recalibrate": False, "peaks": {}}
    return json.loads(json.dumps({**payload, **extra}))  # as a worker receives it


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """This module's adapters, registered as a worker would find them."""
    for cls in (FakeAdapter, ClosingAdapter, OomAdapter, MeteredAdapter):
        monkeypatch.setitem(plugins.checkout_entry_points()["harness.adapters"], cls.name,
                            f"{__name__}:{cls.__name__}")


def test_an_error_in_close_keeps_the_row_and_says_where(registered: None) -> None:
    result = case_target(worker_payload("closing"))
    row = result["row"]
    assert row["status"] == "error"
    assert row["correct"] is True and row["latency_median_s"] > 0  # the case's figures stay
    assert row["message"].startswith("close failed (closing): RuntimeError: CUDA error: "
                                     "unspecified launch failure")


def test_a_device_out_of_memory_is_not_blamed_on_the_memory_cap(registered: None) -> None:
    row = case_target(worker_payload("oom", max_memory_bytes=2**31))["row"]
    assert row["status"] == "error"
    assert row["message"].startswith("prepare failed: OutOfMemoryError: CUDA out of memory")
    assert "--max-memory" not in row["message"]


def test_close_all_closes_every_one_and_reports_the_first_failure() -> None:
    closed: list[str] = []

    class Thing:
        def __init__(self, name: str, fails: bool) -> None:
            self.name, self.fails = name, fails

        def close(self) -> None:
            closed.append(self.name)
            if self.fails:
                raise OSError(f"{self.name} would not close")

    failure = close_all([Thing("a", False), Thing("b", True), Thing("c", True)])
    assert closed == ["a", "b", "c"]
    assert failure.startswith("close failed (b): OSError: b would not close")
    assert close_all([Thing("d", False)]) == ""
