"""Run a plan over a Ray cluster: each case on a node with its hardware, the rows gathered here.

``harness run --cluster ADDRESS`` connects to Ray (``local`` starts a private instance), and
hands each pending case × adapter to a node as one Ray task. The task runs the case exactly as
a local isolated run does (:func:`harness.execution.local.run_case`: a fresh worker forked from
that node's forkserver, with ``--timeout`` and ``--max-memory``) and returns the row, the host
name, and, the first time, that host's context. This process writes each row with the run's
:class:`~harness.results.RunWriter` as soon as it returns, so a crash here loses nothing that
came back.

Placement is the harness's own, through Ray's node-affinity scheduling, because the truth of a
timing depends on what else runs beside it:

- an adapter declares the Ray resources one case needs (:attr:`Adapter.cluster_resources`:
  ``GPU`` for ``cuda``, custom ``TPU`` and ``fpga``); ``--resources`` overrides them;
- each node runs at most ``harness_slot`` cases at once (a custom resource the cluster owner
  may give a node; 1 when absent), and each case takes the node's CPUs divided by its slots, so
  with the default of one slot a timed case never shares the host's cores with another case;
- a node with fewer than one CPU (a head started with ``--num-cpus=0``) runs nothing.

Ray itself would place tasks by resources too, but it cannot ask for "every CPU of whichever
node", and a task no live node can run waits there forever; choosing the node here avoids both.

A node or Ray worker that dies turns the cases it held into error rows that name the node and
the Ray error, with ``lost`` set; queued cases that no remaining node can run become such rows
as well. ``--resume`` moves lost rows aside (:func:`harness.results.set_aside_lost`) and runs
those cases again.

Ray is an optional extra (``pip install 'inference-harness[cluster]'``), imported only here and
only when a cluster is asked for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.config import RunConfig
    from harness.execution.hooks import Hooks
    from harness.execution.local import Learnt
    from harness.execution.rows import RowKey
    from harness.execution.workers import Limits
    from harness.plan import AdapterSpec, Plan
    from harness.results import RunWriter
    from harness.workload import Case

INSTALL = "pip install 'inference-harness[cluster]'"
#: the custom resource that says how many cases a node may time at once (default 1).
SLOT = "harness_slot"
#: resources Ray defines on every node; the rest (GPU, TPU, custom labels) mark hardware.
RAY_BOOKKEEPING = ("CPU", "memory", "object_store_memory")
#: variables Ray sets per task to give it its own accelerator; passed on to the case's worker.
ACCELERATOR_ENV = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES",
                   "TPU_VISIBLE_CHIPS", "TPU_CHIPS_PER_PROCESS_BOUNDS", "TPU_PROCESS_BOUNDS",
                   "NEURON_RT_VISIBLE_CORES", "ONEAPI_DEVICE_SELECTOR", "HABANA_VISIBLE_MODULES")

Resources = dict[str, float]


class ClusterError(Exception):
    """Ray is missing, the cluster cannot be reached, or it cannot run the plan: one line."""


@dataclass(frozen=True)
class Node:
    """One live Ray node, as the scheduler here sees it."""

    id: str
    host: str
    address: str
    resources: Resources = field(default_factory=dict)

    @property
    def name(self) -> str:
        """How messages name the node: host, short Ray node id, address."""
        return f"{self.host} (Ray node {self.id[:8]}, {self.address})"

    @property
    def slots(self) -> int:
        return max(1, int(self.resources.get(SLOT, 1)))

    @property
    def cpus(self) -> float:
        return float(self.resources.get("CPU", 0.0))

    @property
    def hardware(self) -> int:
        """How many kinds of special hardware the node offers (plain nodes take plain cases)."""
        return sum(1 for k, v in self.resources.items()
                   if v > 0 and k not in RAY_BOOKKEEPING and k != SLOT
                   and not k.startswith("node:") and not k.startswith("accelerator_type:"))

    def offers(self, need: Resources) -> bool:
        """Whether a case needing ``need`` can ever run here."""
        return self.cpus >= 1 and all(self.resources.get(k, 0.0) >= v for k, v in need.items())

    def request(self, need: Resources) -> dict[str, Any]:
        """Ray task options for one case here: the node's CPUs over its slots, plus ``need``."""
        custom = {k: v for k, v in need.items() if k not in ("CPU", "GPU")}
        options: dict[str, Any] = {"num_cpus": self.cpus / self.slots,
                                   "num_gpus": need.get("GPU", 0)}
        if custom:
            options["resources"] = custom
        return options


def parse_resources(items: list[str]) -> dict[str, Resources]:
    """``--resources ADAPTER=NAME:N,...`` (repeatable) → adapter name → the Ray resources one
    of its cases needs, replacing what the adapter declares; ``ADAPTER=`` needs none."""
    out: dict[str, Resources] = {}
    for item in items:
        adapter, sep, text = item.partition("=")
        if not sep or not adapter.strip() or ":" in adapter:
            raise ClusterError(f"--resources takes ADAPTER=RESOURCE:N[,RESOURCE:N...] (an "
                               f"adapter name, e.g. fpga=fpga:1), got {item!r}")
        need: Resources = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, colon, amount = part.rpartition(":")
            try:
                value = float(amount) if colon else float("nan")
            except ValueError:
                value = float("nan")
            if not colon or not name or not 0 <= value < float("inf"):
                raise ClusterError(f"--resources {item!r}: {part!r} is not RESOURCE:N with "
                                   "N >= 0, e.g. GPU:1 or fpga:1")
            need[name] = value
        out[adapter.strip()] = need
    return out


def requirement(spec: AdapterSpec, overrides: dict[str, Resources]) -> Resources:
    """The Ray resources one case of ``spec`` needs: ``--resources`` for its adapter name, else
    what the adapter declares (:attr:`harness.adapters.Adapter.cluster_resources`)."""
    from harness import plugins

    if spec.name in overrides:
        return dict(overrides[spec.name])
    return dict(plugins.adapter_class(spec.name).cluster_resources)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed: {INSTALL}") from None
    return ray


def connect(address: str) -> None:
    """Connect this process to the cluster at ``address``; ``local`` starts a private one."""
    ray = _ray()
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address == "local":
            ray.init(include_dashboard=False, **options)
        else:
            ray.init(address=address, **options)
    except Exception as exc:  # Ray raises ConnectionError, ValueError, RuntimeError, ...
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        # A cluster with token authentication refuses a client that does not say it uses one,
        # and Ray's own message then says only that it failed to connect.
        hint = ("" if address == "local" or os.environ.get("RAY_AUTH_MODE") else
                " (if the cluster uses token authentication, set RAY_AUTH_MODE=token and its "
                "token here: see the README's cluster section)")
        raise ClusterError(f"cannot connect to the Ray cluster at {address}: {lines[0]}{hint}"
                           ) from None


def disconnect() -> None:
    """Leave the cluster (and stop it, when ``local`` started it)."""
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()


def live_nodes() -> dict[str, Node]:
    """The cluster's live nodes by id."""
    ray = _ray()
    return {n["NodeID"]: Node(n["NodeID"], str(n.get("NodeManagerHostname") or "?"),
                              str(n.get("NodeManagerAddress") or "?"),
                              {k: float(v) for k, v in (n.get("Resources") or {}).items()})
            for n in ray.nodes() if n.get("Alive")}


def check(specs: list[AdapterSpec], overrides: dict[str, Resources],
          nodes: dict[str, Node]) -> None:
    """Refuse, before anything runs, adapters that no live node can run."""
    if not any(n.cpus >= 1 for n in nodes.values()):
        raise ClusterError("no node of the cluster has a CPU for the harness to run on")
    for spec in specs:
        need = requirement(spec, overrides)
        if not any(n.offers(need) for n in nodes.values()):
            custom = {k: v for k, v in need.items() if k not in ("CPU", "GPU")}
            hint = (f"start a node with `ray start ... --resources='{json.dumps(custom)}'`"
                    if custom else "add a node that has them")
            raise ClusterError(f"adapter {spec.label!r} needs Ray resources {_text(need)}, which"
                               f" no live node of the cluster offers: {hint}")


# --- on the node ------------------------------------------------------------------------------

#: per Ray worker process (and so per node): adapter and its devices → what its workers learnt.
_LEARNT: dict[str, Learnt] = {}


def _undo_ray_threads() -> None:
    """Give the case the thread count a local run would have.

    Ray sets ``OMP_NUM_THREADS`` to a task's CPU count when the node's environment does not
    set it, which would change torch's thread count from what ``harness run`` uses without a
    cluster. ``/proc/self/environ`` still holds the environment this worker started with, so
    a variable missing there was set by Ray, and is removed before the forkserver starts.
    """
    try:
        start = Path("/proc/self/environ").read_bytes().split(b"\0")
    except OSError:
        return
    if not any(item.startswith(b"OMP_NUM_THREADS=") for item in start):
        os.environ.pop("OMP_NUM_THREADS", None)


def node_task(job_text: str, limits: dict[str, Any], want_context: bool) -> dict[str, Any]:
    """Run one case on this node (the body of a Ray task): ``{"host", "node_id", "result"}``,
    plus ``"context"`` when asked. ``result`` is :func:`harness.execution.local.run_case`'s."""
    import ray

    from harness import environment, plugins
    from harness.execution.local import Learnt, run_case
    from harness.execution.workers import Limits

    _undo_ray_threads()
    job = json.loads(job_text)
    host = socket.gethostname()
    node_id = ray.get_runtime_context().get_node_id()
    reply: dict[str, Any] = {"host": host, "node_id": node_id}
    if want_context:
        context = environment.collect()
        context.pop("command", None)  # the Ray worker's own command line says nothing
        reply["context"] = context
    ok, reason = plugins.adapter_status(job["adapter"])
    if not ok:
        reply["result"] = {"error": f"adapter {job['adapter']!r} is not available on "
                                    f"{host}: {reason}"}
        return reply
    job["env"] = {name: os.environ.get(name) for name in ACCELERATOR_ENV}
    key = json.dumps([job["adapter"], job["adapter_options"], job["env"]], sort_keys=True)
    reply["result"] = run_case(job, Limits(**limits), _LEARNT.setdefault(key, Learnt()))
    return reply


# --- on the submitting machine ----------------------------------------------------------------


@dataclass(frozen=True)
class _Flight:
    """A case handed to a node, until its row comes back."""

    index: int
    case: Case
    spec: AdapterSpec
    node: Node


def run_cluster(config: RunConfig, plan: Plan, writer: RunWriter, limits: Limits,
                overrides: dict[str, Resources], hooks: Hooks | None = None,
                done: set[RowKey] | None = None) -> list[dict[str, Any]]:
    """Run every pending case of ``plan`` on the connected cluster; write and return the rows."""
    from harness.execution.hooks import Hooks
    from harness.execution.rows import error_row, pending, write
    from harness.execution.targets import case_payload

    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    hooks = hooks or Hooks()
    todo = deque((index, case, spec) for spec, cases in pending(plan, done or set(),
                                                                config.repetition)
                 for index, case in cases)
    nodes = live_nodes()
    seen = dict(nodes)  # every node met, to name the lost ones
    lost: list[Node] = []
    busy: Counter[str] = Counter()
    flying: dict[Any, _Flight] = {}
    reported = _Reported(writer.path)
    remote = ray.remote(node_task)
    rows: list[dict[str, Any]] = []

    def emit(row: dict[str, Any], index: int) -> None:
        write(writer, row)
        rows.append(row)
        hooks.arrived(row, index, len(plan))

    try:
        while todo or flying:
            # Live nodes afresh before each placement: a node that died since is not chosen.
            nodes = live_nodes()
            lost += [n for n in seen.values() if n.id not in nodes and n not in lost]
            seen.update(nodes)
            waiting: deque[tuple[int, Case, AdapterSpec]] = deque()
            while todo:
                index, case, spec = todo.popleft()
                need = requirement(spec, overrides)
                able = [n for n in nodes.values() if n.offers(need)]
                if not able:
                    gone = "; ".join(f"{n.name} was lost" for n in lost) or "none was lost"
                    row = error_row(case, spec, config.repetition, "lost: no live node of the "
                                    f"cluster offers {_text(need)} any more ({gone})")
                    emit({**row, "host": None, "lost": True}, index)  # it ran nowhere
                    continue
                free = [n for n in able if busy[n.id] < n.slots]
                if not free:
                    waiting.append((index, case, spec))
                    continue
                # The plainest free node: keep nodes with special hardware for cases needing it.
                node = min(free, key=lambda n: (n.hardware, busy[n.id], n.id))
                job = case_payload(config, plan, spec, case, limits.max_memory_bytes)
                ref = remote.options(
                    **node.request(need), max_retries=0, name=f"harness {case.id} on "
                    f"{spec.label}", scheduling_strategy=NodeAffinitySchedulingStrategy(
                        node.id, soft=False),
                ).remote(json.dumps(job), asdict(limits), reported.wants(node.id))
                busy[node.id] += 1
                flying[ref] = _Flight(index, case, spec, node)
                hooks.started(case, spec, index, len(plan))
            todo = waiting
            if not flying:
                continue
            # Blocks until a row comes back or a task fails: no polling while nodes measure.
            (ref,), _ = ray.wait(list(flying), num_returns=1)
            flight = flying.pop(ref)
            busy[flight.node.id] -= 1
            try:
                reply = ray.get(ref)
            except ray.exceptions.RayError as exc:
                reported.forget(flight.node.id)
                alive = flight.node.id in live_nodes()
                emit(_lost_row(config, flight, exc, alive), flight.index)
                continue
            reported.record(reply, flight.spec)
            result = reply["result"]
            if "row" in result:
                row = result["row"]
            else:
                row = error_row(flight.case, flight.spec, config.repetition, result["error"],
                                host=reply["host"])
            row["meta"] = {**(row.get("meta") or {}), "ray_node_id": reply["node_id"]}
            emit(row, flight.index)
    finally:
        for ref in flying:  # interrupted: stop what still runs for this run
            # Ray may be gone already (a lost head): then nothing is left to stop.
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
    return rows


def _lost_row(config: RunConfig, flight: _Flight, exc: BaseException,
              node_alive: bool) -> dict[str, Any]:
    """The error row of a case whose Ray task failed: it names the node and the Ray error."""
    from harness.execution.rows import error_row

    lines = str(exc).strip().splitlines() or [""]
    first = next((line for line in lines if line.strip() and not line.startswith("ray::")),
                 lines[0]).strip()
    what = (f"the Ray worker on {flight.node.name} died" if node_alive
            else f"node {flight.node.name} was lost")
    row = error_row(flight.case, flight.spec, config.repetition,
                     f"lost: {what} before the case returned: {type(exc).__name__}: {first}",
                     host=flight.node.host)
    return {**row, "lost": True, "meta": {"ray_node_id": flight.node.id}}


class _Reported:
    """Which hosts' contexts the run folder holds; adds each as its node first reports, and
    each adapter's info as its first case returns."""

    def __init__(self, run: Path):
        from harness.execution.facts import AdapterFacts
        from harness.results import read_context

        self.run = run
        self.hosts: dict[str, Any] = dict(read_context(run).get("hosts") or {})
        self.facts = AdapterFacts(run)
        self._asked: set[str] = set()

    def wants(self, node_id: str) -> bool:
        """Whether the next task on ``node_id`` should bring its host's context (once)."""
        if node_id in self.hosts or node_id in self._asked:
            return False
        self._asked.add(node_id)
        return True

    def forget(self, node_id: str) -> None:
        """The task that was to bring ``node_id``'s context failed: ask the next one."""
        if node_id not in self.hosts:
            self._asked.discard(node_id)

    def record(self, reply: dict[str, Any], spec: AdapterSpec) -> None:
        from harness.results import update_context

        node_id, changed = reply["node_id"], False
        if "context" in reply:
            self.hosts[node_id] = {**reply["context"], "ray_node_id": node_id,
                                   **self.hosts.get(node_id, {})}
            changed = True
        info = reply["result"].get("info")
        host = self.hosts.get(node_id)
        if info is not None and host is not None:
            known = host.setdefault("adapters", {})
            if spec.label not in known:
                known[spec.label] = info
                changed = True
        self.facts.record(spec.label, info)
        if changed:
            update_context(self.run, {"hosts": {node_id: host or self.hosts[node_id]}})


def _text(need: Resources) -> str:
    """Resources as ``--resources`` writes them (``GPU:1, fpga:1``), or ``CPUs only``."""
    return ", ".join(f"{k}:{v:g}" for k, v in need.items()) or "CPUs only"
