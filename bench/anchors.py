"""One sequential interface over every engine the benchmarks compare.

Each engine is driven the way its users drive it: opensweep through its library mode
(``opensweep.engine.next_run`` with plain run dicts), W&B through ``sweeps.next_run`` with
``SweepRun`` objects, Optuna through ``Study.ask``/``Study.tell`` with distributions built from
the same sweep config. A :class:`Suggester` hands out one suggestion at a time and is told its
result; ``preload`` builds a history without the cost of suggesting it (for the speed benchmark).

The anchors are optional dependencies (``pip install -e '.[bench]'``): :func:`available_methods`
says which ones can run here and why the others cannot, so a missing one is reported, never faked.
"""

from __future__ import annotations

import math
import random
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bench.functions import METRIC

Params = dict[str, Any]

OURS = "opensweep"
WANDB = "wandb"
TPE = "optuna_tpe"
GP = "optuna_gp"
RANDOM = "random"

ALL_METHODS = (OURS, WANDB, TPE, GP, RANDOM)
ANCHORS = (WANDB, TPE, GP)

COLORS = {
    OURS: "#d62728",
    WANDB: "#1f77b4",
    TPE: "#ff7f0e",
    GP: "#2ca02c",
    RANDOM: "#7f7f7f",
}

LABELS = {
    OURS: "opensweep (ours)",
    WANDB: "W&B sweeps",
    TPE: "Optuna TPE",
    GP: "Optuna GP",
    RANDOM: "random",
}


class Suggester(ABC):
    """A sequential optimiser over one sweep config, seeded, minimising ``METRIC``."""

    def __init__(self, sweep_config: Mapping[str, Any], seed: int) -> None:
        self.sweep_config = dict(sweep_config)
        self.seed = seed

    @abstractmethod
    def suggest(self) -> Params:
        """The next run's flat parameters (name -> value)."""

    @abstractmethod
    def observe(self, params: Params, value: float) -> None:
        """Record that the run with ``params`` finished with ``METRIC == value``.

        ``params`` must be the dict the last ``suggest`` returned (or, via ``preload``, any
        point of the space).
        """

    def preload(self, history: Sequence[tuple[Params, float]]) -> None:
        """Add finished runs that this suggester did not suggest itself."""
        for params, value in history:
            self.observe(params, value)


# --- opensweep ----------------------------------------------------------------------------


class OpensweepSuggester(Suggester):
    """Library mode: the same pure function the controller calls, fed plain run dicts.

    (Through :mod:`bench._engine`, which calls the core directly until ``opensweep.engine``
    exists.)
    """

    def __init__(self, sweep_config: Mapping[str, Any], seed: int) -> None:
        super().__init__(sweep_config, seed)
        from bench._engine import load

        self._next_run, _, self.source = load()
        self._runs: list[dict[str, Any]] = []

    def suggest(self) -> Params:
        # A fresh seed per suggestion, derived from the sweep's seed and the run count, as the
        # controller does: the same history and seed give the same suggestion.
        seed = (self.seed * 1_000_003 + len(self._runs)) % (2**31)
        config = self._next_run(self.sweep_config, list(self._runs), seed)
        if config is None:
            raise RuntimeError("opensweep.engine.next_run returned None for a bayes sweep")
        return dict(config)

    def observe(self, params: Params, value: float) -> None:
        self._runs.append(
            {
                "id": f"run-{len(self._runs)}",
                "config": dict(params),
                "state": "finished",
                "summary": {METRIC: value},
                "history": [{METRIC: value, "_step": 0}],
            }
        )


# --- W&B ----------------------------------------------------------------------------------


class WandbSuggester(Suggester):
    """W&B's open-source engine (``sweeps`` on PyPI), bayes method.

    It draws from the global generators of numpy and of ``random``, so both are reseeded before
    each suggestion (per sweep seed and run count) to make runs repeatable.
    """

    def __init__(self, sweep_config: Mapping[str, Any], seed: int) -> None:
        super().__init__(sweep_config, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydantic 2 renamed-config-key warning
            import sweeps

        self._sweeps = sweeps
        self._runs: list[Any] = []

    def suggest(self) -> Params:
        seed = (self.seed * 1_000_003 + len(self._runs)) % (2**32)
        np.random.seed(seed)
        random.seed(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = self._sweeps.next_run(self.sweep_config, self._runs)
        return {name: block["value"] for name, block in run.config.items()}

    def observe(self, params: Params, value: float) -> None:
        # Under pydantic 2 the run's metrics must be passed by their W&B field names
        # (summaryMetrics / sampledHistory); other spellings are dropped without a word.
        run = self._sweeps.SweepRun(
            name=f"run-{len(self._runs)}",
            state=self._sweeps.RunState.finished,
            config={name: {"value": v} for name, v in params.items()},
            summaryMetrics={METRIC: value},
            sampledHistory=[{METRIC: value, "_step": 0}],
        )
        if run.summary_metrics.get(METRIC) != value:
            raise RuntimeError("sweeps.SweepRun dropped the run's summary metrics")
        self._runs.append(run)


# --- Optuna -------------------------------------------------------------------------------


def optuna_distributions(sweep_config: Mapping[str, Any]) -> tuple[dict[str, Any], Params]:
    """Optuna distributions for the config's parameters, and its constants (fixed values).

    Covers the distributions the benchmark problems use; anything else is a clear error rather
    than a silently different search space.
    """
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    dists: dict[str, Any] = {}
    constants: Params = {}
    for name, block in sweep_config["parameters"].items():
        if "value" in block:
            constants[name] = block["value"]
            continue
        if "values" in block:
            dists[name] = CategoricalDistribution(list(block["values"]))
            continue
        kind = block.get("distribution")
        low, high = block["min"], block["max"]
        if kind is None:
            both_int = isinstance(low, int) and isinstance(high, int)
            kind = "int_uniform" if both_int else "uniform"
        if kind == "uniform":
            dists[name] = FloatDistribution(float(low), float(high))
        elif kind == "int_uniform":
            dists[name] = IntDistribution(int(low), int(high))
        elif kind == "log_uniform_values":
            dists[name] = FloatDistribution(float(low), float(high), log=True)
        elif kind == "log_uniform":
            dists[name] = FloatDistribution(math.exp(low), math.exp(high), log=True)
        elif kind == "q_uniform":
            dists[name] = FloatDistribution(float(low), float(high), step=float(block["q"]))
        else:
            raise ValueError(f"parameters.{name}: no Optuna mapping for distribution {kind!r}")
    return dists, constants


class OptunaSuggester(Suggester):
    """Optuna's ask/tell interface with one of its samplers, default settings."""

    def __init__(self, sweep_config: Mapping[str, Any], seed: int, sampler: str) -> None:
        super().__init__(sweep_config, seed)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        self._optuna = optuna
        self._dists, self._constants = optuna_distributions(sweep_config)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if sampler == "tpe":
                s: Any = optuna.samplers.TPESampler(seed=seed)
            elif sampler == "gp":
                s = optuna.samplers.GPSampler(seed=seed)
            elif sampler == "random":
                s = optuna.samplers.RandomSampler(seed=seed)
            else:
                raise ValueError(f"unknown Optuna sampler {sampler!r}")
        self.study = optuna.create_study(direction="minimize", sampler=s)
        self._pending: Any = None

    def suggest(self) -> Params:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._pending = self.study.ask(self._dists)
        return {**self._pending.params, **self._constants}

    def observe(self, params: Params, value: float) -> None:
        if self._pending is not None and self._pending.params == {
            k: v for k, v in params.items() if k in self._dists
        }:
            self.study.tell(self._pending, value)
            self._pending = None
            return
        self.study.add_trial(
            self._optuna.trial.create_trial(
                params={k: v for k, v in params.items() if k in self._dists},
                distributions=self._dists,
                value=value,
            )
        )

    def preload(self, history: Sequence[tuple[Params, float]]) -> None:
        trials = [
            self._optuna.trial.create_trial(
                params={k: v for k, v in params.items() if k in self._dists},
                distributions=self._dists,
                value=value,
            )
            for params, value in history
        ]
        self.study.add_trials(trials)

    def discard_pending(self) -> None:
        """Close the last suggestion without a result (the speed benchmark's repeated asks)."""
        if self._pending is not None:
            self.study.tell(self._pending, state=self._optuna.trial.TrialState.FAIL)
            self._pending = None


# --- registry -----------------------------------------------------------------------------


def make_suggester(method: str, sweep_config: Mapping[str, Any], seed: int) -> Suggester:
    if method == OURS:
        return OpensweepSuggester(sweep_config, seed)
    if method == WANDB:
        return WandbSuggester(sweep_config, seed)
    if method == TPE:
        return OptunaSuggester(sweep_config, seed, "tpe")
    if method == GP:
        return OptunaSuggester(sweep_config, seed, "gp")
    if method == RANDOM:
        return OptunaSuggester(sweep_config, seed, "random")
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(ALL_METHODS)}")


_REQUIRES = {
    WANDB: ("sweeps",),
    TPE: ("optuna",),
    GP: ("optuna", "torch"),
    RANDOM: ("optuna",),
}


def available_methods(methods: Sequence[str] = ALL_METHODS) -> tuple[list[str], dict[str, str]]:
    """The methods that can run here, and for each missing one the reason."""
    import importlib

    ok: list[str] = []
    missing: dict[str, str] = {}
    for method in methods:
        try:
            if method == OURS:
                importlib.import_module("bench._engine").load()
            elif method in _REQUIRES:
                for module in _REQUIRES[method]:
                    importlib.import_module(module)
            else:
                raise ValueError(f"unknown method {method!r}")
        except ImportError as exc:
            missing[method] = f"{type(exc).__name__}: {exc}"
        else:
            ok.append(method)
    return ok, missing
