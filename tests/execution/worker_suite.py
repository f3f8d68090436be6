"""Workloads for the worker-side tests (not a test module itself): a small tensor case, and a
host-only one that GPU adapters refuse."""

from __future__ import annotations

from typing import Any

from harness import Task, workload


def _negated(expected: Any) -> Any:
    def check(out: Any) -> None:
        import torch

        assert torch.equal(out, expected), "wrong negation"
    return check


@workload(params={"n": [8, 16]})
def neg(n: int) -> Task:
    """Negates a float tensor (its output follows its input: the probe sees it vary)."""
    import torch

    x = torch.arange(n, dtype=torch.float32)
    return Task(fn=torch.neg, inputs=(x,), items=n, check=_negated(-x))


@workload(params={"n": [8]})
def host(n: int) -> Task:
    """Python objects on the host: GPU adapters refuse it."""
    return Task(fn=sorted, inputs=(list(range(n)),), host_only=True)
