"""Exporting a run's model, and its metrics, for use outside fmnist-tui.

``export_model`` writes any of ``FORMATS`` into ``RUN/export`` (or another folder):

- ``state_dict``: ``model_state_dict.pt``, the weights as a plain ``state_dict`` that
  loads with ``weights_only=True`` into the network ``build_model`` makes from the run's
  config;
- ``onnx``: ``model.onnx`` from ``torch.onnx.export(dynamo=True, external_data=False)``,
  one file holding the weights, for ONNX Runtime and other runtimes (needs the
  ``[export]`` extra: onnx and onnxscript);
- ``pt2``: ``model.pt2`` from ``torch.export.export`` and ``torch.export.save``, loaded
  with ``torch.export.load`` (no fmnist-tui needed);
- ``torchscript``: ``model.torchscript.pt`` from ``torch.jit.trace`` (deprecated by torch
  2.14 in favour of ``torch.export``; written only when asked).

The three whole-model formats take float32 N x C x H x W images with any batch size N.
``preprocessing.json`` beside them says exactly how an image file becomes that input
(the decode of ``engine.decode.decode_image`` under the run's policies, then the scaling
of ``engine.data.model_input``) and what the output is. ``write_metrics_csv`` writes the
run's epochs as ``metrics.csv``. Torch is imported only when a model is written.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import io
import json
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.data import MEAN, STD
from engine.decode import FORMATS as IMAGE_FORMATS
from engine.errors import CheckpointError, EngineError
from engine.events import EpochEnd
from engine.files import atomic_write, write_problem
from engine.inference import Predictor
from engine.runs import Run

if TYPE_CHECKING:
    from engine.export_formats import ExportedModel

# Export formats, in the order their files are written and listed.
FORMATS = ("state_dict", "onnx", "pt2", "torchscript")
DEFAULT_FORMATS = ("state_dict", "onnx")
FILE_NAMES = {
    "state_dict": "model_state_dict.pt",
    "onnx": "model.onnx",
    "pt2": "model.pt2",
    "torchscript": "model.torchscript.pt",
}
PREPROCESSING_NAME = "preprocessing.json"
METRICS_NAME = "metrics.csv"
METRICS_FORMATS = ("csv",)
EXTRA_COMMAND = "pip install 'fmnist-tui[export]'"
# What each loss makes the network output, and how that becomes probabilities.
OUTPUTS = {
    "cross_entropy": ("logits", "softmax over dimension 1"),
    "nll": ("log_probabilities", "exp"),
    "mse": ("probabilities", "none: they are the softmax already"),
}
# metrics.csv's first columns; every other scalar of an epoch event follows, in its order.
METRICS_LEADING = (
    "epoch",
    "epochs",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "lr",
    "epoch_seconds",
)


class ExportError(EngineError):
    """An export cannot be made: an unknown format, a missing extra (the message gives the
    pip command), or an exporter that cannot translate the network (the message names the
    format and the exporter's reason)."""


def parse_formats(values: Iterable[str]) -> tuple[str, ...]:
    """The formats named in ``values``, each a name or a comma-separated list of names
    (``["onnx,pt2", "torchscript"]``), in ``FORMATS`` order without repeats.

    Raises ``ExportError`` for an unknown name, or an empty one (``"onnx,,pt2"``, ``""``),
    saying which are allowed.
    """
    names = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                allowed = f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}"
                raise ExportError(f"--format: an empty name in {value!r}; give {allowed}")
            if name not in FORMATS:
                raise ExportError(
                    f"unknown export format {name!r}: choose from {', '.join(FORMATS)} "
                    "(several comma-separated, e.g. --format onnx,pt2)"
                )
            names.append(name)
    return tuple(f for f in FORMATS if f in names)


def missing_extra(formats: Iterable[str]) -> str | None:
    """Why ``formats`` cannot be written here, or None: ``onnx`` needs the onnx and
    onnxscript packages (the ``[export]`` extra); the message ends with the pip command.
    Looks the packages up without importing them (``importlib.util.find_spec``), so it is
    quick enough to ask before every export."""
    if "onnx" not in formats:
        return None
    missing = [name for name in ("onnx", "onnxscript") if not _installed(name)]
    if not missing:
        return None
    names = " and ".join(missing)
    return f"--format onnx needs {names} (the [export] extra), not installed here: {EXTRA_COMMAND}"


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # a broken entry in sys.modules
        return False


def export_model(
    run: Run | str | Path,
    which: str = "best",
    out_dir: str | Path | None = None,
    note: Callable[[str], None] | None = None,
    *,
    formats: Sequence[str] = DEFAULT_FORMATS,
    metrics: str | None = None,
    model_factory: str | None = None,
) -> list[Path]:
    """Write the run's ``which`` model in each of ``formats`` (see ``FORMATS``; default
    state_dict and onnx) to ``out_dir`` (default: ``RUN/export``), with
    ``preprocessing.json``; with ``metrics="csv"`` also ``metrics.csv`` (``formats`` may
    then be empty: only the metrics are written and no checkpoint is read).

    ``which`` is "best" (falling back to "last") or "last". Returns the paths written, in
    ``FORMATS`` order, then ``preprocessing.json``, then ``metrics.csv``.

    An export of a model replaces the previous one in that folder: once the new files are
    written, the model files of ``FILE_NAMES`` it did not write are removed (and ``note``
    is told which), so every model file there is the checkpoint ``preprocessing.json``
    names. No other file is removed; ``metrics.csv`` is rewritten only when asked for, and
    an export of the metrics alone leaves the model files as they are.

    Raises ``ExportError`` for an unknown format or metrics kind, a missing ``[export]``
    extra (before anything is read or written) or an exporter's failure;
    ``CheckpointError`` when the run or its checkpoint is missing or unusable, when the
    run has not trained yet (its only checkpoint is from before the first batch), when
    ``RUN/export`` is a symlink or not a folder (the default folder is never followed out
    of the run; ``out_dir`` is used as given), when ``out_dir`` is a file or inside one,
    and when the folder cannot be written ("cannot write in DIR: Read-only file system").
    ``note`` is told when ``last.pt`` stands in for an unusable ``best.pt``
    (``Predictor.note``); ``preprocessing.json`` records the checkpoint used.
    ``model_factory`` is passed to ``Predictor.from_run``: a run of the user's own model
    is loaded only when it names that model's factory.
    """
    formats = parse_formats(formats)
    if metrics is not None and metrics not in METRICS_FORMATS:
        raise ExportError(f"unknown metrics format {metrics!r}: choose csv")
    if not formats and metrics is None:
        raise ExportError(f"nothing to export: give a format ({', '.join(FORMATS)}) or metrics")
    problem = missing_extra(formats)
    if problem:
        raise ExportError(problem)
    if not isinstance(run, Run):
        run = Run.open(run)
    target = Path(out_dir) if out_dir is not None else run.path / "export"
    inside_run = out_dir is None
    # Before the model loads: a folder that cannot take the files is said at once.
    if inside_run:
        _refuse_all_but_a_folder(target)
    existing = _nearest_existing(target)
    if not existing.is_dir():
        what = "is a file" if existing == target else f"is inside {existing}, a file"
        raise CheckpointError(f"--out {out_dir} {what}; give a folder (it is made if missing)")
    problem = write_problem(existing)
    if problem:
        raise CheckpointError(f"cannot write in {existing}: {problem}")
    predictor = None
    if formats:
        predictor = Predictor.from_run(run, which=which, device="cpu", model_factory=model_factory)
        if predictor.checkpoint == "last":
            _refuse_untrained(run)
        if predictor.note and note is not None:
            note(predictor.note)
        predictor.model.eval()
    try:
        _make_folder(target, inside_run=inside_run)
    except OSError as exc:
        raise CheckpointError(
            f"cannot write in {_nearest_existing(target)}: {exc.strerror or exc}"
        ) from None
    try:
        written = _write_models(run, predictor, formats, target) if predictor else []
        if metrics is not None:
            written.append(write_metrics_csv(run, target / METRICS_NAME))
        removed = _remove_other_models(target, formats) if formats else []
    except OSError as exc:
        raise CheckpointError(f"cannot write in {target}: {exc.strerror or exc}") from None
    if removed and note is not None:
        note(f"removed {', '.join(removed)} of an earlier export from {target}")
    return written


def _refuse_untrained(run: Run) -> None:
    """``CheckpointError`` when ``last.pt`` is from before the first batch (epoch 0,
    batch 0): its weights are the initial ones. A run stopped later in epoch 1 exports."""
    from engine.checkpoint import load_checkpoint
    from engine.fields import is_model_reference

    state = load_checkpoint(run.last_path)
    if state.get("epoch") == 0 and state.get("batch") == 0:
        command = f"fmnist-tui train --resume {run.id}"
        with contextlib.suppress(EngineError):
            model = run.config().model
            if is_model_reference(model):
                command += f" --model {model}"
        raise CheckpointError(
            f"run {run.id} has not trained yet (its only checkpoint is from before the "
            f"first batch); resume it first: {command}"
        )


def _remove_other_models(target: Path, formats: Sequence[str]) -> list[str]:
    """Remove the model files of ``FILE_NAMES`` in ``target`` that are not ``formats``'
    (an earlier export's); returns their names. A folder of such a name is left."""
    removed = []
    for fmt, name in FILE_NAMES.items():
        path = target / name
        if fmt in formats or not os.path.lexists(path) or path.is_dir():
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed


def _make_folder(target: Path, *, inside_run: bool) -> None:
    """Make ``target``; inside a run folder it must be a real folder, not a symlink."""
    if not inside_run:
        target.mkdir(parents=True, exist_ok=True)
        return
    with contextlib.suppress(FileExistsError):
        target.mkdir()
    _refuse_all_but_a_folder(target)


def _refuse_all_but_a_folder(target: Path) -> None:
    """``CheckpointError`` unless ``target`` is missing or a real folder (not a symlink)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        what = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
        raise CheckpointError(
            f"cannot export into {target}: it is {what}, and a run's export stays inside "
            "its folder; remove it, or give another folder with --out"
        )


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def _write_models(
    run: Run, predictor: Predictor, formats: Sequence[str], target: Path
) -> list[Path]:
    from engine import export_formats as writers

    model = predictor.model
    module = writers.ExportedModel(model, predictor.config.tta).eval()
    shape, channels = predictor.image_shape, predictor.channels
    output_name = OUTPUTS[predictor.config.loss][0]
    written = []
    for fmt in formats:
        path = target / FILE_NAMES[fmt]
        if fmt == "state_dict":
            writers.write_state_dict(model, path)
        else:
            _write_whole(fmt, writers, module, channels, shape, path, output_name)
        written.append(path)
    info = preprocessing_info(predictor, run.id, formats)
    info_path = target / PREPROCESSING_NAME
    atomic_write(info_path, (json.dumps(info, indent=2) + "\n").encode())
    return [*written, info_path]


def _write_whole(
    fmt: str,
    writers: Any,
    module: ExportedModel,
    channels: int,
    shape: tuple[int, int],
    path: Path,
    output_name: str,
) -> None:
    """One whole-model format; an exporter's failure (not a write's) is an ``ExportError``."""
    try:
        if fmt == "onnx":
            writers.write_onnx(module, channels, shape, path, output_name)
        elif fmt == "pt2":
            writers.write_pt2(module, channels, shape, path)
        else:
            writers.write_torchscript(module, channels, shape, path)
    except OSError:
        raise
    except Exception as exc:  # the exporters raise many kinds, with pages of text
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(
            f"cannot export to {fmt}: {first[:200]}; the other formats "
            f"({', '.join(f for f in FORMATS if f != fmt)}) may work"
        ) from None


def scale_constants(normalize: bool) -> tuple[float, float]:
    """(multiply, subtract): the float32 constants ``engine.data.scale_input`` applies,
    ``x = float32(pixel) * multiply - subtract`` (each step rounded to float32), which is
    ``(pixel / 255 - MEAN) / STD`` when normalising and ``pixel / 255`` when not."""
    import numpy as np

    if normalize:
        return float(np.float32(1.0 / (255.0 * STD))), float(np.float32(MEAN / STD))
    return float(np.float32(1.0 / 255.0)), 0.0


def preprocessing_info(
    predictor: Predictor, run_id: str, formats: Sequence[str] = DEFAULT_FORMATS
) -> dict[str, Any]:
    """What ``preprocessing.json`` holds: how to turn an image file into the exported
    model's input (the decode of ``engine.decode.decode_image`` with the run's ``resize``,
    ``color`` and ``alpha`` policies and image size, then ``engine.data.model_input``'s
    scaling), the input's name, dtype and shape, the output's kind and the class names.
    Plain JSON values; ``formats`` names the files it describes."""
    import torch

    config = predictor.config
    height, width = predictor.image_shape
    channels = predictor.channels
    multiply, subtract = scale_constants(config.normalize)
    output_name, to_probabilities = OUTPUTS[config.loss]
    tta = (
        "included in model.onnx, model.pt2 and model.torchscript.pt: their outputs are the "
        "mean of the network's outputs for each image and its mirror image (x.flip(-1)); "
        "with model_state_dict.pt, average model(x) and model(x.flip(-1)) yourself"
        if config.tta
        else None
    )
    return {
        "format": "fmnist-tui-preprocessing",
        "version": 2,
        "run": run_id,
        "checkpoint": predictor.checkpoint,
        "files": {fmt: FILE_NAMES[fmt] for fmt in formats},
        "input": {
            "name": "images",
            "dtype": "float32",
            "shape": ["batch", channels, height, width],
            "layout": "N x C x H x W",
            "channels": ["R", "G", "B"] if channels == 3 else ["grey"],
        },
        "decode": _decode_info(config.color, config.alpha, config.resize, (height, width)),
        "scale": {
            "multiply": multiply,
            "subtract": subtract,
            "formula": "x = float32(pixel) * multiply - subtract, each step in float32",
            "normalize": {"mean": MEAN, "std": STD} if config.normalize else None,
            "meaning": "(pixel / 255 - mean) / std, the same mean and std for every channel"
            if config.normalize
            else "pixel / 255",
        },
        "output": {
            "name": output_name,
            "kind": output_name.replace("_", "-"),
            "shape": ["batch", len(predictor.classes)],
            "to_probabilities": to_probabilities,
        },
        "test_time_augmentation": tta,
        "classes": list(predictor.classes),
        "computes_in": "float32",
        "run_precision": config.precision,
        "torch": torch.__version__,
    }


def _decode_info(color: str, alpha: str, resize: str, size: tuple[int, int]) -> dict[str, Any]:
    """``engine.decode.decode_image``'s steps under these policies, for preprocessing.json."""
    height, width = size
    colour_step = {
        "grayscale": "if R, G and B are equal at every pixel take R; otherwise the "
        "luminance (299 R + 587 G + 114 B + 500) // 1000 in integers (ITU-R BT.601)",
        "reject": "refuse an image whose R, G and B differ anywhere; a grey one is its R",
        "rgb": "keep R, G, B (H x W x 3); a grey image is copied into three equal channels",
    }[color]
    alpha_step = {
        "auto": "if the colour is the same at every pixel and the alpha varies (a "
        "silhouette), the alpha is the grey value; otherwise composite over black: "
        "(c * a + 127) // 255 per channel, in integers",
        "over-black": "composite over black: (c * a + 127) // 255 per channel, in integers",
        "over-white": "composite over white: (c * a + 255 * (255 - a) + 127) // 255 per "
        "channel, in integers",
        "ignore": "drop the alpha channel",
    }[alpha]
    size_step = {
        "resize": f"if not {width}x{height}: PIL.Image.fromarray(pixels).resize(({width}, "
        f"{height}), PIL.Image.Resampling.BILINEAR) (antialiased when shrinking)",
        "pad": f"if not {width}x{height}: centre on a black {width}x{height} canvas, "
        "cropping what does not fit (offsets (size - canvas) // 2)",
        "reject": f"refuse an image that is not {width}x{height}",
    }[resize]
    return {
        "reader": "Pillow",
        "formats": list(IMAGE_FORMATS),
        "color": color,
        "alpha": alpha,
        "resize": resize,
        "size": [height, width],
        "steps": [
            "open with Pillow (PNG, JPEG, GIF or WebP; one frame); if the image carries an "
            "orientation (EXIF or XMP), apply it with PIL.ImageOps.exif_transpose",
            "16-bit samples (modes I;16*, I): clip to 0..65535 and keep the high byte, value >> 8",
            "modes: I;16*, I are 16-bit grey (above); P and RGB with a transparency entry "
            "become RGBA, L and 1 with one become LA; then 1 becomes L, L is grey, LA and La "
            "are grey plus alpha, RGBA, RGBa and PA are RGB plus alpha (via convert('RGBA')), "
            "and every other mode becomes RGB (convert('RGB'))",
            "transparency, only where some alpha is below 255 (alpha=" + alpha + "): " + alpha_step,
            "colour (color=" + color + "): " + colour_step,
            "size (resize=" + resize + "): " + size_step,
            "uint8 H x W (x 3) to float32 1 x C x H x W (channels first), then scale",
        ],
    }


def write_metrics_csv(run: Run, path: Path) -> Path:
    """The run's epochs from ``metrics.jsonl`` as CSV at ``path`` (atomically): one header
    row, one row per epoch event, every scalar field of ``EpochEnd`` (``METRICS_LEADING``
    first, then the others in the event's order, ``time`` last: Unix seconds); lists
    (per-class figures, the confusion matrix) are left out. Values are written plainly
    (floats in full, None as an empty cell, booleans as true/false, as in JSON). Returns
    ``path``; ``OSError``."""
    epochs = run.read_metrics().epochs
    columns = metrics_columns(epochs)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for event in epochs:
        writer.writerow({k: _cell(v) for k, v in dataclasses.asdict(event).items()})
    atomic_write(path, buffer.getvalue().encode())
    return path


def metrics_columns(epochs: Sequence[EpochEnd] = ()) -> list[str]:
    """metrics.csv's columns: the scalar fields of ``EpochEnd`` (the class's own, and any
    scalar key of ``epochs``' events), ``METRICS_LEADING`` first and ``time`` last."""
    names = [f.name for f in dataclasses.fields(EpochEnd) if f.name != "time"]
    scalars = [n for n in names if not _is_list_field(n)]
    for event in epochs:
        for key, value in dataclasses.asdict(event).items():
            if key not in scalars and key != "time" and not isinstance(value, list | dict):
                scalars.append(key)
    leading = [n for n in METRICS_LEADING if n in scalars]
    return [*leading, *(n for n in scalars if n not in leading), "time"]


def _is_list_field(name: str) -> bool:
    hint = str(next(f.type for f in dataclasses.fields(EpochEnd) if f.name == name))
    return hint.startswith(("list", "dict"))


def _cell(value: Any) -> Any:
    """A CSV cell: None empty, booleans as JSON's true/false, the rest as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
