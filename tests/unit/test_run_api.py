"""The run-side API: opensweep.init(config=defaults), run.config, run.log, run.finish."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import opensweep
from agent.metrics import MetricsTail
from opensweep import run as run_module
from opensweep.run import Config, OpensweepRunError


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    for name in ("OPENSWEEP_SWEEP_ID", "OPENSWEEP_RUN_ID", "OPENSWEEP_CONFIG",
                 "OPENSWEEP_METRICS", "OPENSWEEP_RUN_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    run_module._active = None
    yield
    if run_module._active is not None:
        run_module._active.finish()
    run_module._active = None


def _in_sweep(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, values: dict[str, object]) -> Path:
    metrics = tmp_path / "run" / "metrics.jsonl"
    metrics.parent.mkdir()
    monkeypatch.setenv("OPENSWEEP_SWEEP_ID", "abcd1234")
    monkeypatch.setenv("OPENSWEEP_RUN_ID", "abcd1234-0001")
    monkeypatch.setenv("OPENSWEEP_CONFIG", json.dumps(values))
    monkeypatch.setenv("OPENSWEEP_METRICS", str(metrics))
    return metrics


def test_config_allows_attribute_and_item_access() -> None:
    config = Config({"lr": 0.1, "optimizer": {"name": "adam", "beta": {"one": 0.9}}})
    assert config.lr == config["lr"] == 0.1
    assert config.optimizer.name == config["optimizer"]["name"] == "adam"
    assert config.optimizer.beta.one == 0.9
    config.epochs = 3
    config["batch"] = 8
    assert config["epochs"] == 3 and config.batch == 8
    assert config.as_dict() == {"lr": 0.1, "optimizer": {"name": "adam", "beta": {"one": 0.9}},
                                "epochs": 3, "batch": 8}
    assert "lr" in config and len(config) == 4


def test_missing_config_attribute_names_what_exists() -> None:
    config = Config({"lr": 0.1})
    with pytest.raises(AttributeError, match=r"no 'lx'.*lr"):
        _ = config.lx


def test_setdefaults_fills_only_what_is_missing_recursively() -> None:
    config = Config({"lr": 0.5, "opt": {"lr": 0.2}})
    config.setdefaults({"lr": 0.1, "epochs": 5, "opt": {"lr": 0.01, "momentum": 0.9}})
    assert config.as_dict() == {"lr": 0.5, "epochs": 5, "opt": {"lr": 0.2, "momentum": 0.9}}


def test_outside_a_sweep_config_is_the_defaults_and_metrics_are_local(tmp_path: Path) -> None:
    with opensweep.init(config={"lr": 0.1, "epochs": 2}) as run:
        assert run.sweep_id is None and not run.in_sweep
        assert run.config.lr == 0.1
        run.log({"loss": 1.0})
        run.log({"loss": 0.5})
    assert run.dir.parent == tmp_path / "opensweep-runs"
    lines = (run.dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{"_step": 0, "loss": 1.0}, {"_step": 1, "loss": 0.5}]
    assert json.loads((run.dir / "config.json").read_text()) == {"lr": 0.1, "epochs": 2}
    assert json.loads((run.dir / "summary.json").read_text()) == {"loss": 0.5}


def test_in_a_sweep_values_override_defaults_and_nested_dicts_merge(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _in_sweep(monkeypatch, tmp_path, {"lr": 0.01, "opt": {"name": "sgd"}})
    run = opensweep.init(config={"lr": 0.1, "epochs": 3, "opt": {"name": "adam", "wd": 0.1}})
    assert run.id == "abcd1234-0001" and run.sweep_id == "abcd1234" and run.in_sweep
    assert run.config.as_dict() == {"lr": 0.01, "epochs": 3, "opt": {"name": "sgd", "wd": 0.1}}
    assert run.dir == tmp_path / "run"


def test_logged_lines_are_what_the_agent_reads(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    metrics = _in_sweep(monkeypatch, tmp_path, {})
    warnings: list[str] = []
    tail = MetricsTail(metrics, warnings.append)
    np = pytest.importorskip("numpy")
    with opensweep.init() as run:
        run.log({"loss": np.float32(0.5), "val": {"acc": np.int64(3)}, "ok": True})
        run.log({"loss": float("nan")}, step=10)
        run.log({"loss": float("inf")})
        records = tail.poll()
    assert [(r.seq, r.step) for r in records] == [(0, 0), (1, 10), (2, 11)]
    assert records[0].values == {"loss": 0.5, "val.acc": 3.0, "ok": 1.0}
    assert math.isnan(records[1].values["loss"]) and records[2].values["loss"] == math.inf
    assert warnings == []
    assert run.summary == {"loss": math.inf, "val.acc": 3, "ok": True}


def test_init_twice_returns_the_same_run(tmp_path: Path) -> None:
    first = opensweep.init(config={"a": 1})
    second = opensweep.init(config={"a": 2, "b": 3})
    assert first is second
    assert first.config.as_dict() == {"a": 1, "b": 3}
    first.finish()
    third = opensweep.init()
    assert third is not first


def test_log_after_finish_is_an_error(tmp_path: Path) -> None:
    run = opensweep.init()
    run.finish()
    run.finish()
    with pytest.raises(OpensweepRunError, match="finished"):
        run.log({"x": 1})


@pytest.mark.parametrize("bad", [[1, 2], "loss=1"])
def test_log_rejects_a_non_dict(bad: object, tmp_path: Path) -> None:
    run = opensweep.init()
    with pytest.raises(OpensweepRunError, match="dict"):
        run.log(bad)  # type: ignore[arg-type]


def test_log_rejects_a_bad_step(tmp_path: Path) -> None:
    run = opensweep.init()
    with pytest.raises(OpensweepRunError, match="step"):
        run.log({"x": 1}, step=-1)


def test_malformed_sweep_config_env_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    _in_sweep(monkeypatch, tmp_path, {})
    monkeypatch.setenv("OPENSWEEP_CONFIG", "[1, 2]")
    with pytest.raises(OpensweepRunError, match="OPENSWEEP_CONFIG must be a JSON object"):
        opensweep.init()


def test_wandb_only_keywords_are_accepted(tmp_path: Path) -> None:
    run = opensweep.init(config={"a": 1}, project="p", entity="e")
    assert run.config.a == 1


def test_importing_opensweep_stays_light() -> None:
    import subprocess
    import sys
    code = ("import sys, opensweep; opensweep.init; "
            "print(sorted(m for m in ('grpc', 'numpy', 'yaml', 'agent') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_config_survives_pickle_and_deepcopy() -> None:
    import copy
    import pickle

    config = Config({"lr": 0.1, "opt": {"name": "adam"}})
    for clone in (pickle.loads(pickle.dumps(config)), copy.deepcopy(config)):
        assert isinstance(clone, Config) and clone == config
        assert clone.opt.name == "adam"
        clone.opt.name = "sgd"
        assert config.opt.name == "adam"


def test_config_update_accepts_wandb_keywords() -> None:
    config = Config({"lr": 0.1})
    config.update({"lr": 0.2, "epochs": 3}, allow_val_change=True)
    config.update(batch=8)
    assert config.as_dict() == {"lr": 0.2, "epochs": 3, "batch": 8}


def test_module_level_log_and_finish_are_exposed(tmp_path: Path) -> None:
    opensweep.log({"x": 1})
    assert run_module._active is not None
    path = run_module._active.metrics_path
    opensweep.finish()
    assert run_module._active is None
    assert json.loads(path.read_text()) == {"_step": 0, "x": 1}
