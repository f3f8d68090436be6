"""Workloads of known composition for the profiling tests: where their time must go."""

from __future__ import annotations

import time

import torch

from harness import Task, workload


class MatmulChain(torch.nn.Module):
    """x @ W1 @ W2 @ W3 @ W4: almost all of its time is matrix products."""

    def __init__(self, n: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        # Four plain attributes: torchax (xla-cpu) does not take a ParameterList's entries.
        self.w1, self.w2, self.w3, self.w4 = (
            torch.nn.Parameter(torch.randn(n, n, generator=generator) / n**0.5)
            for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w1 @ self.w2 @ self.w3 @ self.w4


class Elementwise(torch.nn.Module):
    """A long pointwise expression over a large vector: no matrix product at all."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 1.5 + 2.0
        y = y * x - 0.5
        y = y * y + x
        return y * 0.25 - x * 3.0


@workload(params={"n": [384]})
def matmul_chain(n: int) -> Task:
    """Four chained n×n matrix products."""
    x = torch.randn(n, n, generator=torch.Generator().manual_seed(1))
    return Task(fn=MatmulChain(n), inputs=(x,), items=1, flops=4 * 2.0 * n**3)


@workload(params={"n": [4_000_000]})
def elementwise(n: int) -> Task:
    """Eleven pointwise operations over n float32 values (enough that XLA's one fused loop outlasts
    the host's dispatch of the call: at 1M values the two were about even)."""
    x = torch.randn(n, generator=torch.Generator().manual_seed(1))
    return Task(fn=Elementwise(), inputs=(x,), items=n)


def count_primes_below(n: int) -> int:
    """Trial division in plain Python: the whole call is this function's own time."""
    return sum(all(k % d for d in range(2, int(k**0.5) + 1)) for k in range(2, n))


@workload(params={"n": [3000]})
def python_function(n: int) -> Task:
    """A plain Python function on the host."""
    return Task(fn=count_primes_below, inputs=(n,), items=1, host_only=True)


def spin(seconds: float) -> float:
    """Busy-wait: a call lasts ``seconds`` whatever else the process does around it."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


@workload(params={"ms": [2.0]})
def busy_wait(ms: float) -> Task:
    """A call that lasts exactly ``ms`` milliseconds of wall time."""
    return Task(fn=spin, inputs=(ms / 1e3,), items=1, host_only=True)
