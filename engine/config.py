"""``TrainConfig``: every hyperparameter, its default, bounds and help, in one place.

The app's form, the CLI's flags and config files are all built from the field
specs here, so the three never drift. Values are validated on construction; a
``ConfigError`` lists every problem, each naming the field, the value given and what
is allowed. Text from a form field or a flag goes through ``parse_text``, values from
a JSON/TOML file through the same checks. No torch import: this module is cheap.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

MODELS = ("mlp", "cnn")
ACTIVATIONS = (
    "relu",
    "leaky_relu",
    "gelu",
    "silu",
    "elu",
    "selu",
    "celu",
    "mish",
    "relu6",
    "hardswish",
    "softplus",
    "tanh",
    "sigmoid",
)
LOSSES = ("cross_entropy", "nll", "mse")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("none", "cosine", "step", "onecycle")
PRECISIONS = ("fp32", "bf16", "fp16")
DATA_SOURCES = ("fashion-mnist", "custom")
RESIZE_POLICIES = ("resize", "pad", "reject")
COLOR_POLICIES = ("grayscale", "reject")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{0,64}$")


@dataclass(frozen=True)
class FieldSpec:
    """What a field accepts, for validation, form widgets and CLI flags alike."""

    name: str
    kind: str  # "int", "float", "bool", "choice", "ints", "text", "device"
    default: Any
    help: str
    group: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # True: the value must be strictly greater than ``low``
    high_open: bool = False
    choices: tuple[str, ...] = ()
    max_items: int = 8

    def allowed(self) -> str:
        """What this field accepts, in words."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "device":
            return "auto, cpu, mps, cuda or cuda:N"
        if self.kind == "text":
            if self.name == "name":
                return "up to 64 letters, digits, '.', '_' or '-'"
            return "a path or text"
        noun = {"int": "a whole number", "float": "a number", "ints": "a list of whole numbers"}[
            self.kind
        ]
        if self.kind == "ints":
            noun = f"1 to {self.max_items} whole numbers separated by commas, each"
        parts = []
        if self.low is not None:
            parts.append(f"{'greater than' if self.low_open else 'at least'} {_num(self.low)}")
        if self.high is not None:
            parts.append(f"{'less than' if self.high_open else 'at most'} {_num(self.high)}")
        return noun + (" " + " and ".join(parts) if parts else "")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _field(default: Any, help: str, kind: str, group: str, **spec: Any) -> Any:
    return field(default=default, metadata={"kind": kind, "help": help, "group": group, **spec})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Construct it to validate it."""

    # Model
    model: str = _field("mlp", "network architecture", "choice", "model", choices=MODELS)
    hidden_sizes: tuple[int, ...] = _field(
        (512, 512), "sizes of the hidden fully-connected layers", "ints", "model", low=1, high=16384
    )
    conv_channels: tuple[int, ...] = _field(
        (32, 64),
        "channels of each conv block (cnn only)",
        "ints",
        "model",
        low=1,
        high=1024,
        max_items=4,
    )
    activation: str = _field(
        "relu", "activation after each hidden layer", "choice", "model", choices=ACTIVATIONS
    )
    dropout: float = _field(
        0.0,
        "dropout probability after each hidden layer",
        "float",
        "model",
        low=0,
        high=1,
        high_open=True,
    )
    # Loss and optimiser
    loss: str = _field(
        "cross_entropy",
        "loss function (nll adds LogSoftmax, mse trains softmax outputs on one-hot targets)",
        "choice",
        "optimiser",
        choices=LOSSES,
    )
    label_smoothing: float = _field(
        0.0,
        "label smoothing for cross entropy",
        "float",
        "optimiser",
        low=0,
        high=1,
        high_open=True,
    )
    optimizer: str = _field("adamw", "optimiser", "choice", "optimiser", choices=OPTIMIZERS)
    lr: float = _field(
        1e-3,
        "learning rate (the peak rate with onecycle)",
        "float",
        "optimiser",
        low=0,
        high=10,
        low_open=True,
    )
    momentum: float = _field(
        0.9, "momentum for sgd and rmsprop", "float", "optimiser", low=0, high=1, high_open=True
    )
    nesterov: bool = _field(False, "Nesterov momentum (sgd with momentum > 0)", "bool", "optimiser")
    weight_decay: float = _field(
        1e-4,
        "weight decay (L2 for sgd/adam/rmsprop, decoupled for adamw)",
        "float",
        "optimiser",
        low=0,
        high=1,
    )
    beta1: float = _field(
        0.9,
        "first moment decay for adam and adamw",
        "float",
        "optimiser",
        low=0,
        high=1,
        high_open=True,
    )
    beta2: float = _field(
        0.999,
        "second moment decay for adam and adamw",
        "float",
        "optimiser",
        low=0,
        high=1,
        high_open=True,
    )
    grad_clip: float = _field(
        0.0, "clip the gradient norm to this value (0: off)", "float", "optimiser", low=0, high=1e6
    )
    # Schedule
    schedule: str = _field(
        "cosine", "learning-rate schedule over the run", "choice", "schedule", choices=SCHEDULES
    )
    step_size: int = _field(
        2, "epochs between decays (step schedule)", "int", "schedule", low=1, high=10000
    )
    gamma: float = _field(
        0.5, "decay factor (step schedule)", "float", "schedule", low=0, high=1, low_open=True
    )
    # Training
    epochs: int = _field(5, "passes over the training set", "int", "training", low=1, high=10000)
    batch_size: int = _field(128, "training batch size", "int", "training", low=1, high=65536)
    eval_batch_size: int = _field(
        1000, "batch size for evaluation", "int", "training", low=1, high=65536
    )
    augment: bool = _field(False, "random flip and crop of training batches", "bool", "training")
    crop_padding: int = _field(
        2, "padding for the random crop, in pixels", "int", "training", low=0, high=8
    )
    normalize: bool = _field(
        True, "standardise pixels with the dataset mean and std", "bool", "training"
    )
    seed: int = _field(
        0,
        "random seed for weights, shuffling and augmentation",
        "int",
        "training",
        low=0,
        high=2**32 - 1,
    )
    train_subset: int = _field(
        0, "train on this many images (0: all)", "int", "training", low=0, high=10**9
    )
    test_subset: int = _field(
        0, "evaluate on this many test images (0: all)", "int", "training", low=0, high=10**9
    )
    log_every: int = _field(
        20, "batches between progress events", "int", "training", low=1, high=100000
    )
    # System
    device: str = _field("auto", "device: auto picks cuda, then mps, then cpu", "device", "system")
    precision: str = _field(
        "fp32", "bf16/fp16 use autocast (fp16 on cuda only)", "choice", "system", choices=PRECISIONS
    )
    runs_dir: str = _field("runs", "folder that holds one folder per run", "text", "system")
    name: str = _field("", "a label for the run, part of its folder name", "text", "system")
    # Data
    data: str = _field(
        "fashion-mnist",
        "dataset: Fashion-MNIST or a CSV + image folder",
        "choice",
        "data",
        choices=DATA_SOURCES,
    )
    data_dir: str = _field(
        "", "folder with the Fashion-MNIST IDX files (empty: search)", "text", "data"
    )
    custom_csv: str = _field("", "custom data: CSV of filename,label rows", "text", "data")
    custom_images: str = _field("", "custom data: folder holding the images", "text", "data")
    custom_test_csv: str = _field(
        "", "custom data: CSV of test rows (empty: split off test_fraction)", "text", "data"
    )
    classes_file: str = _field("", "custom data: class names, one per line", "text", "data")
    test_fraction: float = _field(
        0.2,
        "custom data: share held out for testing",
        "float",
        "data",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    image_size: int = _field(
        28, "custom data: images are made this many pixels square", "int", "data", low=8, high=256
    )
    resize: str = _field(
        "resize",
        "custom data: other-sized images are resized, padded/cropped, or rejected",
        "choice",
        "data",
        choices=RESIZE_POLICIES,
    )
    color: str = _field(
        "grayscale",
        "custom data: colour images are converted or rejected",
        "choice",
        "data",
        choices=COLOR_POLICIES,
    )

    def __post_init__(self) -> None:
        problems = []
        for spec in FIELDS.values():
            value, problem = _check(spec, getattr(self, spec.name))
            if problem:
                problems.append(problem)
            else:
                object.__setattr__(self, spec.name, value)
        if not problems:
            problems = self._cross_checks()
        if problems:
            raise ConfigError(problems)

    def _cross_checks(self) -> list[str]:
        problems = []
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            problems.append(
                f"nesterov: true needs optimizer sgd with momentum > 0 "
                f"(got optimizer {self.optimizer}, momentum {_num(self.momentum)})"
            )
        if self.label_smoothing > 0 and self.loss != "cross_entropy":
            problems.append(
                f"label_smoothing: {_num(self.label_smoothing)} works with loss cross_entropy "
                f"only (got loss {self.loss})"
            )
        if self.precision == "fp16" and not (
            self.device == "auto" or self.device.startswith("cuda")
        ):
            problems.append(
                f"precision: fp16 needs a cuda device (got device {self.device}); "
                "use bf16 or fp32 here"
            )
        if self.data == "custom":
            for name in ("custom_csv", "custom_images"):
                if not getattr(self, name):
                    problems.append(f"{name}: required when data is custom")
        return problems

    # --- conversion -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for spec in FIELDS.values():
            value = getattr(self, spec.name)
            out[spec.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, base: TrainConfig | None = None) -> TrainConfig:
        """Build from a mapping of field values; unknown keys are rejected."""
        if not isinstance(values, dict):
            raise ConfigError([f"expected a table of settings, got {type(values).__name__}"])
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigError(
                [
                    f"unknown setting {key!r}"
                    + (f" (did you mean {close!r}?)" if (close := _closest(key)) else "")
                    for key in unknown
                ]
            )
        merged = (base or cls()).to_dict()
        merged.update(values)
        return cls(**merged)

    def with_text(self, texts: dict[str, str]) -> TrainConfig:
        """Apply values typed as text (form fields, CLI flags), reporting every problem."""
        values, problems = {}, []
        for name, text in texts.items():
            try:
                values[name] = parse_text(name, text)
            except ConfigError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigError(problems)
        return self.from_dict(values, base=self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_toml(self) -> str:
        lines = []
        for key, value in self.to_dict().items():
            lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> None:
        """Write as TOML when the name ends in .toml, JSON otherwise."""
        path = Path(path)
        path.write_text(self.to_toml() if path.suffix == ".toml" else self.to_json())

    @classmethod
    def load(cls, path: str | Path, *, base: TrainConfig | None = None) -> TrainConfig:
        """Read a JSON or TOML config file; every problem names the file."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(
                [f"{path}: cannot read config file ({exc.strerror or exc})"]
            ) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}: not a text file"]) from None
        try:
            values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            kind = "TOML" if path.suffix == ".toml" else "JSON"
            # A config.yaml (say) is read as JSON: say which formats there are.
            formats = (
                "" if path.suffix in (".json", ".toml") else "; config files are JSON or .toml"
            )
            raise ConfigError([f"{path}: not valid {kind} ({exc}){formats}"]) from None
        try:
            return cls.from_dict(values, base=base)
        except ConfigError as exc:
            raise ConfigError([f"{path}: {p}" for p in exc.problems]) from None

    def summary(self) -> str:
        """One line with the settings that matter most, for logs and tables."""
        sizes = "-".join(map(str, self.hidden_sizes))
        return (
            f"{self.model} [{sizes}] {self.activation} · {self.loss} · {self.optimizer} "
            f"lr {self.lr:g} · batch {self.batch_size} · {self.epochs} epochs"
        )


FIELDS: dict[str, FieldSpec] = {
    f.name: FieldSpec(
        name=f.name,
        default=f.default,
        **{k: v for k, v in f.metadata.items()},
    )
    for f in dataclasses.fields(TrainConfig)
}

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # The PyTorch basics tutorial exactly: NeuralNetwork, CrossEntropyLoss, SGD lr 1e-3,
    # batch 64, 5 epochs, ToTensor scaling only.
    "tutorial": {
        "model": "mlp",
        "hidden_sizes": (512, 512),
        "activation": "relu",
        "dropout": 0.0,
        "loss": "cross_entropy",
        "label_smoothing": 0.0,
        "optimizer": "sgd",
        "lr": 1e-3,
        "momentum": 0.0,
        "nesterov": False,
        "weight_decay": 0.0,
        "grad_clip": 0.0,
        "schedule": "none",
        "epochs": 5,
        "batch_size": 64,
        "eval_batch_size": 64,
        "augment": False,
        "normalize": False,
    },
    "cnn": {"model": "cnn", "hidden_sizes": (128,), "dropout": 0.25, "epochs": 5},
    "quick": {"epochs": 1, "train_subset": 5000, "test_subset": 1000},
}

PRESET_HELP = {
    "default": "MLP 512-512, AdamW, cosine schedule, 5 epochs",
    "tutorial": "the PyTorch basics tutorial: SGD lr 1e-3, batch 64, 5 epochs",
    "cnn": "small conv net, about 92% in 5 epochs",
    "quick": "one epoch on 5,000 images, for a first look",
}


def preset(name: str) -> TrainConfig:
    """The named preset as a config (``ConfigError`` for an unknown name)."""
    if name not in PRESETS:
        raise ConfigError([f"preset: unknown preset {name!r}; choose from {', '.join(PRESETS)}"])
    return TrainConfig.from_dict(dict(PRESETS[name]))


def parse_text(name: str, text: str) -> Any:
    """Turn typed text into a field's value, or raise ``ConfigError`` saying what is allowed."""
    spec = FIELDS.get(name)
    if spec is None:
        raise ConfigError([f"unknown setting {name!r}"])
    raw = text.strip()
    bad = ConfigError([f"{name}: got {text!r}; expected {spec.allowed()}"])
    if spec.kind == "int":
        if not re.fullmatch(r"[+-]?\d+", raw.replace("_", "")):
            raise bad
        value: Any = int(raw.replace("_", ""))
    elif spec.kind == "float":
        try:
            value = float(raw)
        except ValueError:
            raise bad from None
    elif spec.kind == "bool":
        lowered = raw.lower()
        if lowered in ("true", "yes", "on", "1"):
            value = True
        elif lowered in ("false", "no", "off", "0"):
            value = False
        else:
            raise bad
    elif spec.kind == "ints":
        parts = [p for p in re.split(r"[,\s]+", raw) if p]
        if not parts or not all(re.fullmatch(r"[+-]?\d+", p) for p in parts):
            raise bad
        value = tuple(int(p) for p in parts)
    elif spec.kind == "choice":
        value = raw.lower()
        if value not in spec.choices and value.replace("-", "_") in spec.choices:
            value = value.replace("-", "_")
    elif spec.kind == "device":
        value = raw.lower()
    else:
        value = raw
    checked, problem = _check(spec, value)
    if problem:
        raise ConfigError([problem])
    return checked


def _check(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    """Validate one value of the right Python type; return it (normalised) or a problem."""

    def problem() -> tuple[Any, str]:
        return value, f"{spec.name}: got {value!r}; expected {spec.allowed()}"

    if spec.kind == "bool":
        return (value, None) if isinstance(value, bool) else problem()
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return problem()
        return (value, None) if _in_bounds(spec, value) else problem()
    if spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return problem()
        if not math.isfinite(value) or not _in_bounds(spec, value):
            return problem()
        return float(value), None
    if spec.kind == "ints":
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= spec.max_items:
            return problem()
        if any(
            isinstance(v, bool) or not isinstance(v, int) or not _in_bounds(spec, v) for v in value
        ):
            return problem()
        return tuple(value), None
    if spec.kind == "choice":
        return (value, None) if isinstance(value, str) and value in spec.choices else problem()
    if spec.kind == "device":
        ok = isinstance(value, str) and DEVICE_PATTERN.match(value)
        return (value, None) if ok else problem()
    if not isinstance(value, str) or "\x00" in value or len(value) > 4096:
        return problem()
    if spec.name == "name" and not NAME_PATTERN.match(value):
        return problem()
    if spec.name == "runs_dir" and not value.strip():
        return value, f"runs_dir: must not be empty; expected {spec.allowed()}"
    return value, None


def _in_bounds(spec: FieldSpec, value: float) -> bool:
    if spec.low is not None and (value <= spec.low if spec.low_open else value < spec.low):
        return False
    return not (
        spec.high is not None and (value >= spec.high if spec.high_open else value > spec.high)
    )


ALIASES = {
    "learning_rate": "lr",
    "optimiser": "optimizer",
    "scheduler": "schedule",
    "lr_schedule": "schedule",
    "hidden": "hidden_sizes",
    "hidden_size": "hidden_sizes",
    "batch": "batch_size",
    "epoch": "epochs",
    "wd": "weight_decay",
    "architecture": "model",
}


def _closest(key: str) -> str | None:
    import difflib

    if key in ALIASES:
        return ALIASES[key]
    matches = difflib.get_close_matches(key, list(FIELDS), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)
