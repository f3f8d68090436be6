"""The committed GitHub Actions workflow: valid YAML whose harness commands parse."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from harness.cli import build_parser

WORKFLOW = Path(__file__).parent.parent / ".github" / "workflows" / "benchmark.yml"


def harness_commands() -> list[list[str]]:
    yaml = pytest.importorskip("yaml")
    spec = yaml.safe_load(WORKFLOW.read_text())
    env = spec["jobs"]["gate"]["env"]
    commands = []
    for step in spec["jobs"]["gate"]["steps"]:
        for line in str(step.get("run", "")).replace("\\\n", " ").splitlines():
            at = line.find(".venv/bin/harness")
            if at >= 0:
                line = line[at:]
                for key, value in env.items():
                    line = line.replace(f"${key}", value)
                words = shlex.split(line.split("|")[0].replace('"$RUN_DIR"', "results/x"))
                commands.append(words[1:])
    return commands


def test_the_workflow_runs_compares_and_lists_with_valid_arguments() -> None:
    commands = harness_commands()
    assert [c[0] for c in commands] == ["run", "baseline", "compare", "ab"]
    parser = build_parser()
    for argv in commands:
        parser.parse_args(argv)  # raises UsageError on an unknown flag or a bad value
    run = parser.parse_args(commands[0])
    assert run.repeat == 5 and run.adapter == ["cpu"]
    assert "--markdown" in commands[2] and "--markdown" in commands[3]
    ab = parser.parse_args(commands[3])
    assert ab.repeat == 5 and ab.baseline.startswith("base/")
