"""Persistent workers: messages both ways, then the result; raises, deaths and silence become
``{"error": ...}``; a worker of another interpreter runs this harness with its root first."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

from harness.execution.channel import Interpreter, Port, open_worker
from harness.execution.workers import Limits

HERE = "tests.execution.test_channel"


def echo_target(payload: dict[str, Any], port: Port) -> dict[str, Any]:
    """Answers each message with its value doubled, until told to stop."""
    port.send({"hello": payload["name"], "pid": os.getpid()})
    seen = 0
    while True:
        message = port.recv()
        if message.get("op") == "stop":
            return {"seen": seen}
        seen += 1
        port.send({"double": 2 * message["value"]})


def failing_target(payload: dict[str, Any], port: Port) -> dict[str, Any]:
    port.send({"about": "to fail"})
    raise RuntimeError("broken on purpose")


def dying_target(payload: dict[str, Any], port: Port) -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def silent_target(payload: dict[str, Any], port: Port) -> dict[str, Any]:
    port.recv()  # waits for a message the parent never sends
    return {}


def test_messages_both_ways_then_the_result() -> None:
    channel = open_worker(f"{HERE}:echo_target", {"name": "a"}, Limits(timeout_s=60))
    hello = channel.recv()
    assert hello["hello"] == "a" and hello["pid"] != os.getpid()
    assert [channel.request({"value": v})["double"] for v in (1, 5)] == [2, 10]
    assert not channel.done
    assert channel.request({"op": "stop"}) == {"seen": 2}
    assert channel.done
    assert "already ended" in channel.recv()["error"]


def test_a_raise_comes_back_as_an_error_after_the_messages_sent_before_it() -> None:
    channel = open_worker(f"{HERE}:failing_target", {}, Limits(timeout_s=60))
    assert channel.recv() == {"about": "to fail"}
    error = channel.recv()["error"]
    assert "RuntimeError: broken on purpose" in error and channel.done


def test_a_worker_that_dies_is_named_by_its_signal() -> None:
    channel = open_worker(f"{HERE}:dying_target", {}, Limits(timeout_s=60))
    assert "SIGKILL" in channel.recv()["error"]


def test_a_worker_that_stops_answering_is_killed_after_the_timeout() -> None:
    channel = open_worker(f"{HERE}:silent_target", {}, Limits(timeout_s=1.0))
    error = channel.recv()["error"]
    assert "timed out after 1 s" in error and channel.done


def test_another_interpreter_runs_this_harness_with_the_code_under_test_first(
        tmp_path: Path) -> None:
    # The root holds an old `harness` that must not be used, and the code under test.
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "__init__.py").write_text("raise ImportError('the old harness')\n")
    (tmp_path / "mylib.py").write_text("VALUE = 'from the root'\n")
    (tmp_path / "probe.py").write_text(textwrap.dedent("""\
        import os
        import harness
        import mylib

        def target(payload, port):
            print("code under test may print; it does not reach the channel")
            port.send({"ready": True})
            port.recv()
            return {"harness": harness.__file__, "mylib": mylib.VALUE, "cwd": os.getcwd()}
        """))
    channel = open_worker("probe:target", {}, Limits(timeout_s=120),
                          Interpreter(sys.executable, str(tmp_path)))
    assert channel.recv() == {"ready": True}
    result = channel.request({"op": "stop"})
    import harness

    assert result == {"harness": harness.__file__, "mylib": "from the root",
                      "cwd": str(tmp_path)}
    assert channel.done


def test_a_target_missing_in_another_interpreter_is_an_error(tmp_path: Path) -> None:
    channel = open_worker("nowhere:target", {}, Limits(timeout_s=120),
                          Interpreter(sys.executable, str(tmp_path)))
    assert "ModuleNotFoundError" in channel.recv()["error"]
