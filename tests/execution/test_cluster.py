"""Cluster runs on Ray: placement by resources, gathering, a lost worker and a lost node.

The Ray tests share one local multi-node cluster (``ray.cluster_utils.Cluster``: logical nodes
that are processes of this machine, each with its own raylet and resources): a head that runs
nothing (no CPU), a plain node, and a node labelled ``fpga``. They skip, saying why, where Ray
is not installed; the ``[dev]`` extra installs it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import harness
from harness.cli import main
from harness.execution.cluster import (
    SLOT,
    ClusterError,
    Node,
    check,
    parse_resources,
    requirement,
)
from harness.plan import AdapterSpec
from harness.results import LOST_FILE, read_rows

SUITE = Path(__file__).parent.parent / "faults" / "faulty_suite.py"
FAST = ["--min-time", "0.05", "--min-samples", "3", "--no-collect"]


# --- without a cluster ------------------------------------------------------------------------


def test_without_ray_a_cluster_run_is_one_line_naming_the_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    status = main(["run", "-s", str(SUITE), "-w", "fine", "-a", "null", "--cluster", "local",
                   "--out", str(tmp_path), *FAST])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "pip install 'inference-harness[cluster]'" in err
    assert not list(tmp_path.iterdir())  # no run folder for a run that never started


@pytest.mark.parametrize("args, message", [
    (["--resources", "null=fpga:1"], "--resources only applies with --cluster"),
    (["--cluster", "local", "--no-isolate"], "drop --no-isolate"),
    (["--cluster", "local", "--resources", "null=fpga"], "'fpga' is not RESOURCE:N"),
    (["--cluster", "local", "--resources", "fpga:1"], "--resources takes ADAPTER=RESOURCE:N"),
])
def test_bad_cluster_flags_are_one_line_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status = main(["run", "-s", str(SUITE), "-w", "fine", "-a", "null", "--out", str(tmp_path),
                   *FAST, *args])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and message in err, err


def test_resources_come_from_the_adapter_unless_overridden() -> None:
    assert requirement(AdapterSpec("cuda"), {}) == {"GPU": 1}
    assert requirement(AdapterSpec("tpu"), {}) == {"TPU": 1}
    assert requirement(AdapterSpec("fpga"), {}) == {"fpga": 1}
    assert requirement(AdapterSpec("cpu", {"threads": 1}), {}) == {}
    overrides = parse_resources(["cuda=GPU:1,A100:1", "cpu="])
    assert overrides == {"cuda": {"GPU": 1.0, "A100": 1.0}, "cpu": {}}
    assert requirement(AdapterSpec("cuda"), overrides) == {"GPU": 1, "A100": 1}


def test_a_node_runs_one_case_per_slot_on_its_share_of_the_cpus() -> None:
    plain = Node("a" * 56, "box", "10.0.0.1", {"CPU": 8.0, "memory": 1e9})
    gpus = Node("b" * 56, "gpu-box", "10.0.0.2", {"CPU": 64.0, "GPU": 8.0, SLOT: 8.0})
    head = Node("c" * 56, "head", "10.0.0.3", {"CPU": 0.0, "fpga": 1.0})
    # One slot by default: a CPU case takes every CPU, so no other case shares the host.
    assert plain.slots == 1 and plain.request({}) == {"num_cpus": 8.0, "num_gpus": 0}
    assert gpus.request({"GPU": 1, "A100": 1}) == {"num_cpus": 8.0, "num_gpus": 1,
                                                   "resources": {"A100": 1}}
    assert plain.offers({}) and not plain.offers({"GPU": 1}) and gpus.offers({"GPU": 1})
    assert not head.offers({"fpga": 1})  # a node without CPUs runs nothing
    assert plain.hardware == 0 and gpus.hardware == 1
    assert plain.name == "box (Ray node aaaaaaaa, 10.0.0.1)"
    with pytest.raises(ClusterError, match=r"adapter 'fpga' needs Ray resources fpga:1, which "
                                           r"no live node .* --resources='\{\"fpga\": 1\}'"):
        check([AdapterSpec("cpu"), AdapterSpec("fpga")], {}, {n.id: n for n in (plain, gpus)})


# --- on a local Ray cluster -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A head that runs nothing, a plain node and a node labelled ``fpga``."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install "
                                      "'inference-harness[cluster]'")
    from ray.cluster_utils import Cluster

    local = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        local.plain = local.add_node(num_cpus=1)
        local.fpga = local.add_node(num_cpus=1, resources={"fpga": 1})
        local.wait_for_nodes()
        yield local
    finally:
        local.shutdown()


def harness_run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "run", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness", "run", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(process: subprocess.Popen[str], out: Path, rows: int) -> Path:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        runs = list(out.glob("*/rows.jsonl"))
        if runs and runs[0].read_text().count("\n") >= rows:
            return runs[0].parent
        if process.poll() is not None:
            pytest.fail(f"the run ended too early: {process.communicate()[1]}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"{rows} row(s) did not appear within 180 s")


def summary(run: Path) -> set[tuple[str, str, str, Any]]:
    return {(r["case_id"], r["adapter_label"], r["status"], r["correct"]) for r in read_rows(run)}


@pytest.mark.slow
def test_cases_go_to_nodes_with_their_hardware_and_gather_into_one_run(
        cluster: Any, tmp_path: Path) -> None:
    select = ["-s", SUITE, "-w", "fine", "-p", "n=1000,2000", "-a", "null", "-a",
              "cpu:threads=1", *FAST]
    # null asks for the fpga label here, so its cases can only run on the fpga node.
    result = harness_run(*select, "--cluster", cluster.address, "--resources", "null=fpga:1",
                         "--out", tmp_path / "cluster")
    assert result.returncode == 0, result.stderr
    plain = harness_run(*select, "--out", tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr

    (run,) = (tmp_path / "cluster").iterdir()
    (local,) = (tmp_path / "plain").iterdir()
    assert summary(run) == summary(local) and len(read_rows(run)) == 4
    rows = read_rows(run)
    assert {r["meta"]["ray_node_id"] for r in rows if r["adapter"] == "null"} == {
        cluster.fpga.node_id}
    assert {r["meta"]["ray_node_id"] for r in rows} <= {cluster.plain.node_id,
                                                        cluster.fpga.node_id}
    assert {r["host"] for r in rows} == {socket.gethostname()} == {
        r["host"] for r in read_rows(local)}
    context = json.loads((run / "context.json").read_text())
    assert cluster.fpga.node_id in context["hosts"]
    assert context["hosts"][cluster.fpga.node_id]["adapters"]["null"]["name"] == "null"
    assert context["config"]["cluster"]["resources"] == {"null": {"fpga": 1.0}}
    # Report and load read a cluster run like any other.
    frame = harness.load(run)
    assert set(frame.host) == {socket.gethostname()} and frame.lost.isna().all()
    assert main(["report", str(run), "-o", str(tmp_path / "r.md")]) == 0
    assert f"Ray node {cluster.fpga.node_id[:8]}" in (tmp_path / "r.md").read_text()


@pytest.mark.slow
def test_a_killed_ray_worker_gives_lost_rows_that_resume_completes(
        cluster: Any, tmp_path: Path) -> None:
    import psutil

    args = ["-s", SUITE, "-w", "fine", "--full", "-a", "null", "--resources", "null=fpga:1",
            "--min-time", "0.5", "--min-samples", "3", "--no-collect",
            "--cluster", cluster.address]
    process = start(*args, "--out", tmp_path)
    run = wait_for_rows(process, tmp_path, 1)
    raylet = psutil.Process(cluster.fpga.all_processes["raylet"][0].process.pid)
    deadline = time.monotonic() + 60
    victims: list[psutil.Process] = []
    while not victims and time.monotonic() < deadline:
        victims = [p for p in raylet.children(recursive=True)
                   if " ".join(p.cmdline()).startswith("ray::harness faulty_suite/fine")]
        time.sleep(0.05)
    assert victims, "no Ray worker was running a case"
    os.kill(victims[0].pid, signal.SIGKILL)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 1, err  # an error row, and the run went on to the end
    rows = read_rows(run)
    assert len(rows) == 4
    (lost,) = [r for r in rows if r.get("lost")]
    assert lost["status"] == "error"
    assert lost["message"].startswith(f"lost: the Ray worker on {socket.gethostname()} "
                                      f"(Ray node {cluster.fpga.node_id[:8]}")
    assert "WorkerCrashedError" in lost["message"] or "died" in lost["message"]

    resumed = harness_run("--resume", run, "--cluster", cluster.address)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 lost case(s) moved" in resumed.stderr
    rows = read_rows(run)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
    assert {r["case_id"] for r in rows} == {f"faulty_suite/fine[n={n}]"
                                            for n in (1000, 2000, 3000, 4000)}
    assert [json.loads(line)["case_id"] for line in
            (run / LOST_FILE).read_text().splitlines()] == [lost["case_id"]]


@pytest.mark.slow
def test_a_lost_node_gives_lost_rows_that_resume_completes_on_another(
        cluster: Any, tmp_path: Path) -> None:
    node = cluster.add_node(num_cpus=1, resources={"lossy": 1})
    args = ["-s", SUITE, "-w", "fine", "--full", "-a", "null", "--resources", "null=lossy:1",
            "--min-time", "0.5", "--min-samples", "3", "--no-collect"]
    process = start(*args, "--cluster", cluster.address, "--out", tmp_path)
    run = wait_for_rows(process, tmp_path, 1)
    cluster.remove_node(node)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 1, err
    rows = read_rows(run)
    assert len(rows) == 4
    lost = [r for r in rows if r.get("lost")]
    assert 1 <= len(lost) <= 3 and all(r["status"] == "error" for r in lost)
    name = f"(Ray node {node.node_id[:8]}"
    assert all(name in r["message"] for r in lost), [r["message"] for r in lost]
    assert any((r["message"].startswith("lost: node ") and "NodeDiedError" in r["message"])
               or "no live node of the cluster offers lossy:1" in r["message"] for r in lost)

    # Without a node that has the label, resume refuses before touching anything ...
    refused = harness_run("--resume", run, "--cluster", cluster.address)
    assert refused.returncode == 2 and "lossy" in refused.stderr, refused.stderr
    # ... and with a new one, it runs exactly the lost cases there.
    replacement = cluster.add_node(num_cpus=1, resources={"lossy": 1})
    try:
        resumed = harness_run("--resume", run, "--cluster", cluster.address)
        assert resumed.returncode == 0, resumed.stderr
        rows = read_rows(run)
        assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}
        assert {r["meta"]["ray_node_id"] for r in rows if r["case_id"] in
                {x["case_id"] for x in lost}} == {replacement.node_id}
    finally:
        cluster.remove_node(replacement)
