"""The command line in a subprocess, as a user runs it: list, run with null, errors, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import harness

ROOT = Path(__file__).resolve().parent.parent
FAST = ["--min-time", "0.02", "--min-samples", "5"]


def cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd or ROOT,
                          capture_output=True, text=True, env=env, timeout=300)


def only_run(results: Path) -> Path:
    runs = [p for p in results.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


def test_list_adapters_says_why_not() -> None:
    result = cli("list", "adapters")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert lines["cpu"].split()[1] == "yes"
    assert lines["null"].split()[1] == "yes"


def test_list_does_not_import_torch() -> None:
    code = "import sys, harness.cli; harness.cli.main(['list', 'adapters']); " \
           "print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_import_harness_imports_no_torch() -> None:
    code = "import sys, harness; print('torch' in sys.modules, 'pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip() == "False False"


def test_run_with_null_writes_a_loadable_run(tmp_path: Path) -> None:
    result = cli("run", "-s", "transformer", "-w", "attention", "-w", "ffn", "-a", "null",
                 "--out", tmp_path, *FAST)
    assert result.returncode == 0, result.stderr
    run = only_run(tmp_path)
    assert f"run folder: {run}" in result.stdout
    assert "transformer/attention  batch=1 heads=12" in result.stdout  # the table's heading
    frame = harness.load(run)
    assert set(frame.workload) == {"attention", "ffn"}
    assert (frame.status == "ok").all()
    assert (frame.adapter == "null").all()
    assert frame.peak_fraction.isna().all()  # no hardware behind null: no roofline, with reason
    assert all("null adapter runs no hardware" in m for m in frame.missing)
    # A null call costs nanoseconds: many loops per sample, and a median far below 1 µs.
    assert (frame.loops > 100).all()
    assert (frame.latency_median_s < 1e-6).all()
    assert (frame.n_samples >= 5).all()
    context = json.loads((run / "context.json").read_text())
    assert context["command"][1:3] == ["run", "-s"]
    assert context["adapters"]["null"]["name"] == "null"


def test_third_party_suite_from_a_file(tmp_path: Path) -> None:
    suite = tmp_path / "mysuite.py"
    suite.write_text(textwrap.dedent("""
        from harness import Task, workload

        def add(a, b):
            return a + b

        def must_be_five(out):
            assert out == 5, f"got {out}"

        @workload(params={"a": [2, 3], "b": [3]})
        def adder(a, b):
            '''Adds two numbers.'''
            return Task(fn=add, inputs=(a, b), check=must_be_five)
    """))
    result = cli("run", "-s", suite, "-a", "cpu:threads=1", "--full", "--out", tmp_path / "r",
                 "--no-collect", *FAST)
    # a=3 gives 6: a failed check is reported and makes the exit status 1.
    assert result.returncode == 1, result.stderr
    frame = harness.load(tmp_path / "r").set_index("case_id")
    assert frame.loc["mysuite/adder[a=2,b=3]", "correct"] == True  # noqa: E712
    assert frame.loc["mysuite/adder[a=3,b=3]", "correct"] == False  # noqa: E712
    assert "check failed: got 6" in frame.loc["mysuite/adder[a=3,b=3]", "message"]
    assert (frame.adapter_options == '{"threads": 1}').all()


def test_failing_case_becomes_an_error_row_and_the_run_goes_on(tmp_path: Path) -> None:
    suite = tmp_path / "crashy.py"
    suite.write_text(textwrap.dedent("""
        from harness import Task, workload

        def boom():
            raise RuntimeError("kaboom")

        def fine():
            return 1

        @workload()
        def crash():
            return Task(fn=boom)

        @workload()
        def works():
            return Task(fn=fine)
    """))
    result = cli("run", "-s", suite, "-a", "cpu", "--out", tmp_path / "r", "--no-collect", *FAST)
    assert result.returncode == 1
    frame = harness.load(tmp_path / "r").set_index("workload")
    assert frame.loc["crash", "status"] == "error"
    assert "RuntimeError: kaboom" in frame.loc["crash", "message"]
    assert frame.loc["works", "status"] == "ok"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "-a", "gpu9"], "unknown adapter 'gpu9'; valid: cpu, "),
        (["run", "-s", "nope"], "unknown suite 'nope'; valid: lookup, transformer"),
        (["run", "-w", "conv"],
         "unknown workload 'conv'; valid: hash_lookup, btree_lookup, attention, ffn, bert"),
        (["run", "-w", "bert", "-p", "model_path=/nonexistent"], "is not a folder"),
        (["run", "-a", "null", "--reference", "tpu"],
         "--reference 'tpu' is not among the run's adapters: null"),
        (["run", "-p", "seq=abc"], "attention.seq takes an integer, got 'abc'"),
        (["run", "-p", "flavour=1"], "no selected workload has parameter 'flavour'"),
        (["run", "-p", "seq"], "-p/--param takes key=value"),
        (["run", "-a", "cpu:threads=0"], "cpu:threads must be a positive integer"),
        (["run", "-a", "cpu:cores=2"], "adapter 'cpu' has no option 'cores'; valid: threads"),
        (["run", "--min-time", "soon"], "--min-time: expected a finite number of seconds"),
        # Non-finite, absurd and negative values (a dash-led value reaches its own check).
        (["run", "--max-time", "nan"], "--max-time: expected a finite number of seconds"),
        (["run", "--min-time", "inf"], "--min-time: expected a finite number of seconds"),
        (["run", "--timeout", "nan"], "--timeout: expected a finite number of seconds, above 0"),
        (["run", "--timeout", "inf"], "--timeout: expected a finite number of seconds, above 0"),
        (["run", "--max-memory", "99999999T"], "'99999999T' is larger than any address space"),
        (["run", "--max-memory", "-5G"], "--max-memory: a size cannot be negative, got '-5G'"),
        (["run", "--precision", "-2%"], "--precision: expected a percentage such as 2, 2% or "
                                        "0.02 (a number of 1 or more is a percent"),
        (["compare", "a", "b", "--threshold", "-5%"], "--threshold: expected a percentage"),
        (["ab", "a", "b", "--timeout", "-1"], "--timeout: expected a finite number of seconds"),
        (["run", "--plan", "absent.toml", "--max-time", "-.5"], "--max-time: expected a finite"),
        (["run", "--plan", "absent.toml"], "cannot read plan"),
        (["list", "things"], "invalid choice: 'things'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("harness: error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_export_csv(tmp_path: Path) -> None:
    assert cli("run", "-w", "ffn", "-a", "null", "--out", tmp_path, *FAST).returncode == 0
    run = only_run(tmp_path)
    result = cli("export", run, "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == run / "rows.csv"
    assert "latency_median_s" in (run / "rows.csv").read_text().splitlines()[0]


def test_several_adapters_print_one_table_with_speedups(tmp_path: Path) -> None:
    result = cli("run", "-w", "ffn", "-a", "cpu:threads=1", "-a", "null", "--no-collect",
                 "--reference", "null", "--out", tmp_path, *FAST)
    assert result.returncode == 0, result.stderr
    table = result.stdout.splitlines()
    header = next(line for line in table if "adapter" in line)
    assert header.split()[:3] == ["adapter", "median", "vs"] and "vs null" in header
    # interleaved (the default with two adapters): the measured speedup with its interval
    cpu = next(line for line in table if line.split()[:1] == ["cpu:threads=1"])
    null = next(line for line in table if line.split()[:1] == ["null"])
    assert null.split()[3] == "reference"
    speedup, interval = cpu.split()[3:5]
    assert float(speedup.rstrip("×")) < 1  # real work is slower than an empty call
    assert interval.startswith("(") and interval.endswith(")")
    assert cpu.split()[-1] == "pass"


def synthetic_run(results: Path, scale: dict[str, float], seed: int) -> Path:
    """A run folder of three repetitions per case, samples around 1 ms × scale."""
    import numpy as np

    from harness.results import RunWriter

    rng = np.random.default_rng(seed)
    writer = RunWriter(results, {"host": "test"})
    for case, factor in scale.items():
        for rep in range(3):
            samples = (1e-3 * factor * np.exp(rng.normal(0, 0.02, 40))).tolist()
            writer.append({"suite": "s", "workload": "w", "case_id": case, "adapter": "cpu",
                           "status": "ok", "repetition": rep, "samples_s": samples})
    writer.close()
    return writer.path


def test_compare_exits_1_only_for_a_confirmed_regression(tmp_path: Path) -> None:
    cases = {"s/w[n=1]": 1.0, "s/w[n=<script>]": 1.0}
    base = synthetic_run(tmp_path, cases, seed=1)
    same = synthetic_run(tmp_path, cases, seed=2)
    slower = synthetic_run(tmp_path, {**cases, "s/w[n=1]": 1.15}, seed=3)
    assert cli("baseline", "save", base, "main", "--results", tmp_path).returncode == 0
    result = cli("compare", "main", same, "--results", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("no confirmed regression")
    md = tmp_path / "summary.md"
    result = cli("compare", "main", slower, "--results", tmp_path, "--markdown", md)
    assert result.returncode == 1, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("s/w[n=1]"))
    assert line.split()[2] == "slower"
    summary = md.read_text()
    assert "**1 confirmed regression" in summary and "🔴 slower" in summary
    assert "<script>" not in summary and "&lt;script&gt;" in summary


def test_compare_fails_on_a_candidate_without_rows_unless_allowed(tmp_path: Path) -> None:
    from harness.results import RunWriter

    base = synthetic_run(tmp_path, {"s/w[n=1]": 1.0, "s/w[n=2]": 1.0}, seed=1)
    writer = RunWriter(tmp_path, {"host": "test"})  # a candidate whose cases all vanished
    writer.close()
    result = cli("compare", base, writer.path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        "FAILED, missing: the candidate lacks 2 of the 2 cases the baseline measured "
        "(at most 0% may be missing) (2 missing)")
    assert cli("compare", base, writer.path, "--max-missing", "100%").returncode == 0


def test_compare_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, {"s/w": 1.0}, seed=1)
    for args in (("compare", "nope", run, "--results", tmp_path),
                 ("compare", run, run, "--threshold", "abc"),
                 ("baseline", "save", run, "../up", "--results", tmp_path)):
        result = cli(*args)
        assert result.returncode == 2, args
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, args


def test_repeat_runs_each_repetition_in_its_own_process(tmp_path: Path) -> None:
    result = cli("run", "-w", "ffn", "-a", "null", "--repeat", "2", "--out", tmp_path, *FAST)
    assert result.returncode == 0, result.stderr
    frame = harness.load(only_run(tmp_path))
    assert sorted(frame.repetition) == [0, 1]
    assert "rep" in next(x for x in result.stdout.splitlines() if "adapter" in x).split()


def test_dash_led_values_are_joined_to_their_option_only() -> None:
    from harness.cli.common import join_dash_values

    assert join_dash_values(["run", "--max-memory", "-5G", "-w", "ffn", "--precision", "-.5%"]
                            ) == ["run", "--max-memory=-5G", "-w", "ffn", "--precision=-.5%"]
    # A flag followed by another flag, a value with '=', and everything after "--" stay as is.
    assert join_dash_values(["--full", "-w", "x", "--out=-1", "--", "--a", "-1"]) == [
        "--full", "-w", "x", "--out=-1", "--", "--a", "-1"]
