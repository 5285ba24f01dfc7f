"""What one setting accepts: ``FieldSpec``, the allowed choices, and the one validator.

``TrainConfig`` declares its fields with ``setting``, which stores a ``FieldSpec``'s
parts in the dataclass field's metadata; ``engine.config`` builds ``FIELDS`` from them.
``parse_field`` turns typed text into a value and ``check_field`` validates a value of
the right Python type, so a form field, a CLI flag and a config file are checked by the
same code. No torch import: this module is cheap.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.errors import ConfigError

MODELS = ("mlp", "cnn", "resnet")
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
SCHEDULES = ("none", "cosine", "step", "onecycle", "plateau")
# What early stopping watches (``none``: off); both are figures of the validation split.
EARLY_STOPPING = ("none", "val_accuracy", "val_loss")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DATA_SOURCES = ("fashion-mnist", "custom", "csv-pixels", "image-folder")
RESIZE_POLICIES = ("resize", "pad", "reject")
COLOR_POLICIES = ("grayscale", "reject", "rgb")
# The data kinds whose images can be in colour (``color = "rgb"``); the others are grey.
COLOR_SOURCES = ("custom", "image-folder")
ALPHA_POLICIES = ("auto", "over-black", "over-white", "ignore")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{0,64}$")
# A model from the user's code: ``package.module:factory`` (a module on sys.path).
MODEL_MODULE_PATTERN = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$", re.ASCII)


@dataclass(frozen=True)
class FieldSpec:
    """What a field accepts, for validation, form widgets and CLI flags alike.

    ``low`` and ``high`` bound numbers and each item of an "ints" list (inclusive unless
    ``low_open`` / ``high_open``); ``choices`` lists a "choice" field's values;
    ``max_items`` caps the length of an "ints" list.
    """

    name: str
    kind: str  # "int", "float", "bool", "choice", "ints", "text", "device", "model"
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
        if self.kind == "model":
            return (
                "one of "
                + ", ".join(self.choices)
                + ", or your own factory: package.module:factory or path/to/file.py:factory"
            )
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
            parts.append(f"{'greater than' if self.low_open else 'at least'} {number(self.low)}")
        if self.high is not None:
            parts.append(f"{'less than' if self.high_open else 'at most'} {number(self.high)}")
        return noun + (" " + " and ".join(parts) if parts else "")


# A setting's name in words, where taking its key apart ("hidden_sizes": "Hidden sizes")
# does not say it well; the form shows these, and the key in its help.
LABELS = {
    "lr": "Learning rate",
    "beta1": "Beta 1",
    "beta2": "Beta 2",
    "nesterov": "Nesterov",
    "tta": "Test-time flip",
    "val_fraction": "Validation share",
    "min_delta": "Min improvement",
    "save_top_k": "Keep best k",
    "runs_dir": "Runs folder",
    "tensorboard": "TensorBoard dir",
    "data": "Data source",
    "data_dir": "Data folder",
    "custom_csv": "Labels CSV",
    "custom_images": "Images folder",
    "custom_test_csv": "Test CSV",
    "classes_file": "Class names file",
    "test_fraction": "Test share",
    "color": "Colour",
    "alpha": "Transparency",
    "precision": "Precision",
    "grad_clip": "Gradient clip",
    "log_every": "Log every",
    "plateau_patience": "Plateau patience",
}


def field_label(name: str) -> str:
    """Setting ``name`` in words, as a form labels it: ``LABELS``' entry, else the key with
    spaces for underscores and a capital first letter ("label_smoothing": "Label
    smoothing"); at most 16 characters."""
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def unused_reason(name: str, values: dict[str, str]) -> str | None:
    """Why setting ``name`` has no effect under the other settings, or None when it has.

    ``values`` holds settings as text, the way a form or a flag gives them (a missing one
    counts as unknown, so nothing is said about what depends on it): momentum with
    adam/adamw, nesterov without sgd, betas without adam/adamw, conv_channels with mlp,
    hidden_sizes with resnet, the model fields with your own factory, each schedule's own
    fields under another schedule, label_smoothing without cross entropy, the early
    stopping fields with early stopping off, crop_padding without augmentation.
    """
    model = values.get("model", "").strip()
    optimizer = values.get("optimizer", "").strip()
    schedule = values.get("schedule", "").strip()
    if name in ("hidden_sizes", "conv_channels", "activation", "dropout") and (
        is_model_reference(model)
    ):
        return "your own model's factory builds the network; this setting is not passed to it"
    if name == "conv_channels" and model == "mlp":
        return "mlp has no conv layers: conv_channels sets cnn and resnet"
    if name == "hidden_sizes" and model == "resnet":
        return "resnet has no hidden layers in its head: hidden_sizes sets mlp and cnn"
    if name == "momentum" and optimizer in ("adam", "adamw"):
        return f"{optimizer} does not use momentum (beta1 plays its part): sgd and rmsprop do"
    if name == "nesterov" and optimizer in OPTIMIZERS and optimizer != "sgd":
        return f"Nesterov momentum is for sgd only (optimizer is {optimizer})"
    if name in ("beta1", "beta2") and optimizer in ("sgd", "rmsprop"):
        return f"{optimizer} does not use {name}: adam and adamw do"
    used_by = {
        "step_size": ("step",),
        "gamma": ("step", "plateau"),
        "plateau_patience": ("plateau",),
    }
    if name in used_by and schedule in SCHEDULES and schedule not in used_by[name]:
        users = " and ".join(used_by[name])
        return f"used by the {users} schedule only (schedule is {schedule})"
    loss = values.get("loss", "").strip()
    if name == "label_smoothing" and loss in LOSSES and loss != "cross_entropy":
        return f"label smoothing works with cross_entropy only (loss is {loss})"
    if name in ("patience", "min_delta") and values.get("early_stopping", "").strip() == "none":
        return "early stopping is off (early_stopping none)"
    if name == "crop_padding" and values.get("augment", "").strip() == "false":
        return "augmentation is off: the random crop pads only when augment is on"
    return None


# Names people type for a setting, mapped to its real name, for "did you mean" hints.
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


def closest_name(key: str, names: Iterable[str]) -> str | None:
    """The setting an unknown ``key`` probably means: an alias, else a close spelling."""
    if key in ALIASES:
        return ALIASES[key]
    if len(key) > 64:  # no setting's name is near it, and difflib would take long to say so
        return None
    matches = difflib.get_close_matches(key, list(names), n=1, cutoff=0.6)
    return matches[0] if matches else None


# Longest echo of a value in a message, in characters: a message stays one readable line
# whatever was typed or stored (a 50 MB string, a list of a million numbers).
SHOWN_LIMIT = 60


def shown(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """``value`` as a message quotes it: its ``repr`` (so control characters show escaped),
    cut to about ``limit`` characters with an ellipsis, and the length of a long text.

    ``'abc'`` stays ``'abc'``; a 50 MB string reads ``'xxxx…' (52,428,800 characters)``.
    Costs time in ``limit``, not in the size of ``value``.
    """
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    short = reprlib.Repr()
    short.maxstring = short.maxother = short.maxlong = limit
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 8
    short.maxlevel = 3
    try:
        text = short.repr(value)
    except ValueError:  # an int too long to print in decimal
        return f"a number of {value.bit_length():,} bits" if isinstance(value, int) else "?"
    return text if len(text) <= limit + 1 else text[:limit] + "…"


def clip(text: str, limit: int = 160) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space), cut
    to ``limit`` characters with an ellipsis: a library's message quoted in ours."""
    flat = " ".join(text[: limit * 4].split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


def epochs_text(count: int) -> str:
    """``count`` epochs as a message says it: ``1 epoch``, ``0 epochs``, ``3 epochs``."""
    return f"{count} epoch" if count == 1 else f"{count} epochs"


def number(x: float) -> str:
    """``x`` as a person writes it in a message: ``3`` rather than ``3.0``, ``1e-05``."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def setting(default: Any, help: str, kind: str, group: str, **spec: Any) -> Any:
    """A dataclass field of ``TrainConfig`` carrying its ``FieldSpec`` parts as metadata.

    ``spec`` takes the optional ``FieldSpec`` attributes (``low``, ``choices``, ...).
    Typed ``Any`` so that each field's annotation, not this call, gives its type.
    """
    return field(default=default, metadata={"kind": kind, "help": help, "group": group, **spec})


def parse_field(spec: FieldSpec, text: str) -> Any:
    """Turn typed text into ``spec``'s value, or raise ``ConfigError`` saying what is allowed.

    "int" gives an ``int`` (``_`` separators allowed), "float" a ``float``, "bool" a
    ``bool`` (true/yes/on/1, false/no/off/0), "ints" a ``tuple[int, ...]`` (commas or
    spaces between), "choice" and "device" lower-case text, "model" a registry name in
    lower case or a factory reference as typed, "text" the text stripped.
    """
    name = spec.name
    raw = text.strip()
    bad = ConfigError([f"{name}: got {shown(text)}; expected {spec.allowed()}"])
    if spec.kind == "int":
        # More digits than Python converts (4,300) is out of every range anyway.
        if not re.fullmatch(r"[+-]?\d{1,4000}", raw.replace("_", "")):
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
        if not parts or not all(re.fullmatch(r"[+-]?\d{1,4000}", p) for p in parts):
            raise bad
        value = tuple(int(p) for p in parts)
    elif spec.kind == "choice":
        value = raw.lower()
        if value not in spec.choices and value.replace("-", "_") in spec.choices:
            value = value.replace("-", "_")
    elif spec.kind == "device":
        value = raw.lower()
    elif spec.kind == "model":  # a registry name in any case; a reference as typed
        value = raw.lower() if raw.lower() in spec.choices else raw
    else:
        value = raw
    checked, problem = check_field(spec, value)
    if problem:
        raise ConfigError([problem])
    return checked


def check_field(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    """Validate one value of the right Python type; return it (normalised) or a problem.

    Normalised: a "float" field's int becomes a ``float``, an "ints" list a tuple. The
    problem, when there is one, reads ``name: got VALUE; expected WHAT``.
    """

    def problem() -> tuple[Any, str]:
        return value, f"{spec.name}: got {shown(value)}; expected {spec.allowed()}"

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
    if spec.kind == "model":
        known = isinstance(value, str) and (value in spec.choices or is_model_reference(value))
        return (value, None) if known else problem()
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


def input_channels(color: str) -> int:
    """Channels of a model's input under the ``color`` policy: 3 for "rgb" (images stored
    uint8 N x H x W x 3, fed as float N x 3 x H x W), else 1 (N x H x W, fed N x 1 x H x W)."""
    return 3 if color == "rgb" else 1


def is_model_reference(value: str) -> bool:
    """Whether ``value`` names a model factory in the user's code, by its form alone:
    ``package.module:factory`` (identifiers joined by dots) or ``path/to/file.py:factory``.

    Nothing is looked up or imported (``engine.own_model`` does that, when asked).
    """
    if len(value) > 4096 or "\x00" in value or "\n" in value:
        return False
    path, sep, name = value.rpartition(":")
    if not sep or not name.isidentifier() or not name.isascii():
        return False
    if path.endswith(".py") and len(path) > 3:
        return True
    return bool(MODEL_MODULE_PATTERN.match(value))


def absolute_model_reference(value: str) -> str:
    """``value`` with the file of a ``path/to/file.py:factory`` reference made absolute
    against the current folder (a run then resumes from any folder); registry names and
    ``package.module:factory`` references are returned as they are."""
    path, _, name = value.rpartition(":")
    if not is_model_reference(value) or not path.endswith(".py"):
        return value
    return f"{os.path.abspath(os.path.expanduser(path))}:{name}"


def model_label(value: str) -> str:
    """A model's name as a run folder's name holds it: a registry name as it is, a
    factory reference as its factory's name (``nets.py:tiny`` gives ``tiny``)."""
    if not is_model_reference(value):
        return value
    return value.rpartition(":")[2][:32]
