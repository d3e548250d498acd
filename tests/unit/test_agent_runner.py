"""One run's process group, with real subprocesses: outcomes, metrics, stopping, leftovers."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from agent.metrics import Record
from agent.runner import (
    METRICS_NAME,
    STDERR_NAME,
    STDOUT_NAME,
    ExecLauncher,
    Outcome,
    RunProcess,
    describe_exit,
    group_alive,
    stderr_tail,
)


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def _process(tmp_path: Path, argv: list[str] | None, *, grace: float = 5.0,
             records: list[Record] | None = None, stop_on_first_record: bool = False,
             env: dict[str, str] | None = None) -> RunProcess:
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    got = records if records is not None else []
    full_env = dict(os.environ)
    full_env["OPENSWEEP_METRICS"] = str(run_dir / METRICS_NAME)
    full_env.update(env or {})
    holder: list[RunProcess] = []

    def on_records(batch: list[Record]) -> None:
        got.extend(batch)
        if stop_on_first_record:
            holder[0].request_stop("test asked")

    process = RunProcess(run_id="r1", run_dir=run_dir, argv=argv, env=full_env,
                         launcher=ExecLauncher(), grace_period=grace, on_records=on_records)
    holder.append(process)
    return process


async def test_exit_zero_is_finished_and_output_goes_to_log_files(tmp_path: Path) -> None:
    argv = _script(tmp_path, """
        import sys
        print("hello out")
        print("hello err", file=sys.stderr)
    """)
    result = await _process(tmp_path, argv).execute()
    assert result.outcome is Outcome.FINISHED and result.exit_code == 0
    assert (tmp_path / "run" / STDOUT_NAME).read_text() == "hello out\n"
    assert (tmp_path / "run" / STDERR_NAME).read_text() == "hello err\n"
    assert result.duration >= 0


async def test_non_zero_exit_is_failed_with_its_status(tmp_path: Path) -> None:
    result = await _process(tmp_path, _script(tmp_path, "raise SystemExit(3)")).execute()
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 3 and result.reason == "exit status 3"


async def test_killed_by_a_signal_is_failed_and_named(tmp_path: Path) -> None:
    argv = _script(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    result = await _process(tmp_path, argv).execute()
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == -signal.SIGSEGV and result.reason == "killed by SIGSEGV"


async def test_a_program_that_cannot_start_fails_with_a_clear_reason(tmp_path: Path) -> None:
    result = await _process(tmp_path, [str(tmp_path / "no-such-program")]).execute()
    assert result.outcome is Outcome.FAILED and result.exit_code is None
    assert "could not start" in result.reason and "no-such-program" in result.reason
    assert "could not start" in stderr_tail(tmp_path / "run")


async def test_every_metric_line_arrives_before_execute_returns(tmp_path: Path) -> None:
    argv = _script(tmp_path, """
        import json, os
        with open(os.environ["OPENSWEEP_METRICS"], "a") as f:
            for i in range(2000):
                f.write(json.dumps({"loss": 1 / (i + 1), "_step": i}) + "\\n")
            f.write('{"last": 1}')
    """)
    records: list[Record] = []
    result = await _process(tmp_path, argv, records=records).execute()
    assert result.outcome is Outcome.FINISHED
    assert [r.seq for r in records] == list(range(2001))
    assert records[-1].values == {"last": 1.0}


async def test_argv_elements_reach_the_program_literally(tmp_path: Path) -> None:
    out = tmp_path / "argv.txt"
    program = _script(tmp_path, f"""
        import json, sys
        open({str(out)!r}, "w").write(json.dumps(sys.argv[1:]))
    """)
    argv = [*program, '--x="; rm -rf ~"', "$(touch pwned)", "a b"]
    result = await _process(tmp_path, argv).execute()
    assert result.outcome is Outcome.FINISHED
    assert out.read_text() == '["--x=\\"; rm -rf ~\\"", "$(touch pwned)", "a b"]'
    assert not (tmp_path / "pwned").exists()


async def test_the_program_leads_its_own_process_group(tmp_path: Path) -> None:
    out = tmp_path / "ids.txt"
    argv = _script(tmp_path, f"""
        import os
        open({str(out)!r}, "w").write(f"{{os.getpid()}} {{os.getpgid(0)}} {{os.getsid(0)}}")
    """)
    await _process(tmp_path, argv).execute()
    pid, pgid, sid = out.read_text().split()
    assert pid == pgid == sid
    assert int(pgid) != os.getpgid(0)


_SLEEPER_WITH_CHILD = """
    import json, os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(os.environ["OPENSWEEP_METRICS"], "a") as f:
        f.write(json.dumps({"child": child.pid}) + "\\n")
    time.sleep(60)
"""


async def test_stop_terminates_the_whole_group_and_reports_stopped(tmp_path: Path) -> None:
    records: list[Record] = []
    process = _process(tmp_path, _script(tmp_path, _SLEEPER_WITH_CHILD), records=records,
                       stop_on_first_record=True)
    result = await process.execute()
    assert result.outcome is Outcome.STOPPED
    assert result.reason == "stopped: test asked"
    assert result.exit_code == -signal.SIGTERM
    assert process.pid is not None and not group_alive(process.pid)


async def test_sigterm_ignored_gets_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    argv = _script(tmp_path, """
        import json, os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        with open(os.environ["OPENSWEEP_METRICS"], "a") as f:
            f.write(json.dumps({"child": child.pid}) + "\\n")
        time.sleep(60)
    """)
    process = _process(tmp_path, argv, grace=0.3, stop_on_first_record=True)
    result = await process.execute()
    assert result.outcome is Outcome.STOPPED
    assert result.exit_code == -signal.SIGKILL
    assert process.pid is not None and not group_alive(process.pid)


async def test_processes_left_behind_by_an_exited_program_are_terminated(tmp_path: Path) -> None:
    argv = _script(tmp_path, """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    """)
    process = _process(tmp_path, argv)
    result = await process.execute()
    assert result.outcome is Outcome.FINISHED
    assert process.pid is not None and not group_alive(process.pid)


async def test_stop_before_start_never_launches(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    process = _process(tmp_path, _script(tmp_path, f"open({str(marker)!r}, 'w')"))
    process.request_stop("agent interrupted")
    result = await process.execute()
    assert result.outcome is Outcome.STOPPED and result.exit_code is None
    assert not marker.exists()


def test_stderr_tail_keeps_the_last_lines(tmp_path: Path) -> None:
    (tmp_path / STDERR_NAME).write_text("".join(f"line {i}\n" for i in range(100)))
    assert stderr_tail(tmp_path, lines=3) == "line 97\nline 98\nline 99"
    assert stderr_tail(tmp_path / "missing") == ""


@pytest.mark.parametrize(("code", "text"), [
    (0, "exit status 0"), (2, "exit status 2"), (-9, "killed by SIGKILL"),
    (-200, "killed by signal 200"),
])
def test_describe_exit(code: int, text: str) -> None:
    assert describe_exit(code) == text
