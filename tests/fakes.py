"""Fakes shared by the tests: a clock and a device whose time only moves when work runs."""

from __future__ import annotations

from collections.abc import Callable


class FakeClock:
    """Integer nanoseconds that advance only when the fake work says so."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * 1e9)


class FakeDevice:
    """An asynchronous device: each call queues work, and only synchronise waits for it."""

    def __init__(self, clock: FakeClock, duration: Callable[[int], float]):
        self.clock = clock
        self.duration = duration
        self.calls = 0
        self.queued = 0.0
        self.syncs = 0

    def step(self) -> int:
        self.queued += self.duration(self.calls)
        self.calls += 1
        return self.calls

    def sync(self) -> None:
        self.syncs += 1
        self.clock.advance(self.queued)
        self.queued = 0.0


def host_step(clock: FakeClock, duration: Callable[[int], float]) -> Callable[[], int]:
    """A synchronous call whose n-th invocation takes ``duration(n)`` seconds."""
    calls = [0]

    def step() -> int:
        clock.advance(duration(calls[0]))
        calls[0] += 1
        return calls[0]

    return step
