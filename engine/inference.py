"""Predicting with a trained model: softmax probabilities and argmax classes.

``Predictor.from_run`` loads a run's best (or last) checkpoint with
``weights_only=True``; ``predict`` takes uint8 images as the dataset stores them and
applies the same scaling the model was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.config import TrainConfig
from engine.errors import CheckpointError
from engine.fields import clip

if TYPE_CHECKING:
    import torch

    from engine.runs import Run


@dataclass(frozen=True)
class Prediction:
    """What a model makes of N images."""

    probabilities: np.ndarray  # float32, N x classes; rows sum to 1
    classes: np.ndarray  # int64, N: the argmax of each row


class Predictor:
    """A model in eval mode with what it needs to read raw images."""

    def __init__(
        self,
        model: torch.nn.Module,
        config: TrainConfig,
        classes: tuple[str, ...],
        device: torch.device,
    ) -> None:
        self.model = model
        self.config = config
        self.classes = classes
        self.device = device
        self.checkpoint = ""
        """Which of a run's checkpoints this is ("best" or "last"; "" when not from a run)."""
        self.note = ""
        """Why a run's ``last.pt`` stands in for an unusable ``best.pt`` (a line for the
        user: ``best.pt is a FIFO, not a regular file; using last.pt (epoch 1, batch 8)``),
        or ""."""

    @classmethod
    def from_checkpoint(
        cls, state: dict[str, Any], device: str = "cpu", source: str = ""
    ) -> Predictor:
        """The model a checkpoint's ``state`` holds, on ``device`` (auto, cpu, cuda:N, ...).

        ``source`` names the checkpoint in messages. Raises ``CheckpointError`` when the
        state lacks the config, classes, image shape or weights, or they do not fit
        together, and ``DeviceError`` when ``device`` is not present here.
        """
        from engine.device import select_device
        from engine.models import build_model, weights_mismatch

        where = source or "checkpoint"
        try:
            config = TrainConfig.from_dict(state["config"])
            classes = tuple(str(c) for c in state["classes"])
            image_shape = (int(state["image_shape"][0]), int(state["image_shape"][1]))
            torch_device = select_device(device)
            model = build_model(config, image_shape, len(classes))
            mismatch = weights_mismatch(model, state["model"])
            if mismatch:
                raise CheckpointError(f"{where}: does not hold a usable model: {mismatch}")
            model.load_state_dict(state["model"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            # One line, however many lines torch wrote.
            raise CheckpointError(
                f"{where}: does not hold a usable model ({clip(str(exc))})"
            ) from None
        model.to(torch_device).eval()
        return cls(model, config, classes, torch_device)

    @classmethod
    def from_run(cls, run: Run | str | Path, which: str = "best", device: str = "cpu") -> Predictor:
        """The ``which`` model of a run, or of the run folder at a path.

        ``which`` is "best" (falling back to "last") or "last". Raises ``CheckpointError``
        when the folder is not a run or the checkpoint is missing, corrupt or not one of
        ours, and ``DeviceError`` for an absent device.
        """
        from engine.checkpoint import load_checkpoint
        from engine.runs import Run

        if not isinstance(run, Run):
            run = Run.open(run)
        path, why = run.checkpoint_path(which)
        state = load_checkpoint(path)
        predictor = cls.from_checkpoint(state, device, str(path))
        predictor.checkpoint = "best" if path == run.best_path else "last"
        if why:
            epoch, batch = state.get("epoch"), state.get("batch")
            predictor.note = (
                f"{run.best_path.name} {why}; using {path.name} (epoch {epoch}, batch {batch})"
            )
        return predictor

    def predict(self, images: np.ndarray | torch.Tensor, batch_size: int = 1000) -> Prediction:
        """Probabilities and classes for uint8 images (N x H x W, or one H x W image).

        The images are taken as the dataset stores them (pixels 0-255) and scaled as the
        model was trained; ``batch_size`` bounds the images on the device at once.
        Raises ``ValueError`` for an array of another rank.
        """
        import torch

        from engine.data import model_input
        from engine.models import probabilities

        tensor = torch.as_tensor(np.asarray(images) if isinstance(images, np.ndarray) else images)
        if tensor.ndim == 2:
            tensor = tensor.unsqueeze(0)
        if tensor.ndim != 3:
            raise ValueError(f"expected N x H x W images, got shape {tuple(tensor.shape)}")
        outputs = []
        with torch.inference_mode():
            for start in range(0, tensor.shape[0], batch_size):
                chunk = tensor[start : start + batch_size].to(self.device, non_blocking=True)
                x = model_input(chunk, self.config.normalize)
                outputs.append(probabilities(self.model(x).float(), self.config.loss).cpu())
        probs = torch.cat(outputs) if outputs else torch.zeros(0, len(self.classes))
        return Prediction(probs.numpy().astype(np.float32), probs.argmax(1).numpy())


def best_checkpoint_note(run: Run) -> str:
    """Whether ``run``'s ``best.pt`` still holds a usable model, in words for a message
    about a failed resume: intact (its epoch and accuracy), missing, or why not."""
    from engine.checkpoint import load_checkpoint

    path = run.best_path
    if not path.is_file():
        return f"there is no {path.name} in {run.path}"
    try:
        state = load_checkpoint(path)
        Predictor.from_checkpoint(state, "cpu", str(path))
    except CheckpointError as exc:
        return f"{path.name} is not usable either ({exc})"
    epoch, accuracy = state.get("epoch"), state.get("best_accuracy")
    saved = f"epoch {epoch}" if isinstance(epoch, int) else "its epoch unknown"
    if isinstance(accuracy, float):
        saved += f", test accuracy {accuracy:.4f}"
    return (
        f"{path.name} is intact ({saved}): `fmnist-tui predict` and `fmnist-tui export` "
        "still use it"
    )
