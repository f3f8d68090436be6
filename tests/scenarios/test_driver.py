"""``harness run --scenario ...`` as a user runs it: bad input is one line, rows load, the peak
search ends on a met and a missed QPS, and BERT runs under load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import harness
from harness.cli import main
from tests.test_cli import cli, only_run

ROOT = Path(__file__).resolve().parents[2]
SERVICE = str(ROOT / "tests" / "scenarios" / "service.py")


@pytest.mark.parametrize(("args", "message"), [
    (["--qps", "50"], "--qps applies only to --scenario server"),
    (["--max-batch", "4"], "--max-batch applies only to a load --scenario"),
    (["--scenario", "offline", "--qps", "5"], "--qps applies only to --scenario server"),
    (["--scenario", "server", "--qps", "-5"], "--qps must be a positive number, got -5"),
    (["--scenario", "server", "--qps", "fast"], "argument --qps: invalid float value: 'fast'"),
    (["--scenario", "server"], "--scenario server needs --qps (or --find-peak)"),
    (["--scenario", "server", "--find-peak"], "--find-peak needs --latency-bound-ms"),
    (["--scenario", "server", "--qps", "5", "--max-batch", "0"], "--max-batch must be at least"),
    (["--scenario", "server", "--qps", "5", "--latency-bound-ms", "-1"],
     "--latency-bound-ms must be a positive number"),
    (["--scenario", "burst"], "argument --scenario: invalid choice: 'burst'"),
    (["--ttft-bound-ms", "100"], "--ttft-bound-ms applies only to --scenario server"),
    (["--scenario", "offline", "--tpot-bound-ms", "50"],
     "--tpot-bound-ms applies only to --scenario server"),
    (["--scenario", "server", "--qps", "5", "--ttft-bound-ms", "0"],
     "--ttft-bound-ms must be a positive number"),
    (["--scenario", "single-stream", "--quick", "--loadgen-minimums"], "contradict each other"),
    (["--scenario", "server", "--qps", "5", "--min-time", "1"],
     "--min-time sets the timing loop; a load scenario runs for --duration"),
])
def test_bad_input_is_one_line_and_status_2(args: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["run", "-s", SERVICE, "-a", "null", *args])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("harness: error: "), err
    assert message in err
    assert "Traceback" not in err


def test_server_run_end_to_end_writes_rows_that_load(tmp_path: Path) -> None:
    result = cli("run", "-s", SERVICE, "-w", "service", "-p", "ms=2", "--scenario", "server",
                 "--qps", "100", "--latency-bound-ms", "50", "--max-batch", "4", "-a",
                 "cpu:threads=1", "--quick", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"scenario +adapter +offered +achieved", result.stdout), result.stdout
    assert "cpu:threads=1" in result.stdout  # the adapter's label, as in loop tables
    frame = harness.load(only_run(tmp_path))
    (row,) = frame.itertuples()
    assert row.status == "ok" and row.scenario == "server" and row.load_rule == "quick"
    assert row.qps == 100 and row.latency_bound_s == 0.05 and row.max_batch == 4
    assert 0 <= row.over_bound_fraction <= 1 and row.generator_lag_s >= 0
    assert row.latency_p99_s >= row.latency_median_s > 0.002  # queueing included: ≥ service
    assert row.queries >= 90 and row.correct  # each batch size's output checked
    assert row.peak_rss_bytes > 0  # the worker's own high-water mark
    assert "not valid by LoadGen's rules" in row.message


def test_each_closed_scenario_runs_inline(tmp_path: Path) -> None:
    rows = {}
    for scenario in ("single-stream", "offline", "multi-stream"):
        batch = [] if scenario == "single-stream" else ["--max-batch", "2"]
        status = main(["run", "-s", SERVICE, "-w", "service", "-p", "ms=1", "--scenario",
                       scenario, *batch, "--duration", "0.3", "--quick", "-a",
                       "cpu:threads=1", "--no-isolate", "--out", str(tmp_path / scenario)])
        assert status == 0
        (rows[scenario],) = harness.load(only_run(tmp_path / scenario)).to_dict("records")
        assert rows[scenario]["status"] == "ok" and rows[scenario]["scenario"] == scenario
    # 0.3 s of 1 ms queries: enough for single-stream's p90 estimate (64 queries), not for
    # multi-stream's p99 (662 groups of 8), which stays empty with the reason.
    assert rows["single-stream"]["early_stop_latency_s"] >= rows["single-stream"]["latency_p90_s"]
    assert "needs 662" in rows["multi-stream"]["missing"]
    # Offline batches by two: two queries per 1 ms call.
    assert rows["offline"]["throughput_items_per_s"] > 1000


def test_find_peak_ends_on_a_met_and_a_missed_qps(tmp_path: Path) -> None:
    # 4 ms per call, bound 100 ms: the peak lies near 250 QPS, the service's capacity.
    status = main(["run", "-s", SERVICE, "-w", "service", "-p", "ms=4", "--scenario", "server",
                   "--find-peak", "--qps", "100", "--latency-bound-ms", "100", "--quick",
                   "--duration", "0.5", "-a", "cpu:threads=1", "--no-isolate",
                   "--out", str(tmp_path)])
    assert status == 0
    frame = harness.load(only_run(tmp_path))
    result = frame[frame.peak_search == "result"]
    probes = frame[frame.peak_search == "probe"].set_index("qps")
    assert len(result) == 1 and len(probes) >= 3
    peak = result.peak_qps.iloc[0]
    assert 100 <= peak < 320
    assert probes.loc[peak, "meets_bound"] == True  # noqa: E712
    above = [q for q in probes.index if q == pytest.approx(peak * 1.2)]
    assert above and probes.loc[above[0], "meets_bound"] == False  # noqa: E712
    assert "missed it" in result.message.iloc[0]


def test_find_peak_judges_generation_by_its_token_bounds(tmp_path: Path) -> None:
    # 4 ms prefill and 3 × 1 ms decode per call: TTFT stays near 4 ms until a queue forms.
    status = main(["run", "-s", SERVICE, "-w", "speaker", "--scenario", "server", "--find-peak",
                   "--qps", "20", "--ttft-bound-ms", "30", "--tpot-bound-ms", "100", "--quick",
                   "--duration", "0.4", "-a", "cpu:threads=1", "--no-isolate",
                   "--out", str(tmp_path)])
    frame = harness.load(only_run(tmp_path))
    result = frame[frame.peak_search == "result"].iloc[0]
    assert status == 0 and result.ttft_bound_s == 0.03 and result.tpot_bound_s == 0.1
    probes = frame[frame.peak_search == "probe"]
    assert probes.ttft_p99_s.notna().all() and len(probes) >= 2
    assert not probes[probes.meets_bound == True].empty  # noqa: E712
    assert "met the 30 ms TTFT and 100 ms TPOT bounds" in result.message, result.message
    assert "p99 TTFT" in result.message  # why the run 20% above missed


@pytest.mark.slow
def test_bert_tiny_under_server_load(tmp_path: Path) -> None:
    result = cli("run", "-w", "bert", "-p", "size=tiny", "--scenario", "server", "--qps", "20",
                 "--latency-bound-ms", "100", "-a", "cpu:threads=1", "--quick", "--out",
                 tmp_path)
    assert result.returncode == 0, result.stderr
    (row,) = harness.load(only_run(tmp_path)).itertuples()
    assert row.status == "ok" and row.correct and row.scenario == "server"
    assert row.latency_p99_s > 0 and 0 <= row.over_bound_fraction <= 1


def test_a_resumed_load_run_keeps_its_scenario(tmp_path: Path) -> None:
    args = ["run", "-s", SERVICE, "-w", "service", "-p", "ms=1,2", "--scenario", "server",
            "--qps", "50", "--quick", "--duration", "0.2", "-a", "cpu:threads=1",
            "--no-isolate", "--out", str(tmp_path)]
    assert main(args) == 0
    run = only_run(tmp_path)
    rows = (run / "rows.jsonl").read_text().splitlines()
    (run / "rows.jsonl").write_text(rows[0] + "\n")  # as if killed after the first case
    assert main(["run", "--resume", str(run), "--no-isolate"]) == 0
    frame = harness.load(run)
    assert len(frame) == 2 and (frame.scenario == "server").all() and (frame.qps == 50).all()
    assert main(["run", "--resume", str(run), "--scenario", "offline"]) == 2
