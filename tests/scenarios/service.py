"""A suite for the scenario tests: a service with a known, fixed time per call (any batch),
and one without a batch parameter. The sleep releases the GIL, as a framework's kernels do."""

from __future__ import annotations

import time

from harness import Task, workload
from harness.workload import Generation, Phase, at_least


def hold(seconds: float) -> None:
    """Wait ``seconds`` precisely: sleep most of it, then spin the last millisecond (a sleep
    overshoots, by up to a millisecond on a busy VM, which would make the service time vary)."""
    end = time.perf_counter() + seconds
    if seconds > 2e-3:
        time.sleep(seconds - 1e-3)
    while time.perf_counter() < end:
        pass


def echo_check(expected: int):  # type: ignore[no-untyped-def]
    def check(out: int) -> None:
        assert out == expected, f"got {out}, expected {expected}"
    return check


@workload(params={"ms": [2.0], "batch": [1]}, validate={"batch": at_least(1)})
def service(ms: float, batch: int) -> Task:
    """A fixed service time per call, whatever the batch; returns the batch size."""

    def serve(n: int) -> int:
        hold(ms / 1e3)
        return n

    return Task(fn=serve, inputs=(batch,), items=batch, check=echo_check(batch),
                items_unit="requests")


@workload(params={"ms": [1.0]})
def unbatched(ms: float) -> Task:
    """No batch parameter: the harness cannot batch it."""
    return Task(fn=hold, inputs=(ms / 1e3,), items=1)


@workload(params={"prefill_ms": [4.0], "token_ms": [1.0], "new_tokens": [4], "batch": [1]},
          validate={"batch": at_least(1)})
def speaker(prefill_ms: float, token_ms: float, new_tokens: int, batch: int) -> Task:
    """A generation service with known times: prefill, then a fixed time per further token,
    whatever the batch; its timed variant marks every token on the host clock."""

    def timed(n: int) -> tuple[list[int], list[int]]:
        marks = [time.perf_counter_ns()]
        hold(prefill_ms / 1e3)
        marks.append(time.perf_counter_ns())
        for _ in range(new_tokens - 1):
            hold(token_ms / 1e3)
            marks.append(time.perf_counter_ns())
        return [n] * new_tokens, marks

    def check(tokens: list[int]) -> None:
        assert tokens == [batch] * new_tokens, f"got {tokens}"

    return Task(fn=lambda n: timed(n)[0], inputs=(batch,), items=batch, check=check,
                generation=Generation(timed=timed, batch=batch, new_tokens=new_tokens,
                                      prefill=Phase(None, None), decode=Phase(None, None)))
