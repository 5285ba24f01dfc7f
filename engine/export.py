"""Exporting a run's model for use outside fmnist-tui.

Two files per export: ``model_state_dict.pt`` (the weights, a plain ``state_dict`` that
loads with ``weights_only=True`` into the network ``build_model`` makes from the run's
config) and ``model.torchscript.pt`` (the network and weights together, loadable with
``torch.jit.load`` and no fmnist-tui installed). Both take images scaled and
normalised as the run trained on them: see ``preprocessing.json`` beside them.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import warnings
from collections.abc import Callable
from pathlib import Path

from engine.data import MEAN, STD
from engine.errors import CheckpointError
from engine.files import atomic_write, write_problem
from engine.inference import Predictor
from engine.runs import Run


def export_model(
    run: Run | str | Path,
    which: str = "best",
    out_dir: str | Path | None = None,
    note: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write the run's ``which`` model to ``out_dir`` (default: ``RUN/export``).

    ``which`` is "best" (falling back to "last") or "last". Returns the paths written:
    the state dict, the TorchScript module (taking float32 N x C x H x W, C = 3 for a run
    trained with ``color="rgb"``, else 1) and
    ``preprocessing.json``. Raises ``CheckpointError`` when the run or its checkpoint
    is missing or unusable, when ``RUN/export`` is a symlink or not a folder (the
    default folder is never followed out of the run; ``out_dir`` is used as given),
    and when the folder cannot be written ("cannot write in DIR: Read-only file system").
    ``note`` is told when ``last.pt`` stands in for an unusable ``best.pt``
    (``Predictor.note``); ``preprocessing.json`` records the checkpoint used.
    """
    if not isinstance(run, Run):
        run = Run.open(run)
    target = Path(out_dir) if out_dir is not None else run.path / "export"
    inside_run = out_dir is None
    # Before the model loads: a folder that cannot take the files is said at once.
    if inside_run:
        _refuse_all_but_a_folder(target)
    existing = _nearest_existing(target)
    problem = write_problem(existing)
    if problem:
        raise CheckpointError(f"cannot write in {existing}: {problem}")
    predictor = Predictor.from_run(run, which=which, device="cpu")
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
        return _write_export(run, predictor, which, target)
    except OSError as exc:
        raise CheckpointError(f"cannot write in {target}: {exc.strerror or exc}") from None


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


def _write_export(run: Run, predictor: Predictor, which: str, target: Path) -> list[Path]:
    import io

    import torch

    model = predictor.model
    weights = io.BytesIO()
    torch.save(model.state_dict(), weights)
    state_path = target / "model_state_dict.pt"
    atomic_write(state_path, weights.getvalue())

    h, w = (int(v) for v in run.load_checkpoint(predictor.checkpoint)["image_shape"])
    c = predictor.channels
    example = torch.zeros(2, c, h, w)
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export, but it is still the one
        # format that loads anywhere with a bare `torch.jit.load`.
        warnings.simplefilter("ignore")
        # torch.jit.trace has no annotations in torch's own typing.
        scripted = torch.jit.trace(model, example)  # type: ignore[no-untyped-call]
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
    script_path = target / "model.torchscript.pt"
    atomic_write(script_path, buffer.getvalue())

    info = {
        "run": run.id,
        "checkpoint": predictor.checkpoint,
        "input": f"float32 N x {c} x {h} x {w}",
        "channels": "R, G, B" if c == 3 else "grey",
        "scale": "pixel / 255",
        # The same mean and std for every channel.
        "normalize": {"mean": MEAN, "std": STD} if predictor.config.normalize else None,
        "output": {"cross_entropy": "logits", "nll": "log-probabilities", "mse": "probabilities"}[
            predictor.config.loss
        ],
        "classes": list(predictor.classes),
    }
    info_path = target / "preprocessing.json"
    atomic_write(info_path, (json.dumps(info, indent=2) + "\n").encode())
    return [state_path, script_path, info_path]
