"""A tiny synthetic "training" script for trying opensweep (no ML library needed).

It takes its hyperparameters the ways sweep commands hand them over:

- ``--name=value`` flags, as the ``${args}`` macro writes them: ``train.py --lr=0.01 --epochs=5``
- a JSON file, as ``${args_json_file}`` passes it: ``train.py /path/to/config.json``
- the run's config from ``opensweep.init(config=defaults)``, which the agent fills in.

Later sources override earlier ones: built-in defaults, then the JSON file, then the flags. It then
"trains" for ``epochs`` epochs, logging a loss curve that depends smoothly on the learning rate,
optimizer and batch size, so a sweep has a real best run to find. ``--sleep`` makes each epoch
take that many seconds (to watch the progress line, or to have something to stop).

Run it on its own (``python examples/train.py --lr=0.1``): it works outside a sweep too and writes
its metrics under ./opensweep-runs/.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import opensweep

DEFAULTS: dict[str, Any] = {
    "lr": 0.01,
    "batch_size": 32,
    "optimizer": "adam",
    "epochs": 5,
    "sleep": 0.0,
}

#: log10 of the best learning rate for each optimizer.
_BEST_LOG_LR = {"adam": -2.3, "sgd": -1.2}


def parse_value(text: str) -> Any:
    """A flag's value: JSON when it parses (numbers, true/false, lists, objects), else text.
    ``True``/``False``/``None`` are what W&B's ``str()`` formatting writes for Python values."""
    python_literals = {"True": True, "False": False, "None": None}
    if text in python_literals:
        return python_literals[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_command_line(argv: list[str]) -> tuple[dict[str, Any], Path | None]:
    """``--name=value`` flags into a dict, and the JSON args file if one was given."""
    flags: dict[str, Any] = {}
    json_file: Path | None = None
    for item in argv:
        if item.startswith("--"):
            name, sep, value = item[2:].partition("=")
            if not name:
                raise SystemExit(f"train.py: malformed flag {item!r}")
            flags[name] = parse_value(value) if sep else True
        elif json_file is None:
            json_file = Path(item)
        else:
            raise SystemExit(f"train.py: unexpected argument {item!r} (only one JSON args file)")
    return flags, json_file


def loss_curve(config: Mapping[str, Any]) -> list[float]:
    """The loss after each epoch: deterministic for a given config, so a sweep's best run is
    known in advance (the lowest final loss)."""
    lr = float(config["lr"])
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    optimizer = str(config["optimizer"])
    if optimizer not in _BEST_LOG_LR:
        raise ValueError(f"optimizer must be one of {sorted(_BEST_LOG_LR)}, got {optimizer!r}")
    batch_size = int(config["batch_size"])
    epochs = int(config["epochs"])
    distance = math.log10(lr) - _BEST_LOG_LR[optimizer]
    floor = 0.05 + 0.2 * distance**2 + 0.02 * math.log2(max(batch_size, 1) / 16)
    rate = 0.9 / (1 + abs(distance))
    return [floor + (2.0 - floor) * math.exp(-rate * (epoch + 1)) for epoch in range(epochs)]


def main(argv: list[str] | None = None) -> int:
    flags, json_file = parse_command_line(sys.argv[1:] if argv is None else argv)
    config = dict(DEFAULTS)
    if json_file is not None:
        from_file = json.loads(json_file.read_text(encoding="utf-8"))
        if not isinstance(from_file, dict):
            raise SystemExit(f"train.py: {json_file} does not hold a JSON object")
        print(f"train.py: hyperparameters from {json_file.name}: {json.dumps(from_file)}",
              flush=True)
        config.update(from_file)
    if flags:
        print(f"train.py: hyperparameters from the command line: {json.dumps(flags)}", flush=True)
        config.update(flags)
    with opensweep.init(config=config) as run:
        curve = loss_curve(run.config)
        for epoch, loss in enumerate(curve):
            if run.config.sleep:
                time.sleep(float(run.config.sleep))
            run.log({"epoch": epoch, "loss": loss, "accuracy": 1.0 - loss / 2.0})
        print(f"train.py: final loss {curve[-1]:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
