"""``TrainConfig``: every hyperparameter, its default, bounds and help, in one place.

The app's form, the CLI's flags and config files are all built from the field
specs here (``FIELDS``; what each spec means is in ``engine.fields``), so the three
never drift. Values are validated on construction; a ``ConfigError`` lists every
problem, each naming the field, the value given and what is allowed. Text from a form
field or a flag goes through ``parse_text`` (``parse_texts`` for a whole form), values
from a JSON/TOML file through the same checks. No torch import: this module is cheap.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import files
from engine.errors import ConfigError
from engine.fields import (
    ACTIVATIONS,
    ALIASES,
    ALPHA_POLICIES,
    COLOR_POLICIES,
    COLOR_SOURCES,
    DATA_SOURCES,
    DEVICE_PATTERN,
    EARLY_STOPPING,
    LOSSES,
    MODELS,
    NAME_PATTERN,
    OPTIMIZERS,
    PRECISIONS,
    RESIZE_POLICIES,
    SCHEDULES,
    FieldSpec,
    absolute_model_reference,
    check_field,
    closest_name,
    epochs_text,
    model_label,
    number,
    parse_field,
    setting,
    shown,
)
from engine.presets import PRESET_HELP, PRESETS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

# The field specs and presets live in engine.fields and engine.presets; their names are
# exported from here as well, where callers have always imported them.
__all__ = [
    "ACTIVATIONS",
    "ALIASES",
    "ALPHA_POLICIES",
    "COLOR_POLICIES",
    "DATA_SOURCES",
    "DEVICE_PATTERN",
    "EARLY_STOPPING",
    "FIELDS",
    "LOSSES",
    "MODELS",
    "NAME_PATTERN",
    "OPTIMIZERS",
    "PRECISIONS",
    "PRESETS",
    "PRESET_HELP",
    "RESIZE_POLICIES",
    "SCHEDULES",
    "STORED_DEFAULTS",
    "FieldSpec",
    "TrainConfig",
    "parse_text",
    "parse_texts",
    "preset",
]


# The settings that name files or folders of the data, and the TensorBoard folder
# (``TrainConfig.with_absolute_paths``).
ABSOLUTE_PATH_FIELDS = (
    "data_dir",
    "custom_csv",
    "custom_images",
    "custom_test_csv",
    "classes_file",
    "tensorboard",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Construct it to validate it."""

    # Model
    model: str = setting(
        "mlp",
        "network: mlp, cnn, resnet, or your own factory(image_shape=(C, H, W), "
        "num_classes=K) returning an nn.Module of logits, as package.module:factory or "
        "path/to/file.py:factory (your code, imported only when given as --model)",
        "model",
        "model",
        choices=MODELS,
    )
    hidden_sizes: tuple[int, ...] = setting(
        (512, 512), "sizes of the hidden fully-connected layers", "ints", "model", low=1, high=16384
    )
    conv_channels: tuple[int, ...] = setting(
        (32, 64),
        "channels of each conv block (cnn) or residual block (resnet)",
        "ints",
        "model",
        low=1,
        high=1024,
        max_items=4,
    )
    activation: str = setting(
        "relu", "activation after each hidden layer", "choice", "model", choices=ACTIVATIONS
    )
    dropout: float = setting(
        0.0,
        "dropout probability after each hidden layer",
        "float",
        "model",
        low=0,
        high=1,
        high_open=True,
    )
    # Loss and optimiser
    loss: str = setting(
        "cross_entropy",
        "loss function (nll adds LogSoftmax, mse trains softmax outputs on one-hot targets)",
        "choice",
        "optimiser",
        choices=LOSSES,
    )
    label_smoothing: float = setting(
        0.0,
        "label smoothing for cross entropy",
        "float",
        "optimiser",
        low=0,
        high=1,
        high_open=True,
    )
    optimizer: str = setting("adamw", "optimiser", "choice", "optimiser", choices=OPTIMIZERS)
    lr: float = setting(
        1e-3,
        "learning rate (the peak rate with onecycle)",
        "float",
        "optimiser",
        low=0,
        high=10,
        low_open=True,
    )
    momentum: float = setting(
        0.9, "momentum for sgd and rmsprop", "float", "optimiser", low=0, high=1, high_open=True
    )
    nesterov: bool = setting(
        False, "Nesterov momentum (sgd with momentum > 0)", "bool", "optimiser"
    )
    weight_decay: float = setting(
        1e-4,
        "weight decay (L2 for sgd/adam/rmsprop, decoupled for adamw)",
        "float",
        "optimiser",
        low=0,
        high=1,
    )
    beta1: float = setting(
        0.9,
        "first moment decay for adam and adamw",
        "float",
        "optimiser",
        low=0,
        high=1,
        high_open=True,
    )
    beta2: float = setting(
        0.999,
        "second moment decay for adam and adamw",
        "float",
        "optimiser",
        low=0,
        high=1,
        high_open=True,
    )
    grad_clip: float = setting(
        0.0, "clip the gradient norm to this value (0: off)", "float", "optimiser", low=0, high=1e6
    )
    # Schedule
    schedule: str = setting(
        "cosine",
        "learning-rate schedule over the run (plateau drops the rate by gamma when the "
        "validation loss stalls, so its preview shows the starting rate flat)",
        "choice",
        "schedule",
        choices=SCHEDULES,
    )
    step_size: int = setting(
        2, "epochs between decays (step schedule)", "int", "schedule", low=1, high=10000
    )
    gamma: float = setting(
        0.5,
        "decay factor (step and plateau schedules)",
        "float",
        "schedule",
        low=0,
        high=1,
        low_open=True,
    )
    plateau_patience: int = setting(
        2,
        "the plateau schedule multiplies the rate by gamma after more than this many "
        "epochs in a row without a better validation loss (the test loss without a "
        "validation split), by torch's ReduceLROnPlateau rule (relative threshold 1e-4)",
        "int",
        "schedule",
        low=0,
        high=10000,
    )
    # Training
    epochs: int = setting(5, "passes over the training set", "int", "training", low=1, high=10000)
    batch_size: int = setting(128, "training batch size", "int", "training", low=1, high=65536)
    eval_batch_size: int = setting(
        1000, "batch size for evaluation", "int", "training", low=1, high=65536
    )
    augment: bool = setting(False, "random flip and crop of training batches", "bool", "training")
    crop_padding: int = setting(
        2, "padding for the random crop, in pixels", "int", "training", low=0, high=8
    )
    tta: bool = setting(
        False,
        "flip test-time augmentation at evaluation: average the logits of each image and "
        "its mirror",
        "bool",
        "training",
    )
    normalize: bool = setting(
        True, "standardise pixels with the dataset mean and std", "bool", "training"
    )
    seed: int = setting(
        0,
        "random seed for weights, shuffling and augmentation",
        "int",
        "training",
        low=0,
        high=2**32 - 1,
    )
    train_subset: int = setting(
        0, "train on this many images (0: all)", "int", "training", low=0, high=10**9
    )
    test_subset: int = setting(
        0, "evaluate on this many test images (0: all)", "int", "training", low=0, high=10**9
    )
    val_fraction: float = setting(
        0.1,
        "share of the training images held out, seeded, to choose the best epoch on "
        "(0: none, the test split chooses)",
        "float",
        "training",
        low=0,
        high=0.9,
    )
    early_stopping: str = setting(
        "none",
        "end the run when this validation figure has not improved by more than min_delta "
        "for patience epochs in a row (none: off); without a validation split the test "
        "split's figure, as for the best epoch",
        "choice",
        "training",
        choices=EARLY_STOPPING,
    )
    patience: int = setting(
        3, "epochs without improvement before early stopping", "int", "training", low=1, high=10000
    )
    min_delta: float = setting(
        0.0,
        "early stopping counts an epoch as an improvement when it beats the best by more "
        "than this (accuracy as 0..1, or loss)",
        "float",
        "training",
        low=0,
        high=1e6,
    )
    save_top_k: int = setting(
        1,
        "keep the checkpoints of the best k epochs as best-eNN.pt (NN: the epoch), by "
        "the figure best.pt is chosen on (best.pt stays the best; 1: best.pt only)",
        "int",
        "training",
        low=1,
        high=100,
    )
    log_every: int = setting(
        20, "batches between progress events", "int", "training", low=1, high=100000
    )
    # System
    device: str = setting(
        "auto",
        "device: auto picks cuda (the GPU with the most free memory), then mps, then cpu",
        "device",
        "system",
    )
    precision: str = setting(
        "auto",
        "auto: bf16 autocast where the device computes bf16 natively, else fp32 "
        "(a run records what auto chose); bf16/fp16 use autocast (fp16 on cuda only)",
        "choice",
        "system",
        choices=PRECISIONS,
    )
    nproc_per_node: int = setting(
        1,
        "processes training the run together, one per GPU (DistributedDataParallel, "
        "launched by torchrun); batch_size is each one's; device must then be auto, cuda "
        "or cpu",
        "int",
        "system",
        low=1,
        high=64,
    )
    tensorboard: str = setting(
        "",
        "folder for TensorBoard event files, written as the run goes (empty: off; "
        "needs the [tensorboard] extra)",
        "text",
        "system",
    )
    runs_dir: str = setting("runs", "folder that holds one folder per run", "text", "system")
    name: str = setting("", "a label for the run, part of its folder name", "text", "system")
    # Data
    data: str = setting(
        "fashion-mnist",
        "dataset: Fashion-MNIST, a CSV + image folder (custom), a CSV of pixel rows "
        "(csv-pixels) or a folder per class (image-folder)",
        "choice",
        "data",
        choices=DATA_SOURCES,
    )
    data_dir: str = setting(
        "", "folder with the Fashion-MNIST IDX files (empty: search)", "text", "data"
    )
    custom_csv: str = setting(
        "",
        "custom data: CSV of filename,label rows (csv-pixels: label,pixel1.. rows)",
        "text",
        "data",
    )
    custom_images: str = setting(
        "",
        "custom data: folder holding the images (image-folder: a folder per class)",
        "text",
        "data",
    )
    custom_test_csv: str = setting(
        "", "custom data: CSV of test rows (empty: split off test_fraction)", "text", "data"
    )
    classes_file: str = setting("", "custom data: class names, one per line", "text", "data")
    test_fraction: float = setting(
        0.2,
        "custom data: share held out for testing",
        "float",
        "data",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    image_size: int = setting(
        28, "custom data: images are made this many pixels square", "int", "data", low=8, high=256
    )
    resize: str = setting(
        "resize",
        "custom data: other-sized images are resized, padded/cropped, or rejected",
        "choice",
        "data",
        choices=RESIZE_POLICIES,
    )
    color: str = setting(
        "grayscale",
        "custom data: colour images are converted to grey, rejected, or kept as rgb (3 channels)",
        "choice",
        "data",
        choices=COLOR_POLICIES,
    )
    alpha: str = setting(
        "auto",
        "custom data: transparency; auto takes a uniform-colour image's alpha as grey, "
        "else composites over black",
        "choice",
        "data",
        choices=ALPHA_POLICIES,
    )

    def __post_init__(self) -> None:
        problems = []
        for spec in FIELDS.values():
            value, problem = check_field(spec, getattr(self, spec.name))
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
                f"(got optimizer {self.optimizer}, momentum {number(self.momentum)})"
            )
        if self.label_smoothing > 0 and self.loss != "cross_entropy":
            problems.append(
                f"label_smoothing: {number(self.label_smoothing)} works with loss cross_entropy "
                f"only (got loss {self.loss})"
            )
        if self.precision == "fp16" and not (
            self.device == "auto" or self.device.startswith("cuda")
        ):
            problems.append(
                f"precision: fp16 needs a cuda device (got device {self.device}); "
                "use bf16 or fp32 here"
            )
        from engine.distributed import device_problem

        spread = device_problem(self.device, self.nproc_per_node)
        if spread:
            problems.append(f"nproc_per_node: {spread}")
        needs = {
            # custom_images too, unless the CSV holds pixels: the loader says so.
            "custom": ("custom_csv",),
            "csv-pixels": ("custom_csv",),
            "image-folder": ("custom_images",),
        }
        for name in needs.get(self.data, ()):
            if not getattr(self, name):
                problems.append(f"{name}: required when data is {self.data}")
        if self.color == "rgb" and self.data not in COLOR_SOURCES:
            problems.append(
                f"color: rgb keeps the colour of image files, and {self.data} data is grey; "
                f"use rgb with data {' or '.join(COLOR_SOURCES)}, or color grayscale"
            )
        return problems

    # --- conversion -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, in declaration order; tuples become lists (JSON/TOML-ready)."""
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
                    f"unknown setting {shown(key)}"
                    + (
                        f" (did you mean {close!r}?)"
                        if (close := closest_name(key, FIELDS))
                        else ""
                    )
                    for key in unknown
                ]
            )
        merged = (base or cls()).to_dict()
        merged.update(values)
        return cls(**merged)

    @classmethod
    def from_stored(cls, values: dict[str, Any]) -> TrainConfig:
        """A run's recorded settings (its ``config.json``, a checkpoint's ``config``), as
        ``from_dict`` reads them, except that a setting added since the run was recorded
        takes the value that reproduces that run (``STORED_DEFAULTS``), not today's
        default: a run recorded before ``val_fraction`` existed had no validation split,
        and resumes without one."""
        if isinstance(values, dict):
            values = {**{k: v for k, v in STORED_DEFAULTS.items() if k not in values}, **values}
        return cls.from_dict(values)

    def with_text(self, texts: dict[str, str]) -> TrainConfig:
        """Apply values typed as text (form fields, CLI flags), reporting every problem."""
        config, problems = parse_texts(texts, base=self)
        if config is None:
            raise ConfigError(problems)
        return config

    def with_absolute_paths(self) -> TrainConfig:
        """This config with its data paths (``data_dir``, ``custom_csv``,
        ``custom_images``, ``custom_test_csv``, ``classes_file``), the ``tensorboard``
        folder and the file of a ``path/to/file.py:factory`` model made absolute against
        the current folder (symlinks kept as named; empty ones stay empty), so a run made
        from one folder resumes, predicts, is inspected and writes its event files from any
        other."""
        changes = {
            name: os.path.abspath(value)
            for name in ABSOLUTE_PATH_FIELDS
            if (value := getattr(self, name))
        }
        if absolute_model_reference(self.model) != self.model:
            changes["model"] = absolute_model_reference(self.model)
        return dataclasses.replace(self, **changes) if changes else self

    def to_json(self) -> str:
        """``to_dict`` as indented JSON, ending in a newline."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_toml(self) -> str:
        """``to_dict`` as TOML ``key = value`` lines, ending in a newline."""
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
        """Read a JSON or TOML config file; every problem names the file. A top-level
        ``search`` table (the search space, ``engine.search_space``) is ignored."""
        path = Path(path)
        try:
            text = files.read_input_text(path)
        except OSError as exc:
            raise ConfigError(
                [f"{path}: cannot read config file ({exc.strerror or exc})"]
            ) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}: not a text file"]) from None
        try:
            values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        # The decode errors are ValueErrors; so is a number of over 4,300 digits.
        except ValueError as exc:
            kind = "TOML" if path.suffix == ".toml" else "JSON"
            # A config.yaml (say) is read as JSON: say which formats there are.
            formats = (
                "" if path.suffix in (".json", ".toml") else "; config files are JSON or .toml"
            )
            why = str(exc).split(";")[0] if "integer string conversion" in str(exc) else exc
            raise ConfigError([f"{path}: not valid {kind} ({why}){formats}"]) from None
        if isinstance(values, dict):
            # The search space (engine.search_space) shares the file; training ignores it.
            values.pop("search", None)
        try:
            return cls.from_dict(values, base=base)
        except ConfigError as exc:
            raise ConfigError([f"{path}: {p}" for p in exc.problems]) from None

    def summary(self) -> str:
        """One line with the settings that matter most, for logs and tables: the model
        with the sizes it is built from (``mlp [512-512] relu``, ``cnn conv [32-64] fc
        [128] relu``, ``resnet conv [16-32-64] relu``: ``engine.models``' builders), or a
        factory of the user's own by its name alone (``small_cnn``: the sizes and the
        activation are not its), then loss, optimiser, rate, batch and epochs."""

        def sizes(values: tuple[int, ...]) -> str:
            return "[" + "-".join(map(str, values)) + "]"

        if self.model == "mlp":
            model = f"mlp {sizes(self.hidden_sizes)} {self.activation}"
        elif self.model == "cnn":
            hidden = sizes(self.hidden_sizes)
            model = f"cnn conv {sizes(self.conv_channels)} fc {hidden} {self.activation}"
        elif self.model == "resnet":  # no hidden layers: its head is one linear layer
            model = f"resnet conv {sizes(self.conv_channels)} {self.activation}"
        else:
            model = model_label(self.model)
        return (
            f"{model} · {self.loss} · {self.optimizer} "
            f"lr {self.lr:g} · batch {self.batch_size} · {epochs_text(self.epochs)}"
        )


# Settings added after runs were first recorded, with the value that reproduces what a run
# recorded without them did (see ``TrainConfig.from_stored``).
STORED_DEFAULTS: dict[str, Any] = {"val_fraction": 0.0}

FIELDS: dict[str, FieldSpec] = {
    f.name: FieldSpec(
        name=f.name,
        default=f.default,
        **{k: v for k, v in f.metadata.items()},
    )
    for f in dataclasses.fields(TrainConfig)
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
        raise ConfigError([f"unknown setting {shown(name)}"])
    return parse_field(spec, text)


def parse_texts(
    texts: Mapping[str, str], base: TrainConfig | None = None
) -> tuple[TrainConfig | None, list[str]]:
    """Values typed as text (form fields, CLI flags) applied to ``base`` (default: defaults).

    Returns the config and no problems, or None and the problems: those of the fields
    that do not parse or, when all of them do, those of the config as a whole. The form
    and ``TrainConfig.with_text`` both go through here, so they report alike.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, text in texts.items():
        try:
            values[name] = parse_text(name, text)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        return None, problems
    try:
        return TrainConfig.from_dict(values, base=base), []
    except ConfigError as exc:
        return None, exc.problems


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)
