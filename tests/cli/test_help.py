"""Every command's --help: text for every option, and the defaults a user needs to know."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from harness.cli import COMMANDS, build_parser, main
from harness.config import TimingOptions
from harness.execution.workers import Limits


def subparsers(parser: argparse.ArgumentParser, path: str = "harness"
               ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser under ``parser`` (``harness baseline save`` included), with its command."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from subparsers(sub, f"{path} {name}")


def visible(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
            and a.help != argparse.SUPPRESS]


def test_the_walk_sees_every_command() -> None:
    paths = {path for path, _ in subparsers(build_parser())}
    assert {f"harness {name}" for name in COMMANDS} <= paths
    assert {"harness baseline save", "harness baseline list"} <= paths


def test_every_option_of_every_command_has_help_text() -> None:
    bare = [f"{path} {'/'.join(action.option_strings) or action.dest}"
            for path, parser in subparsers(build_parser()) for action in visible(parser)
            if not (action.help or "").strip()]
    assert not bare, f"options without help text: {bare}"


def test_an_option_with_a_default_says_what_it_is() -> None:
    # A stored default that is not "nothing" must be visible in the option's help.
    silent = [f"{path} {'/'.join(action.option_strings)}"
              for path, parser in subparsers(build_parser()) for action in visible(parser)
              if action.option_strings and action.default not in (None, False, [], ())
              and not isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
              and "default" not in (action.help or "")]
    assert not silent, f"defaults not shown: {silent}"


@pytest.mark.parametrize("command", [*COMMANDS, "baseline save"])
def test_help_prints_and_exits_0(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), "--help"])
    assert exit_.value.code == 0
    assert "--help" in capsys.readouterr().out


def help_of(*command: str) -> str:
    parser = dict(subparsers(build_parser()))[" ".join(("harness", *command))]
    return " ".join(parser.format_help().split())


def test_run_help_states_the_sampling_defaults() -> None:
    text = help_of("run")
    d = TimingOptions()
    assert f"minimum sampling time per case (default {d.min_time_s:g} s)" in text
    assert f"(default {d.max_time_s:g} s, or --min-time where that is longer)" in text
    assert f"minimum samples per case (default {d.min_samples})" in text
    assert f"warm-up until steady (at most {d.max_warmup_s:g} s)" in text
    assert "2, 2% and 0.02 are alike" in text and "(default: off" in text
    assert "(default 1)" in text  # --repeat
    assert f"kill a case after S seconds (default {Limits.timeout_s:g})" in text
    # A flag is never broken at its hyphen by the wrapping.
    assert "--max- time" not in text and "--min- time" not in text


def test_ab_help_states_its_defaults() -> None:
    text = help_of("ab")
    assert f"minimum sampling time per side (default {TimingOptions().min_time_s:g} s" in text
    assert "(default 5)" in text and f"(default {Limits.timeout_s:g})" in text
    for flag in ("-w NAME", "-a NAME", "-p K=V1,V2", "--out DIR", "--alpha A"):
        assert flag in text
