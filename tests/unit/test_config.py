"""Sweep config parsing and validation: one behaviour per test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controller.core.config import (
    HyperbandSettings,
    Metric,
    SweepConfig,
    load_config,
    parse_config,
    parse_yaml,
)
from controller.core.errors import ConfigError, Problem

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"method": "random", "parameters": {"x": {"values": [1, 2]}}}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def problems(raw: Any) -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return info.value.problems


def messages(raw: Any) -> dict[str, str]:
    return {p.path: p.message for p in problems(raw)}


def one_param(spec: Any, method: str = "random") -> SweepConfig:
    return parse_config({"method": method, "parameters": {"p": spec}})


# ---------------------------------------------------------------- the shipped examples


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_config_is_valid(path: Path) -> None:
    parsed = load_config(path)
    assert parsed.space.parameters


def test_the_six_seed_examples_are_shipped() -> None:
    names = {p.name for p in EXAMPLES.glob("seed-*.yaml")}
    assert names == {"seed-bayes-hyperband.yaml", "seed-command-macros.yaml",
                     "seed-grid-custom-command.yaml", "seed-launch-optuna.yaml",
                     "seed-nested.yaml", "seed-random.yaml"}


def test_launch_scheduler_config_without_method_defaults_to_random_with_a_warning() -> None:
    parsed = load_config(EXAMPLES / "seed-launch-optuna.yaml")
    assert parsed.method == "random"
    assert parsed.run_cap == 5
    assert any(w.startswith("method:") for w in parsed.warnings)
    assert any(w.startswith("scheduler:") for w in parsed.warnings)


def test_dotted_names_are_one_path_element() -> None:
    parsed = load_config(EXAMPLES / "seed-command-macros.yaml")
    assert ("optimizer.config.learning_rate",) in parsed.space.paths
    assert ("optimizer",) in parsed.space.paths


# ---------------------------------------------------------------- YAML and numbers


def test_bare_exponent_in_yaml_is_a_float() -> None:
    assert parse_yaml("a: 1e-5\nb: 1E5\nc: -2.5e+3\n") == {"a": 1e-5, "b": 1e5, "c": -2500.0}


def test_yaml_float_tag_is_a_float() -> None:
    assert parse_yaml("a: !!float 1e-5\n") == {"a": 1e-5}


def test_yaml_dates_stay_strings() -> None:
    assert parse_yaml("a: 2024-01-02\n") == {"a": "2024-01-02"}


def test_categorical_exponent_values_are_floats() -> None:
    parsed = load_config(EXAMPLES / "seed-bayes-hyperband.yaml")
    decay = parsed.space.get(("decay",))
    assert decay is not None and decay.values == (1e-5, 1e-6, 1e-7)


def test_numeric_strings_are_numbers_where_a_number_is_expected() -> None:
    parsed = one_param({"distribution": "log_uniform_values", "min": "1e-5", "max": "0.1"})
    p = parsed.space.parameters[0]
    assert (p.min, p.max) == (1e-5, 0.1)
    assert parsed.raw["parameters"]["p"]["min"] == 1e-5


def test_non_numeric_string_where_a_number_is_expected_is_an_error() -> None:
    assert messages(config(parameters={"p": {"min": "abc", "max": 1}})) == {
        "parameters.p.min": 'must be a number (got string "abc")'}


def test_a_boolean_is_not_a_number() -> None:
    assert "parameters.p.max" in messages(config(parameters={"p": {"min": 0, "max": True}}))


def test_bad_yaml_is_a_config_error_with_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("method: grid\nparameters: [\n")
    assert "invalid YAML at line" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read" in str(info.value)


def test_load_config_reads_a_path_given_as_a_string(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("method: random\nparameters:\n  x: {min: 1, max: 3}\n")
    assert load_config(str(path)).space.parameters[0].distribution == "int_uniform"


def test_load_config_reads_yaml_text() -> None:
    assert load_config("method: grid\nparameters: {x: {value: 1}}\n").method == "grid"


# ---------------------------------------------------------------- whole-config shape


@pytest.mark.parametrize("raw", [None, [], [1, 2], "text", 3, True])
def test_a_config_that_is_not_a_mapping_is_one_clear_problem(raw: Any) -> None:
    found = problems(raw)
    assert len(found) == 1 and found[0].path == ""


def test_unknown_top_level_key_gets_a_close_match_hint() -> None:
    found = messages({"method": "grid", "paramters": {}, "parameters": {"x": {"value": 1}}})
    assert found["paramters"] == 'unknown key; did you mean "parameters"?'


def test_w_and_b_keys_opensweep_does_not_use_are_warnings() -> None:
    parsed = parse_config(config(program="t.py", project="p", entity="e",
                                 controller={"type": "local"}))
    assert sorted(w.split(":")[0] for w in parsed.warnings) == ["controller", "entity", "project"]


def test_all_problems_are_reported_at_once() -> None:
    found = messages({
        "method": "grdi",
        "run_cap": 0,
        "parameters": {
            "lr": {"min": 0.1, "max": 0.01},
            "opt": {"values": "adam"},
            "d": {"distribution": "normal", "sigma": -1},
        },
    })
    assert set(found) == {"method", "run_cap", "parameters.lr.max", "parameters.opt.values",
                          "parameters.d.sigma"}


def test_method_is_required() -> None:
    assert "method" in messages({"parameters": {"x": {"value": 1}}})


def test_unknown_method_gets_a_hint() -> None:
    assert 'did you mean "bayes"' in messages(config(method="bayse"))["method"]


def test_parameters_are_required() -> None:
    assert "parameters" in messages({"method": "random"})


def test_empty_parameters_is_an_error() -> None:
    assert "parameters" in messages(config(parameters={}))


@pytest.mark.parametrize("key", ["program", "name", "description"])
def test_text_fields_must_be_strings(key: str) -> None:
    assert key in messages(config(**{key: 3}))


# ---------------------------------------------------------------- metric


def test_metric_goal_defaults_to_minimize() -> None:
    assert parse_config(config(metric={"name": "loss"})).metric == Metric("loss", "minimize")


def test_metric_target_is_read() -> None:
    parsed = parse_config(config(metric={"name": "acc", "goal": "maximize", "target": "0.9"}))
    assert parsed.metric == Metric("acc", "maximize", 0.9)


def test_metric_needs_a_name() -> None:
    assert "metric.name" in messages(config(metric={"goal": "minimize"}))


def test_metric_goal_must_be_minimize_or_maximize_with_a_hint() -> None:
    found = messages(config(metric={"name": "l", "goal": "minimise"}))
    assert 'did you mean "minimize"' in found["metric.goal"]


def test_bayes_without_a_metric_is_an_error() -> None:
    assert messages(config(method="bayes"))["metric"].startswith("required when method is bayes")


def test_early_terminate_without_a_metric_is_an_error() -> None:
    raw = config(early_terminate={"type": "hyperband", "min_iter": 3})
    assert messages(raw)["metric"].startswith("required when early_terminate")


# ---------------------------------------------------------------- early_terminate


def hyperband(**settings: Any) -> HyperbandSettings | None:
    raw = config(metric={"name": "loss"}, early_terminate={"type": "hyperband", **settings})
    return parse_config(raw).early_terminate


def hyperband_problems(**settings: Any) -> dict[str, str]:
    return messages(config(metric={"name": "loss"},
                           early_terminate={"type": "hyperband", **settings}))


def test_hyperband_brackets_from_min_iter() -> None:
    settings = hyperband(min_iter=3, eta=3)
    assert settings is not None
    assert settings.brackets(up_to=100) == [3, 9, 27, 81]


def test_hyperband_brackets_from_max_iter_and_s() -> None:
    settings = hyperband(max_iter=27, s=2, eta=3)
    assert settings is not None and settings.brackets() == [3, 9]


def test_hyperband_defaults() -> None:
    assert hyperband(min_iter=1) == HyperbandSettings(eta=3, min_iter=1, strict=True)


def test_hyperband_type_must_be_hyperband() -> None:
    found = messages(config(metric={"name": "l"}, early_terminate={"type": "hyperbnd",
                                                                   "min_iter": 1}))
    assert 'did you mean "hyperband"' in found["early_terminate.type"]


def test_hyperband_needs_min_iter_or_max_iter_and_s() -> None:
    assert "early_terminate" in hyperband_problems()
    assert "early_terminate.s" in hyperband_problems(max_iter=27)


@pytest.mark.parametrize("key,value", [("eta", 1), ("eta", 2.5), ("min_iter", 0),
                                       ("min_iter", "x"), ("max_iter", -3)])
def test_hyperband_numbers_must_be_positive_integers(key: str, value: Any) -> None:
    settings: dict[str, Any] = {"min_iter": 1} if key != "min_iter" else {}
    if key == "max_iter":
        settings = {"s": 2}
    assert f"early_terminate.{key}" in hyperband_problems(**settings, **{key: value})


def test_hyperband_strict_must_be_a_boolean() -> None:
    assert "early_terminate.strict" in hyperband_problems(min_iter=1, strict="yes")


def test_hyperband_with_no_bracket_is_an_error() -> None:
    assert "early_terminate.max_iter" in hyperband_problems(max_iter=2, s=1, eta=3)


def test_hyperband_unknown_key_gets_a_hint() -> None:
    assert 'did you mean "min_iter"' in hyperband_problems(min_iter=1, miniter=2)[
        "early_terminate.miniter"]


# ---------------------------------------------------------------- run_cap and command


def test_run_cap_must_be_a_positive_integer() -> None:
    assert "run_cap" in messages(config(run_cap=0))
    assert "run_cap" in messages(config(run_cap=2.5))
    assert parse_config(config(run_cap=3)).run_cap == 3


def test_command_must_be_a_list_of_strings() -> None:
    assert "command" in messages(config(command="python train.py"))
    assert "command[1]" in messages(config(command=["python", True]))
    assert "command[2]" in messages(config(command=["python", "t.py", {"a": 1}]))


def test_numbers_in_command_are_passed_as_text_like_w_and_b() -> None:
    parsed = parse_config(config(program="t.py", command=["python", "-b", 8, "--lr", 0.5]))
    assert parsed.command == ("python", "-b", "8", "--lr", "0.5")
    assert any(w.startswith("command[4]: the number 0.5") for w in parsed.warnings)


def test_unknown_macro_is_a_warning_with_a_hint() -> None:
    parsed = parse_config(config(program="t.py", command=["${env}", "${arg}"]))
    assert any("did you mean ${args}" in w for w in parsed.warnings)


def test_missing_program_with_the_default_command_is_a_warning() -> None:
    assert any(w.startswith("program:") for w in parse_config(config()).warnings)


# ---------------------------------------------------------------- parameters: inference


@pytest.mark.parametrize("spec,expected", [
    ({"value": 3}, "constant"),
    ({"values": [1, 2]}, "categorical"),
    ({"min": 1, "max": 5}, "int_uniform"),
    ({"min": 1, "max": 5.0}, "uniform"),
    ({"min": 0.0, "max": 1}, "uniform"),
    ({"mu": 1, "sigma": 2}, "normal"),
    ({"sigma": 2}, "normal"),
    ({"a": 2, "b": 3}, "beta"),
])
def test_distribution_is_inferred_when_absent(spec: dict[str, Any], expected: str) -> None:
    assert one_param(spec).space.parameters[0].distribution == expected


def test_two_ways_of_giving_values_is_an_error() -> None:
    assert "parameters.p" in messages(config(parameters={"p": {"value": 1, "values": [1]}}))


def test_no_way_of_giving_values_is_an_error() -> None:
    assert "parameters.p" in messages(config(parameters={"p": {}}))


def test_q_without_a_distribution_says_which_one_to_add() -> None:
    found = messages(config(parameters={"p": {"min": 0, "max": 1, "q": 0.1}}))
    assert "q_uniform" in found["parameters.p.q"]


def test_parameter_that_is_not_a_mapping_suggests_value() -> None:
    found = messages(config(parameters={"lr": 0.1}))
    assert "{value: 0.1}" in found["parameters.lr"]


def test_unknown_parameter_key_gets_a_hint() -> None:
    found = messages(config(parameters={"p": {"vlaues": [1, 2]}}))
    assert found["parameters.p.vlaues"] == 'unknown key; did you mean "values"?'


def test_unknown_distribution_gets_a_hint() -> None:
    found = messages(config(parameters={"p": {"distribution": "log_unifrom_values",
                                              "min": 1, "max": 2}}))
    assert 'did you mean "log_uniform_values"' in found["parameters.p.distribution"]


def test_argument_of_another_distribution_is_an_error() -> None:
    found = messages(config(parameters={"p": {"distribution": "uniform", "min": 0, "max": 1,
                                              "q": 0.5}}))
    assert found["parameters.p.q"] == "not an argument of uniform (it takes min, max)"


def test_categorical_w_probabilities_is_accepted_as_categorical() -> None:
    parsed = one_param({"distribution": "categorical_w_probabilities", "values": [1, 2],
                        "probabilities": [0.5, 0.5]})
    assert parsed.space.parameters[0].distribution == "categorical"


# ---------------------------------------------------------------- parameters: arguments


def test_min_must_be_less_than_max_with_the_documented_message() -> None:
    found = messages(config(parameters={"lr": {"min": 0.1, "max": 0.01}}))
    assert found == {"parameters.lr.max": "must be greater than min (got min=0.1, max=0.01)"}


@pytest.mark.parametrize("dist", ["log_uniform_values", "q_log_uniform_values",
                                  "inv_log_uniform_values"])
def test_log_value_bounds_must_be_positive(dist: str) -> None:
    found = messages(config(parameters={"p": {"distribution": dist, "min": 0, "max": 1}}))
    assert "parameters.p.min" in found


def test_natural_log_bounds_may_be_negative() -> None:
    p = one_param({"distribution": "log_uniform", "min": -9.2, "max": -2.3}).space.parameters[0]
    assert p.bounds is not None and p.bounds[0] == pytest.approx(1.0106e-4, rel=1e-3)


def test_log_uniform_with_value_like_bounds_warns_about_log_uniform_values() -> None:
    parsed = one_param({"distribution": "log_uniform", "min": 0.0001, "max": 0.1})
    assert any("log_uniform_values" in w for w in parsed.warnings)


def test_log_uniform_exponent_that_overflows_is_an_error() -> None:
    found = messages(config(parameters={"p": {"distribution": "log_uniform", "min": 1,
                                              "max": 1000}}))
    assert "parameters.p.max" in found


@pytest.mark.parametrize("q", [0, -0.5])
def test_q_must_be_positive(q: float) -> None:
    found = messages(config(parameters={"p": {"distribution": "q_uniform", "min": 0, "max": 1,
                                              "q": q}}))
    assert "parameters.p.q" in found


def test_q_defaults_to_one() -> None:
    p = one_param({"distribution": "q_uniform", "min": 0, "max": 4}).space.parameters[0]
    assert p.q == 1 and p.is_integer


def test_q_lattice_with_no_point_in_range_is_an_error() -> None:
    found = messages(config(parameters={"p": {"distribution": "q_uniform", "min": 0.1,
                                              "max": 0.4, "q": 1}}))
    assert "parameters.p.q" in found


def test_bounds_off_the_q_lattice_are_a_warning() -> None:
    parsed = one_param({"distribution": "q_uniform", "min": 1, "max": 10, "q": 2})
    assert any("multiples of q from 2 to 10" in w for w in parsed.warnings)


@pytest.mark.parametrize("dist", ["normal", "q_normal", "log_normal", "q_log_normal"])
def test_sigma_must_be_positive(dist: str) -> None:
    found = messages(config(parameters={"p": {"distribution": dist, "sigma": 0}}))
    assert "parameters.p.sigma" in found


def test_normal_defaults() -> None:
    p = one_param({"distribution": "normal"}).space.parameters[0]
    assert (p.mu, p.sigma) == (0.0, 1.0)


@pytest.mark.parametrize("key", ["a", "b"])
def test_beta_arguments_must_be_positive(key: str) -> None:
    found = messages(config(parameters={"p": {"distribution": "beta", key: 0}}))
    assert f"parameters.p.{key}" in found


def test_int_uniform_bounds_must_be_integers() -> None:
    found = messages(config(parameters={"p": {"distribution": "int_uniform", "min": 0.5,
                                              "max": 3}}))
    assert found["parameters.p.min"] == "must be an integer for int_uniform (got 0.5)"


def test_int_uniform_accepts_whole_floats() -> None:
    p = one_param({"distribution": "int_uniform", "min": 1.0, "max": 3.0}).space.parameters[0]
    assert (p.min, p.max) == (1, 3) and isinstance(p.min, int)


def test_values_must_be_a_non_empty_list() -> None:
    assert "parameters.p.values" in messages(config(parameters={"p": {"values": []}}))
    assert "parameters.p.values" in messages(config(parameters={"p": {"values": 3}}))


def test_probabilities_must_match_values_in_length() -> None:
    found = messages(config(parameters={"p": {"values": [1, 2], "probabilities": [1.0]}}))
    assert "one entry per value" in found["parameters.p.probabilities"]


def test_probabilities_must_sum_to_one() -> None:
    found = messages(config(parameters={"p": {"values": [1, 2], "probabilities": [0.5, 0.6]}}))
    assert found["parameters.p.probabilities"] == "must sum to 1 (got 1.1)"


def test_probabilities_tolerate_rounding() -> None:
    one_param({"values": [1, 2, 3], "probabilities": [0.3333333, 0.3333333, 0.3333334]})


def test_negative_probability_is_an_error() -> None:
    found = messages(config(parameters={"p": {"values": [1, 2], "probabilities": [1.5, -0.5]}}))
    assert "parameters.p.probabilities[1]" in found


def test_duplicate_values_are_a_warning() -> None:
    assert any("more than once" in w for w in one_param({"values": [1, 1.0, 2]}).warnings)


@pytest.mark.parametrize("name", ["", "-x", "a=b", "a b"])
def test_parameter_names_that_break_a_command_line_are_errors(name: str) -> None:
    assert f"parameters.{name}" in messages(config(parameters={name: {"value": 1}}))


# ---------------------------------------------------------------- nesting


def test_nested_parameters_to_any_depth() -> None:
    parsed = load_config(EXAMPLES / "seed-nested.yaml")
    assert parsed.space.paths == (
        ("nested_param", "double_nested_param", "x"),
        ("nested_param", "double_nested_param", "y"),
        ("nested_param", "learning_rate"),
        ("top_level_param",),
    )


def test_problem_paths_name_the_nested_parameter() -> None:
    raw = config(parameters={"outer": {"parameters": {"inner": {"min": 2, "max": 1}}}})
    assert "parameters.outer.parameters.inner.max" in messages(raw)


def test_nested_block_takes_only_parameters() -> None:
    raw = config(parameters={"outer": {"value": 1, "parameters": {"i": {"value": 2}}}})
    assert "parameters.outer" in messages(raw)


# ---------------------------------------------------------------- grid semantics


def test_grid_over_a_continuous_distribution_names_the_parameter() -> None:
    found = messages({"method": "grid", "parameters": {"lr": {"min": 0.0, "max": 1.0},
                                                       "b": {"values": [1, 2]}}})
    assert list(found) == ["parameters.lr"]
    assert "uniform is continuous" in found["parameters.lr"]


@pytest.mark.parametrize("spec", [
    {"distribution": "q_normal", "q": 1},
    {"distribution": "q_log_normal", "q": 1},
    {"distribution": "q_beta", "q": 0.1},
    {"distribution": "log_uniform_values", "min": 1, "max": 10},
])
def test_grid_over_an_unenumerable_distribution_is_an_error(spec: dict[str, Any]) -> None:
    assert "parameters.p" in messages({"method": "grid", "parameters": {"p": spec}})


def test_grid_ignores_probabilities_with_a_warning() -> None:
    parsed = one_param({"values": [1, 2], "probabilities": [0.2, 0.8]}, method="grid")
    assert any("probabilities" in w for w in parsed.warnings)


def test_expected_run_count_is_the_grid_size() -> None:
    parsed = parse_config({"method": "grid", "parameters": {
        "a": {"values": [1, 2, 3]}, "b": {"min": 1, "max": 4}, "c": {"value": "x"},
        "d": {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25}}})
    assert parsed.expected_run_count == 3 * 4 * 1 * 5


def test_expected_run_count_is_capped_by_run_cap() -> None:
    parsed = parse_config({"method": "grid", "run_cap": 2, "parameters": {"a": {"values":
                                                                              [1, 2, 3]}}})
    assert parsed.expected_run_count == 2 and parsed.grid_size == 3


def test_expected_run_count_is_unbounded_for_random_without_run_cap() -> None:
    assert parse_config(config()).expected_run_count is None
    assert parse_config(config(run_cap=7)).expected_run_count == 7


# ---------------------------------------------------------------- raw


def test_raw_is_json_and_parses_back_to_the_same_config() -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        parsed = load_config(path)
        again = parse_config(json.loads(json.dumps(parsed.raw)))
        assert again == parsed, path.name


def test_raw_does_not_alias_the_input() -> None:
    given = config()
    parsed = parse_config(given)
    given["parameters"]["x"]["values"].append(3)
    assert parsed.raw["parameters"]["x"]["values"] == [1, 2]


def test_values_that_json_cannot_hold_are_errors() -> None:
    found = messages(config(parameters={"p": {"values": [b"bytes", {1, 2}]}}))
    assert {"parameters.p.values[0]", "parameters.p.values[1]"} <= set(found)


def test_self_referencing_config_is_a_config_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert problems(config(parameters={"p": {"values": loop}}))


# ---------------------------------------------------------------- lenient mode


LENIENT_RAW: dict[str, Any] = {
    "method": "random", "bogus": 1,
    "metric": {"name": "loss", "golly": 2},
    "early_terminate": {"type": "hyperband", "min_iter": 3, "etaa": 2},
    "parameters": {"x": {"values": [1, 2], "vlaues": [3]},
                   "n": {"parameters": {"y": {"value": 1}}, "note": "hi"}},
}


def test_unknown_keys_are_errors_by_default() -> None:
    assert set(messages(LENIENT_RAW)) == {"bogus", "metric.golly", "early_terminate.etaa",
                                          "parameters.x.vlaues", "parameters.n"}


def test_lenient_mode_turns_unknown_keys_into_warnings_like_w_and_b() -> None:
    parsed = parse_config(LENIENT_RAW, strict=False)
    ignored = sorted(w.split(":")[0] for w in parsed.warnings if "unknown key, ignored" in w)
    assert ignored == ["bogus", "early_terminate.etaa", "metric.golly", "parameters.n.note",
                       "parameters.x.vlaues"]
    assert any('did you mean "values"' in w for w in parsed.warnings)
    again = parse_config(parsed.raw)  # the stored raw is strictly valid
    assert (again.space, again.metric, again.early_terminate) == (
        parsed.space, parsed.metric, parsed.early_terminate)


def test_lenient_mode_still_rejects_what_cannot_run() -> None:
    raw = {"method": "random", "parameters": {"lr": {"min": 1.0, "max": 0.1, "extra": 1}}}
    assert list(messages_lenient(raw)) == ["parameters.lr.max"]


def messages_lenient(raw: Any) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, strict=False)
    return {p.path: p.message for p in info.value.problems}


def test_load_config_passes_strict_through(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("method: random\nextra: 1\nparameters: {x: {value: 1}}\n")
    with pytest.raises(ConfigError):
        load_config(path)
    assert load_config(path, strict=False).method == "random"


def test_a_key_written_twice_in_yaml_is_an_error_with_its_line() -> None:
    text = "method: grid\nparameters:\n  lr: {value: 1}\n  lr: {value: 2}\nmethod: random\n"
    with pytest.raises(ConfigError) as info:
        load_config(text)
    assert [p.message for p in info.value.problems] == [
        'invalid YAML at line 4, column 3: duplicate key "lr" (a key may appear once in a '
        "mapping)",
        'invalid YAML at line 5, column 1: duplicate key "method" (a key may appear once in a '
        "mapping)"]


def test_yaml_merge_keys_may_be_overridden() -> None:
    assert parse_yaml("base: &b {min: 1, max: 2}\nx:\n  <<: *b\n  max: 3\n") == {
        "base": {"min": 1, "max": 2}, "x": {"min": 1, "max": 3}}


def test_nesting_goes_eight_levels_deep() -> None:
    block: dict[str, Any] = {"leaf": {"values": [1, 2]}}
    for level in range(8):
        block = {f"l{level}": {"parameters": block}}
    parsed = parse_config({"method": "grid", "parameters": block})
    assert parsed.space.paths == ((*(f"l{i}" for i in reversed(range(8))), "leaf"),)
    assert parsed.expected_run_count == 2


def test_random_search_over_constants_only_is_a_warning() -> None:
    parsed = parse_config({"method": "random", "parameters": {"a": {"value": 1}}})
    assert any("every parameter is a constant" in w for w in parsed.warnings)


def test_q_larger_than_the_range_leaving_one_value_is_a_warning() -> None:
    parsed = one_param({"distribution": "q_uniform", "min": 0, "max": 1, "q": 2})
    assert any(w.startswith("parameters.p.q: q=2 leaves one value") for w in parsed.warnings)


def test_program_must_not_be_empty() -> None:
    assert messages(config(program=" "))["program"].startswith("must name the script")


def test_a_grid_too_large_to_count_exactly_is_an_error() -> None:
    raw = {"method": "grid", "parameters": {"a": {"min": 0, "max": 2**30},
                                            "b": {"min": 0, "max": 2**30}}}
    assert "more than the 2**53" in messages(raw)["parameters"]


def test_yaml_aliases_that_expand_to_billions_of_values_are_refused_quickly() -> None:
    levels = ['&a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"&{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    text = "method: random\nparameters:\n  p:\n    values: [" + ", ".join(levels) + "]\n"
    with pytest.raises(ConfigError) as info:
        load_config(text)
    assert "more than 200,000 values" in str(info.value)


# ---------------------------------------------------------------- W&B configs as users write them

WILD_CONFIGS = {
    "poetry-module-command": """
command: [poetry, run, python, -m, "${program}", "${args}"]
program: scripts.train
method: bayes
metric: {goal: maximize, name: val/r2_score}
parameters:
  beta1: {distribution: inv_log_uniform_values, min: 0.9, max: 1}
  width: {distribution: int_uniform, min: 8, max: 126}
  lr: {distribution: log_uniform_values, min: 1e-6, max: 1e-3}
  model_name: {value: model.onnx}
""",
    "local-controller-hyperband": """
description: local controller and hyperband
program: train.py
project: examples
method: grid
controller: {type: local}
metric: {name: loss_metric, goal: minimize}
early_terminate: {type: hyperband, max_iter: 10, s: 2, eta: 3}
parameters:
  epochs: {value: 20}
  base: {values: [10, 15, 20]}
  direction: {values: [-1, 0.1, 1]}
""",
    "nested-with-project": """
program: train.py
project: nested
entity: me
method: grid
metric: {name: loss, goal: minimize}
parameters:
  batch_size: {values: [32, 64]}
  optimizer:
    parameters:
      lr: {values: [0.001, 0.0001]}
      nadam:
        parameters:
          beta: {values: [0.9, 0.95]}
""",
    "hydra-overrides": """
program: main.py
method: random
run_cap: 20
command: ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}",
          "data.root=${envvar:DATA_ROOT}"]
parameters:
  model.layers: {values: [2, 4, 8]}
  trainer.precision: {values: [16, 32]}
  use_amp: {values: [true, false]}
  optim.lr: {distribution: q_log_uniform_values, min: 0.0001, max: 0.1, q: 0.0001}
""",
}


@pytest.mark.parametrize("name", sorted(WILD_CONFIGS))
def test_w_and_b_configs_as_users_write_them_are_valid(name: str) -> None:
    parsed = load_config(WILD_CONFIGS[name])
    assert parsed.space.parameters and not any("unknown" in w for w in parsed.warnings)


def test_wild_grid_sizes() -> None:
    assert load_config(WILD_CONFIGS["local-controller-hyperband"]).expected_run_count == 3 * 3
    assert load_config(WILD_CONFIGS["nested-with-project"]).expected_run_count == 2 * 2 * 2


def test_q_log_uniform_with_value_sized_bounds_warns_about_values() -> None:
    parsed = one_param({"distribution": "q_log_uniform", "min": 32, "max": 256, "q": 8})
    assert any("did you mean q_log_uniform_values" in w for w in parsed.warnings)


def test_ordinary_natural_log_bounds_give_no_warning() -> None:
    parsed = one_param({"distribution": "log_uniform", "min": -9.2, "max": 2.3})
    assert not [w for w in parsed.warnings if w.startswith("parameters.")]
