"""`sweep validate CONFIG.yaml [--json]`: offline, exit 0 + summary or exit 2 + every error."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from controller.validate import EXIT_INVALID, EXIT_VALID, run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

INVALID = """\
method: grdi
run_cap: 0
parameters:
  lr: {min: 0.1, max: 0.01}
  opt: {vlaues: [adam]}
  p: {values: [1, 2], probabilities: [0.5, 0.6]}
"""


def validate(tmp_path: Path, text: str, *, as_json: bool = False) -> tuple[int, str, str]:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    code = run(str(path), as_json=as_json, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_a_valid_config_exits_0_with_method_parameters_and_run_count(tmp_path: Path) -> None:
    code, out, err = validate(tmp_path, (EXAMPLES / "seed-random.yaml").read_text())
    assert code == EXIT_VALID == 0 and err == ""
    assert "method: random" in out
    assert "batch_size" in out and "q_log_uniform_values" in out
    assert "learning_rate" in out and "uniform" in out
    assert "expected run count: unbounded" in out


def test_a_grid_summary_shows_the_grid_size_as_expected_run_count(tmp_path: Path) -> None:
    code, out, _ = validate(tmp_path, "method: grid\nprogram: t.py\nparameters:\n"
                                      "  a: {values: [1, 2, 3]}\n  b: {min: 1, max: 4}\n")
    assert code == 0 and "expected run count: 12" in out


def test_an_invalid_config_exits_2_with_every_problem_one_per_line(tmp_path: Path) -> None:
    code, out, err = validate(tmp_path, INVALID)
    assert code == EXIT_INVALID == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].endswith("invalid config (5 problems)")
    assert set(lines[1:]) == {
        'method: unknown method "grdi"; did you mean "grid"? (one of grid, random, bayes)',
        "run_cap: must be a positive integer (got 0)",
        "parameters.lr.max: must be greater than min (got min=0.1, max=0.01)",
        'parameters.opt.vlaues: unknown key; did you mean "values"?',
        "parameters.p.probabilities: must sum to 1 (got 1.1)",
    }


def test_json_for_a_valid_config_has_exactly_the_documented_shape(tmp_path: Path) -> None:
    code, out, _ = validate(tmp_path, "method: grid\nprogram: t.py\nparameters:\n"
                                      "  a: {values: [1, 2]}\n", as_json=True)
    assert code == 0
    assert json.loads(out) == {"valid": True, "errors": [], "method": "grid",
                               "expected_run_count": 2}


def test_json_says_null_for_an_unbounded_run_count(tmp_path: Path) -> None:
    _, out, _ = validate(tmp_path, (EXAMPLES / "seed-nested.yaml").read_text(), as_json=True)
    assert json.loads(out)["expected_run_count"] is None


def test_json_for_an_invalid_config_lists_every_error_with_its_path(tmp_path: Path) -> None:
    code, out, err = validate(tmp_path, INVALID.replace("grdi", "bayes"), as_json=True)
    result = json.loads(out)
    assert code == 2 and err == ""
    assert set(result) == {"valid", "errors", "method", "expected_run_count"}
    assert result["valid"] is False and result["method"] == "bayes"
    assert result["expected_run_count"] is None
    assert {e["path"] for e in result["errors"]} == {
        "metric", "run_cap", "parameters.lr.max", "parameters.opt.vlaues",
        "parameters.p.probabilities"}
    assert all(set(e) == {"path", "message"} for e in result["errors"])


def test_json_warnings_go_to_stderr(tmp_path: Path) -> None:
    code, out, err = validate(tmp_path, "method: random\nproject: p\nparameters:\n"
                                        "  a: {values: [1]}\n", as_json=True)
    assert code == 0 and json.loads(out)["valid"] is True
    assert "warning: project: accepted for W&B compatibility and ignored" in err


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    code, _, err = validate(tmp_path, "method: grid\nparameters:\n  a: {values: [1, 2}\n")
    assert code == 2 and "invalid YAML at line 3" in err


def test_a_missing_file_exits_2_with_a_message(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(str(tmp_path / "nope.yaml"), out=out, err=err) == 2
    assert "cannot read" in err.getvalue() and "No such file" in err.getvalue()


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n", "method: [\n",
                                  "a: &x [*x]\n", "\x00\x01", "? [a]\n: 1\n"])
def test_garbage_is_a_clean_exit_2(tmp_path: Path, text: str) -> None:
    code, _, err = validate(tmp_path, text)
    assert code == 2 and err and "Traceback" not in err


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("seed-*.yaml")), ids=lambda p: p.name)
def test_every_seed_example_validates(path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(str(path), out=out, err=err) == 0, err.getvalue()


def _sweep(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    code = "import sys; from controller.cli import sweep_main; sys.exit(sweep_main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_sweep_command_validates_from_the_command_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(INVALID)
    result: Any = _sweep("validate", str(bad), "--json")
    assert result.returncode == 2 and json.loads(result.stdout)["valid"] is False
    result = _sweep("validate", "-", stdin="method: grid\nparameters: {a: {values: [1, 2]}}\n")
    assert result.returncode == 0 and "expected run count: 2" in result.stdout


def test_lenient_validation_warns_about_unknown_keys_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text("method: random\nbogus: 1\nparameters: {a: {values: [1]}}\n")
    out, err = io.StringIO(), io.StringIO()
    assert run(str(path), out=out, err=err) == 2
    out, err = io.StringIO(), io.StringIO()
    assert run(str(path), out=out, err=err, strict=False) == 0
    assert "warning: bogus: unknown key, ignored" in out.getvalue()


def test_json_for_a_missing_file_is_the_same_shape(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run(str(tmp_path / "nope.yaml"), as_json=True, out=out, err=err) == 2
    result = json.loads(out.getvalue())
    assert result["valid"] is False and result["method"] is None
    assert [e["path"] for e in result["errors"]] == [""]
    assert result["errors"][0]["message"].startswith("cannot read")


def test_the_lenient_flag_reaches_validation(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from controller.cli import sweep_main

    path = tmp_path / "sweep.yaml"
    path.write_text("method: random\nbogus: 1\nparameters: {a: {values: [1]}}\n")
    assert sweep_main(["validate", str(path)]) == 2
    capsys.readouterr()
    assert sweep_main(["validate", str(path), "--lenient"]) == 0
    assert "warning: bogus: unknown key, ignored" in capsys.readouterr().out


def test_stdin_is_read_when_the_path_is_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("method: grid\nparameters: {a: {value: 1}}\n"))
    out, err = io.StringIO(), io.StringIO()
    assert run("-", out=out, err=err) == 0 and "expected run count: 1" in out.getvalue()
