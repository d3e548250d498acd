"""A run's command line: macros expanded into an argv list, values formatted like W&B's agent."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.command import build_argv, format_args, format_value
from controller.core.config import SweepConfig, parse_config
from controller.core.errors import CommandError


def sweep(command: list[Any] | None = None, program: str | None = "train.py",
          parameters: dict[str, Any] | None = None) -> SweepConfig:
    raw: dict[str, Any] = {"method": "random",
                           "parameters": parameters or {"lr": {"value": 0.1}}}
    if program is not None:
        raw["program"] = program
    if command is not None:
        raw["command"] = command
    return parse_config(raw)


def argv(config: SweepConfig, params: Mapping[Any, Any], *, environ: Mapping[str, str] | None
         = None, args_json_file: str | None = None) -> list[str]:
    return build_argv(config, params, interpreter="/opt/py/bin/python3",
                      environ=environ or {}, args_json_file=args_json_file)


PARAMS: dict[str, Any] = {"lr": 0.001, "epochs": 3, "opt": "adam", "amsgrad": True,
                          "nesterov": False}


# ---------------------------------------------------------------- macros


def test_default_command_is_env_interpreter_program_args() -> None:
    assert argv(sweep(), {"lr": 0.1, "n": 2}) == [
        "/usr/bin/env", "/opt/py/bin/python3", "train.py", "--lr=0.1", "--n=2"]


def test_args_formats_each_parameter_as_a_flag_with_equals_in_name_order() -> None:
    assert argv(sweep(["${args}"]), PARAMS) == [
        "--amsgrad=True", "--epochs=3", "--lr=0.001", "--nesterov=False", "--opt=adam"]


def test_args_no_hyphens_is_hydra_style() -> None:
    assert argv(sweep(["${args_no_hyphens}"]), PARAMS) == [
        "amsgrad=True", "epochs=3", "lr=0.001", "nesterov=False", "opt=adam"]


def test_args_no_boolean_flags_turns_true_into_a_flag_and_drops_false() -> None:
    assert argv(sweep(["${args_no_boolean_flags}"]), PARAMS) == [
        "--amsgrad", "--epochs=3", "--lr=0.001", "--opt=adam"]


def test_args_no_equals_gives_name_and_value_as_two_items() -> None:
    assert argv(sweep(["${args_no_equals}"]), {"on": True, "lr": 0.5}) == [
        "--lr", "0.5", "--on", "True"]


def test_args_json_is_one_item_holding_the_parameters_as_json() -> None:
    items = argv(sweep(["prog", "${args_json}"]), PARAMS)
    assert len(items) == 2 and json.loads(items[1]) == PARAMS


def test_args_json_file_is_the_path_the_agent_gives() -> None:
    assert argv(sweep(["${args_json_file}"]), PARAMS, args_json_file="/tmp/r/args.json") == [
        "/tmp/r/args.json"]


def test_args_json_file_without_a_path_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="args_json_file"):
        argv(sweep(["${args_json_file}"]), PARAMS)


def test_env_interpreter_and_program_macros() -> None:
    assert argv(sweep(["${env}", "${interpreter}", "${program}"]), {}) == [
        "/usr/bin/env", "/opt/py/bin/python3", "train.py"]


def test_program_macro_without_a_program_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="no program"):
        argv(sweep(program=None), PARAMS)


def test_a_command_without_program_needs_no_program() -> None:
    assert argv(sweep(["python3", "-m", "pkg", "${args}"], program=None), {"a": 1}) == [
        "python3", "-m", "pkg", "--a=1"]


def test_envvar_is_substituted_inside_an_item() -> None:
    config = sweep(["--data=${envvar:DATA}/x", "${envvar:A}${envvar:B}"])
    assert argv(config, {}, environ={"DATA": "/d", "A": "1", "B": "2"}) == ["--data=/d/x", "12"]


def test_a_missing_environment_variable_is_a_command_error() -> None:
    with pytest.raises(CommandError, match="NOPE is not set"):
        argv(sweep(["${envvar:NOPE}"]), {})


def test_macros_inside_an_item_are_passed_literally() -> None:
    assert argv(sweep(["x${args}", "${program}.bak"]), PARAMS) == ["x${args}", "${program}.bak"]


def test_other_items_pass_through_literally_in_order() -> None:
    config = sweep(["${env}", "python3", "${program}", "-b", "your-training-config", "${args}"])
    assert argv(config, {"lr": 0.1}) == [
        "/usr/bin/env", "python3", "train.py", "-b",
        "your-training-config", "--lr=0.1"]


def test_an_unknown_macro_is_passed_literally_and_warned_about() -> None:
    config = sweep(["${program}", "${arg}"])
    assert argv(config, {}) == ["train.py", "${arg}"]
    assert any("did you mean ${args}" in w for w in config.warnings)


def test_a_hostile_value_is_one_literal_argument() -> None:
    items = argv(sweep(["${args}", "${args_no_equals}"]), {"name": "; rm -rf ~ $(id) `x`"})
    assert items == ["--name=; rm -rf ~ $(id) `x`", "--name", "; rm -rf ~ $(id) `x`"]


def test_the_command_does_not_depend_on_the_order_of_the_given_params() -> None:
    config = sweep(["${args}", "${args_json}"])
    assert argv(config, PARAMS) == argv(config, dict(reversed(PARAMS.items())))


# ---------------------------------------------------------------- value formatting


@pytest.mark.parametrize("value,text", [
    (0.001, "0.001"),
    (1e-05, "1e-05"),
    (100.0, "100.0"),
    (3, "3"),
    (-2, "-2"),
    (True, "True"),
    (False, "False"),
    ("adam", "adam"),
    ("", ""),
    (None, "null"),
    ([1, 2], "[1, 2]"),
    (["a", True, None], '["a", true, null]'),
    ({"lr": 0.1, "betas": [0.9, 0.99]}, '{"lr": 0.1, "betas": [0.9, 0.99]}'),
])
def test_values_are_formatted_like_w_and_b_with_json_for_none_lists_and_dicts(
        value: Any, text: str) -> None:
    assert format_value(value) == text


def test_nested_parameters_arrive_as_one_json_flag() -> None:
    config = sweep(["${args}"], parameters={
        "model": {"parameters": {"depth": {"value": 2}, "act": {"value": "relu"}}},
        "lr": {"value": 0.1}})
    items = argv(config, {("model", "depth"): 4, ("model", "act"): "gelu", ("lr",): 0.5})
    assert items == ["--lr=0.5", '--model={"act": "gelu", "depth": 4}']
    assert json.loads(items[1].split("=", 1)[1]) == {"depth": 4, "act": "gelu"}


def test_dotted_names_are_flags_as_written() -> None:
    config = sweep(["${args}"], parameters={"optimizer.config.learning_rate": {"value": 0.1}})
    assert argv(config, {("optimizer.config.learning_rate",): 0.01}) == [
        "--optimizer.config.learning_rate=0.01"]


def test_flat_and_nested_params_give_the_same_argv() -> None:
    config = sweep(["${args}"], parameters={"a": {"parameters": {"b": {"value": 1}}}})
    assert argv(config, {("a", "b"): 2}) == argv(config, {"a": {"b": 2}})


# ---------------------------------------------------------------- property: argparse round trip

_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,11}", fullmatch=True)
_values = st.one_of(
    st.integers(-10**18, 10**18),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    # argparse (3.11) turns the value of `--x=--` into [] whatever the caller does: its own bug.
    st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
            max_size=20).filter(lambda s: s != "--"),
    st.none(),
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _parse_back(kind: type, text: str) -> Any:
    if kind is bool:
        assert text in ("True", "False")
        return text == "True"
    if kind in (int, float, str):
        return kind(text)
    return json.loads(text)


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(_names, _values, min_size=1, max_size=6))
def test_args_round_trip_through_argparse(params: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    for i, name in enumerate(params):
        parser.add_argument(f"--{name}", dest=f"p{i}")
    parsed = vars(parser.parse_args(format_args(params)))
    for i, (name, value) in enumerate(params.items()):
        kind = type(value) if isinstance(value, (bool, int, float, str)) else object
        assert _parse_back(kind, parsed[f"p{i}"]) == value, name


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_names, st.one_of(st.booleans(), st.integers()), min_size=1, max_size=6))
def test_args_no_boolean_flags_round_trip_through_argparse_store_true(
        params: dict[str, Any]) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False)
    for i, (name, value) in enumerate(params.items()):
        if isinstance(value, bool):
            parser.add_argument(f"--{name}", dest=f"p{i}", action="store_true")
        else:
            parser.add_argument(f"--{name}", dest=f"p{i}", type=int)
    parsed = vars(parser.parse_args(format_args(params, boolean_flags=True)))
    assert [parsed[f"p{i}"] for i in range(len(params))] == list(params.values())


MIXED: dict[str, Any] = {"f": 1e-05, "b": False, "n": None, "l": ["a", 1], "d": {"k": 0.5}}


@pytest.mark.parametrize("macro,expected", [
    ("${args}", ["--b=False", '--d={"k": 0.5}', "--f=1e-05", '--l=["a", 1]', "--n=null"]),
    ("${args_no_hyphens}", ["b=False", 'd={"k": 0.5}', "f=1e-05", 'l=["a", 1]', "n=null"]),
    ("${args_no_equals}", ["--b", "False", "--d", '{"k": 0.5}', "--f", "1e-05", "--l",
                           '["a", 1]', "--n", "null"]),
    ("${args_no_boolean_flags}", ['--d={"k": 0.5}', "--f=1e-05", '--l=["a", 1]', "--n=null"]),
    ("${args_json}", ['{"b": false, "d": {"k": 0.5}, "f": 1e-05, "l": ["a", 1], "n": null}']),
])
def test_every_args_macro_formats_floats_booleans_none_lists_and_dicts(
        macro: str, expected: list[str]) -> None:
    assert argv(sweep([macro]), MIXED) == expected
