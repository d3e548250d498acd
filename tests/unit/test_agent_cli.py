"""The `agent` command line: forms, usage errors, exit statuses, what it prints."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pytest

from agent.cli import EXIT_USAGE, main
from agent.console import ConsoleReporter, format_duration, format_number, run_line
from agent.runner import Outcome, RunResult
from agent.session import EXIT_UNREACHABLE, RunView


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("argv", "needle"), [
    ([], "which sweep?"),
    (["abc", "--sweep", "def"], "two different sweeps"),
    (["abc", "--count", "0"], "--count: must be at least 1"),
    (["abc", "--grace-period", "-1"], "--grace-period: must be >= 0"),
    (["abc", "--quiet", "--verbose"], "not allowed with"),
])
def test_usage_errors_exit_2_naming_the_problem(argv: list[str], needle: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == EXIT_USAGE
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "needle"), [
    (["abc", "--controller", "no-port-here"], "is not HOST:PORT"),
    (["abc", "--token-file", "/does/not/exist"], "cannot read token file /does/not/exist"),
])
def test_bad_connection_settings_exit_2(argv: list[str], needle: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    assert needle in capsys.readouterr().err


def test_unreachable_controller_gives_up_with_a_clear_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    code = main(["abc12345", "--controller", address, "--retry-timeout", "0.5",
                 "--dir", str(tmp_path)])
    assert code == EXIT_UNREACHABLE
    err = capsys.readouterr().err
    assert f"cannot reach the controller at {address} (connection refused)" in err
    assert "gave up after 0.5 s" in err


def test_positional_and_flag_forms_agree(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{_closed_port()}"
    for argv in (["abc12345"], ["--sweep", "abc12345"], ["abc12345", "--sweep", "abc12345"]):
        assert main([*argv, "--controller", address, "--retry-timeout", "0"]) == EXIT_UNREACHABLE
    assert capsys.readouterr().err.count("cannot reach") == 3


def _view(**kw: object) -> RunView:
    view = RunView(run_id="ab12cd34-0003", params={"lr": 0.01, "opt": {"name": "adam"}},
                   started_at=100.0)
    for key, value in kw.items():
        setattr(view, key, value)
    return view


def test_run_line_shows_id_params_outcome_duration_and_metric() -> None:
    view = _view(last_values={"loss": 0.073125})
    result = RunResult(Outcome.FINISHED, 0, "exit status 0", 100.0, 104.25)
    assert run_line(view, result, "loss") == (
        "run ab12cd34-0003  lr=0.01 opt.name=adam  finished  4.2s  loss=0.073125")


def test_run_line_gives_the_reason_of_a_failure_and_a_missing_metric() -> None:
    result = RunResult(Outcome.FAILED, 1, "exit status 1", 100.0, 190.0)
    assert run_line(_view(), result, "loss") == (
        "run ab12cd34-0003  lr=0.01 opt.name=adam  failed (exit status 1)  1m30s  loss=-")


def test_progress_line_only_on_a_terminal_and_erased_before_the_run_line() -> None:
    out, progress = io.StringIO(), io.StringIO()
    reporter = ConsoleReporter(out=out, progress=progress, live=True)
    view = _view(last_values={"loss": 0.5}, last_step=3)
    reporter.run_progress(view, "loss")
    assert "step 3" in progress.getvalue() and "loss=0.5" in progress.getvalue()
    reporter.run_ended(view, RunResult(Outcome.STOPPED, -15, "stopped: hyperband", 100, 101),
                       "loss")
    assert progress.getvalue().endswith("\r")
    assert out.getvalue().startswith("run ab12cd34-0003") and "stopped (hyperband)" \
        in out.getvalue()
    quiet_progress = io.StringIO()
    piped = ConsoleReporter(out=io.StringIO(), progress=quiet_progress, live=False)
    piped.run_progress(view, "loss")
    assert quiet_progress.getvalue() == ""


@pytest.mark.parametrize(("value", "text"), [
    (3.0, "3"), (0.1234567891, "0.123457"), (float("nan"), "nan"), (1e20, "1e+20"),
])
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(("seconds", "text"), [(4.25, "4.2s"), (61, "1m01s"), (7322, "2h02m")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_an_unusable_run_directory_fails_before_contacting_anyone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["abc12345", "--dir", str(blocker / "runs"), "--controller",
                 f"127.0.0.1:{_closed_port()}"])
    assert code == 1
    assert f"cannot create the run directory {blocker / 'runs'} (--dir)" in capsys.readouterr().err
