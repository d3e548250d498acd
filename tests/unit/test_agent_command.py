"""An assignment's argv (through the config core) and the check that its program is there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent.command import check_program, run_argv
from controller.core.errors import CommandError


def test_an_empty_command_is_the_default_one() -> None:
    argv = run_argv([], "train.py", {"lr": 0.1, "opt": {"name": "adam"}}, environ={},
                    args_json_file="/r/config.json")
    assert argv == ["/usr/bin/env", sys.executable, "train.py", "--lr=0.1",
                    '--opt={"name": "adam"}']


def test_values_are_single_literal_arguments() -> None:
    argv = run_argv(["${program}", "${args_json_file}", "${args}"], "./prog",
                    {"evil": '"; rm -rf ~'}, environ={}, args_json_file="/r/config.json")
    assert argv == ["./prog", "/r/config.json", '--evil="; rm -rf ~']


def test_a_command_needing_a_missing_program_is_an_error() -> None:
    with pytest.raises(CommandError, match="no program"):
        run_argv(["${interpreter}", "${program}"], "", {}, environ={}, args_json_file="/c")


@pytest.mark.parametrize("command", [[], ["${env}", "${interpreter}", "${program}", "${args}"],
                                     ["${program}", "${args}"], ["${env}", "${program}"]])
def test_a_missing_program_names_the_directory(command: list[str], tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=rf"'train\.py' not found in {tmp_path}"):
        check_program(command, "train.py", str(tmp_path))


def test_a_present_program_passes(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    check_program([], "train.py", str(tmp_path))
    check_program([], str(tmp_path / "train.py"), "/")


@pytest.mark.parametrize(("command", "program"), [
    (["${interpreter}", "-m", "${program}"], "pkg.train"),  # a module, not a file
    (["python3", "train.py", "${args}"], "train.py"),        # the command does not run it
    ([], ""),                                                # no program at all
    (["${program}"], "sh"),                                  # found on PATH
])
def test_other_uses_of_program_are_not_checked(command: list[str], program: str,
                                               tmp_path: Path) -> None:
    check_program(command, program, str(tmp_path))
