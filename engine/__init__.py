"""fmnist-tui's headless training engine: data, models, config, training loop, runs.

Import what you need from here; torch is imported only when a name that needs it is
first used, so ``import engine`` is instant::

    from engine import TrainConfig, Trainer
    result = Trainer(TrainConfig(epochs=3)).fit()
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# Exact resume needs bitwise-reproducible matrix products. Without Intel MKL's
# conditional numerical reproducibility, its results depend on how arrays happen to be
# aligned in memory and can differ from run to run in the last bits (Intel oneMKL
# developer guide, "Reproducibility Conditions"). Set before torch loads MKL; a value
# the user set wins.
os.environ.setdefault("MKL_CBWR", "AUTO")
os.environ.setdefault("MKL_DYNAMIC", "FALSE")

_EXPORTS = {
    "TrainConfig": "engine.config",
    "FIELDS": "engine.config",
    "FieldSpec": "engine.config",
    "PRESETS": "engine.config",
    "PRESET_HELP": "engine.config",
    "preset": "engine.config",
    "parse_text": "engine.config",
    "EngineError": "engine.errors",
    "ConfigError": "engine.errors",
    "DataError": "engine.errors",
    "DeviceError": "engine.errors",
    "CheckpointError": "engine.errors",
    "TrainingError": "engine.errors",
    "CLASSES": "engine.data",
    "ImageData": "engine.data",
    "Split": "engine.data",
    "DataSource": "engine.data",
    "load_fashion_mnist": "engine.data",
    "locate_fashion_mnist": "engine.data",
    "read_idx": "engine.data",
    "load_custom": "engine.custom",
    "select_device": "engine.device",
    "available_devices": "engine.device",
    "build_model": "engine.models",
    "summary": "engine.models",
    "ModelSummary": "engine.models",
    "Trainer": "engine.trainer",
    "FitResult": "engine.trainer",
    "Evaluation": "engine.loop",
    "load_data": "engine.trainer",
    "learning_rate": "engine.optim",
    "build_optimizer": "engine.optim",
    "build_loss": "engine.optim",
    "train_epoch": "engine.loop",
    "evaluate": "engine.loop",
    "RunState": "engine.state",
    "TrainState": "engine.state",
    "RunControl": "engine.control",
    "RemoteControl": "engine.control",
    "RunRecorder": "engine.recorder",
    "spawn_detached": "engine.detach",
    "Detached": "engine.detach",
    "Predictor": "engine.inference",
    "Prediction": "engine.inference",
    "Run": "engine.runs",
    "RunInfo": "engine.runs",
    "list_runs": "engine.runs",
    "load_checkpoint": "engine.checkpoint",
    "Event": "engine.events",
    "RunStarted": "engine.events",
    "BatchEnd": "engine.events",
    "EpochEnd": "engine.events",
    "CheckpointSaved": "engine.events",
    "StateChanged": "engine.events",
    "Finished": "engine.events",
    "Failed": "engine.events",
}

# Spelled out, not computed from _EXPORTS, so type checkers can read it; the same names.
__all__ = [
    "CLASSES",
    "FIELDS",
    "PRESETS",
    "PRESET_HELP",
    "BatchEnd",
    "CheckpointError",
    "CheckpointSaved",
    "ConfigError",
    "DataError",
    "DataSource",
    "Detached",
    "DeviceError",
    "EngineError",
    "EpochEnd",
    "Evaluation",
    "Event",
    "Failed",
    "FieldSpec",
    "Finished",
    "FitResult",
    "ImageData",
    "ModelSummary",
    "Prediction",
    "Predictor",
    "RemoteControl",
    "Run",
    "RunControl",
    "RunInfo",
    "RunRecorder",
    "RunStarted",
    "RunState",
    "Split",
    "StateChanged",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "TrainingError",
    "available_devices",
    "build_loss",
    "build_model",
    "build_optimizer",
    "evaluate",
    "learning_rate",
    "list_runs",
    "load_checkpoint",
    "load_custom",
    "load_data",
    "load_fashion_mnist",
    "locate_fashion_mnist",
    "parse_text",
    "preset",
    "read_idx",
    "select_device",
    "spawn_detached",
    "summary",
    "train_epoch",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from engine.checkpoint import load_checkpoint
    from engine.config import (
        FIELDS,
        PRESET_HELP,
        PRESETS,
        FieldSpec,
        TrainConfig,
        parse_text,
        preset,
    )
    from engine.control import RemoteControl, RunControl
    from engine.custom import load_custom
    from engine.data import (
        CLASSES,
        DataSource,
        ImageData,
        Split,
        load_fashion_mnist,
        locate_fashion_mnist,
        read_idx,
    )
    from engine.detach import Detached, spawn_detached
    from engine.device import available_devices, select_device
    from engine.errors import (
        CheckpointError,
        ConfigError,
        DataError,
        DeviceError,
        EngineError,
        TrainingError,
    )
    from engine.events import (
        BatchEnd,
        CheckpointSaved,
        EpochEnd,
        Event,
        Failed,
        Finished,
        RunStarted,
        StateChanged,
    )
    from engine.inference import Prediction, Predictor
    from engine.loop import Evaluation, evaluate, train_epoch
    from engine.models import ModelSummary, build_model, summary
    from engine.optim import build_loss, build_optimizer, learning_rate
    from engine.recorder import RunRecorder
    from engine.runs import Run, RunInfo, list_runs
    from engine.state import RunState, TrainState
    from engine.trainer import FitResult, Trainer, load_data
