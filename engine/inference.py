"""Predicting with a trained model: softmax probabilities and argmax classes.

``Predictor.from_run`` loads a run's best (or last) checkpoint with
``weights_only=True``; ``predict`` takes uint8 images as the dataset stores them and
applies the same scaling the model was trained with; ``predict_files`` decodes image
files first, with ``engine.decode.decode_image`` and the run's image shape and policies,
exactly as its custom dataset was decoded for training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.config import TrainConfig
from engine.errors import CheckpointError, DataError, ModelError
from engine.fields import clip, input_channels

if TYPE_CHECKING:
    import torch

    from engine.runs import Run


@dataclass(frozen=True)
class Prediction:
    """What a model makes of N images."""

    probabilities: np.ndarray  # float32, N x classes; rows sum to 1
    classes: np.ndarray  # int64, N: the argmax of each row
    # From ``predict_files``: the decoded images (uint8, N x H x W, or N x H x W x 3 for a
    # run with color="rgb") the model was given,
    # and what decoding did to them ("1 image in colour converted to grayscale").
    images: np.ndarray | None = None
    notes: tuple[str, ...] = field(default=())


class Predictor:
    """A model in eval mode with what it needs to read raw images.

    ``image_shape`` is the (height, width) in pixels of the images it takes, the shape of
    the data it was trained on (28 x 28 for Fashion-MNIST, ``image_size`` for custom data);
    ``channels`` is 3 for a run trained with ``color="rgb"`` (it takes H x W x 3 images),
    else 1.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        config: TrainConfig,
        classes: tuple[str, ...],
        device: torch.device,
        image_shape: tuple[int, int] = (28, 28),
    ) -> None:
        self.model = model
        self.config = config
        self.classes = classes
        self.device = device
        self.image_shape = image_shape
        self.channels = input_channels(config.color)
        self.checkpoint = ""
        """Which of a run's checkpoints this is ("best" or "last"; "" when not from a run)."""
        self.note = ""
        """Why a run's ``last.pt`` stands in for an unusable ``best.pt`` (a line for the
        user: ``best.pt is a FIFO, not a regular file; using last.pt (epoch 1, batch 8)``),
        or ""."""

    @classmethod
    def from_checkpoint(
        cls,
        state: dict[str, Any],
        device: str = "cpu",
        source: str = "",
        *,
        model_factory: str | None = None,
    ) -> Predictor:
        """The model a checkpoint's ``state`` holds, on ``device`` (auto, cpu, cuda:N, ...).

        ``source`` names the checkpoint in messages. A model from the user's code is
        imported only when ``model_factory`` names its factory (``ModelError``
        otherwise; see ``engine.own_model``). Raises ``CheckpointError`` when the
        state lacks the config, classes, image shape or weights, or they do not fit
        together, and ``DeviceError`` when ``device`` is not present here.
        """
        from engine.device import select_device
        from engine.models import build_model, weights_mismatch

        where = source or "checkpoint"
        try:
            config = TrainConfig.from_stored(state["config"])
            classes = tuple(str(c) for c in state["classes"])
            image_shape = (int(state["image_shape"][0]), int(state["image_shape"][1]))
            torch_device = select_device(device)
            model = build_model(config, image_shape, len(classes), model_factory=model_factory)
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
        return cls(model, config, classes, torch_device, image_shape)

    @classmethod
    def from_run(
        cls,
        run: Run | str | Path,
        which: str = "best",
        device: str = "cpu",
        *,
        model_factory: str | None = None,
    ) -> Predictor:
        """The ``which`` model of a run, or of the run folder at a path.

        ``which`` is "best" (falling back to "last") or "last". A run of a model from the
        user's code (``config.json``'s ``model`` a factory reference) is loaded only when
        ``model_factory`` names the same factory: otherwise ``ModelError`` ("run ID trains
        a model from your code (REF); pass --model REF to import it"), raised before
        anything is imported or its checkpoint read; a file that changed since the run
        recorded it is said in ``note``. Raises ``CheckpointError`` when the folder is not
        a run or the checkpoint is missing, corrupt or not one of ours, and
        ``DeviceError`` for an absent device.
        """
        from engine.checkpoint import load_checkpoint
        from engine.config import MODELS
        from engine.runs import Run

        if not isinstance(run, Run):
            run = Run.open(run)
        notes, change = [], ""
        with contextlib.suppress(CheckpointError):  # an unusable config.json: said below
            reference = run.config().model
            if reference not in MODELS:
                from engine import own_model

                own_model.require_trust(reference, model_factory, f"run {run.id} trains")
                source = own_model.locate(reference)
                change = own_model.source_change(run.path, run.id, source)
                notes.append(own_model.source_note(run.path, run.id, source))
        path, why = run.checkpoint_path(which)
        state = load_checkpoint(path)
        stored = state.get("config") if isinstance(state, dict) else None
        stored_model = stored.get("model") if isinstance(stored, dict) else None
        if isinstance(stored_model, str) and stored_model not in MODELS:
            # The checkpoint may name a factory its config.json does not: it is held to
            # the same rule.
            from engine import own_model

            own_model.require_trust(stored_model, model_factory, f"run {run.id} trains")
        try:
            predictor = cls.from_checkpoint(state, device, str(path), model_factory=model_factory)
        except CheckpointError as exc:
            if not change:
                raise
            # Weights that no longer fit the factory's model: its file's change, likely.
            raise CheckpointError(f"{exc}; {change}, the likely cause") from None
        predictor.checkpoint = "best" if path == run.best_path else "last"
        if why:
            epoch, batch = state.get("epoch"), state.get("batch")
            notes.insert(
                0, f"{run.best_path.name} {why}; using {path.name} (epoch {epoch}, batch {batch})"
            )
        predictor.note = "; ".join(note for note in notes if note)
        return predictor

    def predict(
        self, images: np.ndarray | torch.Tensor, batch_size: int | None = None
    ) -> Prediction:
        """Probabilities and classes for uint8 images: N x H x W (or one H x W image), or
        N x H x W x 3 (or one H x W x 3) for a model trained on colour (``channels`` 3).

        The images are taken as the dataset stores them (pixels 0-255) and scaled as the
        model was trained; a run trained with ``tta`` predicts from the mean of each image's
        and its mirror image's outputs, as its evaluation did
        (``engine.models.predict_logits``), in the precision it was trained and evaluated
        in (bf16 or fp16 autocast; ``engine.device.autocast``), in batches of its
        ``eval_batch_size`` unless ``batch_size`` says otherwise (the images on the device
        at once): so it gives the classes the run's evaluation gave.
        Raises ``ValueError`` for an array of another rank, or images of another size
        than ``image_shape``.
        """
        import torch

        from engine.data import model_input
        from engine.models import predict_logits, probabilities

        tensor = torch.as_tensor(np.asarray(images) if isinstance(images, np.ndarray) else images)
        # One image per pixel rank less: H x W grey, H x W x 3 colour.
        extra = (self.channels,) if self.channels != 1 else ()
        if tensor.ndim == 2 + len(extra):
            tensor = tensor.unsqueeze(0)
        h, w = self.image_shape
        wanted = " x ".join(map(str, ("N", h, w, *extra)))
        if tensor.ndim != 3 + len(extra):
            what = "colour" if extra else "grey"
            raise ValueError(
                f"expected {what} N x H x W{' x 3' if extra else ''} images (the model's: "
                f"{wanted}), got shape {tuple(tensor.shape)}"
            )
        if tensor.shape[0] and tuple(tensor.shape[1:]) != (*self.image_shape, *extra):
            raise ValueError(
                f"expected {wanted} images (the model's), got shape {tuple(tensor.shape)}"
            )
        from engine.device import autocast

        batch_size = batch_size or self.config.eval_batch_size
        outputs = []
        with torch.inference_mode():
            for start in range(0, tensor.shape[0], batch_size):
                chunk = tensor[start : start + batch_size].to(self.device, non_blocking=True)
                x = model_input(chunk, self.config.normalize)
                with autocast(self.device, self.config.precision):
                    logits = predict_logits(self.model, x, tta=self.config.tta)
                outputs.append(probabilities(logits.float(), self.config.loss).cpu())
        probs = torch.cat(outputs) if outputs else torch.zeros(0, len(self.classes))
        if self.config.loss in ("nll", "mse"):
            # These models end in their own (log-)softmax: in bf16 its rows sum to 1 only
            # within bf16's precision, and the mean of two log-probability rows (flip-TTA)
            # exp()s to under 1. Scaling a row keeps its class.
            probs = probs / probs.sum(1, keepdim=True)
        return Prediction(probs.numpy().astype(np.float32), probs.argmax(1).numpy())

    def decode_files(self, paths: Sequence[str | Path]) -> tuple[np.ndarray, tuple[str, ...]]:
        """The image files at ``paths`` as this model's input: uint8 N x H x W (N x H x W x 3
        for a colour run), (H, W) = ``image_shape``, decoded by ``engine.decode.decode_image``
        with the run's ``resize``, ``color`` and ``alpha`` policies, as its custom dataset
        was; and notes on what decoding did (e.g. "1 image in colour converted to grayscale").

        Raises ``DataError`` naming the first file that cannot be read or decoded, or that
        the run's policies refuse, and what is allowed.
        """
        from engine.decode import alpha_note, decode_image

        config = self.config
        height, width = self.image_shape
        extra = (self.channels,) if self.channels != 1 else ()
        images = np.zeros((len(paths), height, width, *extra), dtype=np.uint8)
        colour = reduced = resized = 0
        rules: dict[str, int] = {}
        for i, path in enumerate(paths):
            try:
                decoded = decode_image(
                    path,
                    shape=self.image_shape,
                    resize=config.resize,
                    color=config.color,
                    alpha=config.alpha,
                )
            except ValueError as exc:
                raise DataError(f"{path} {exc}{self._refusal(exc)}") from None
            images[i] = decoded.pixels
            colour += decoded.colour
            reduced += decoded.reduced
            resized += decoded.original_size != (width, height)
            if decoded.alpha_rule is not None:
                rules[decoded.alpha_rule] = rules.get(decoded.alpha_rule, 0) + 1
        notes = [
            f"{n} {'image' if n == 1 else 'images'} {what}"
            for n, what in (
                (colour, "in colour converted to grayscale"),
                (reduced, "with 16-bit pixels reduced to 8 bits"),
                (resized, f"{_verb(config.resize)} to {width}x{height}"),
            )
            if n
        ]
        transparency = alpha_note(rules, config.alpha)
        return images, tuple(notes + ([transparency] if transparency else []))

    def _refusal(self, exc: ValueError) -> str:
        """What a policy that refused an image allows, for the message."""
        setting = getattr(exc, "setting", "")
        height, width = self.image_shape
        if setting == "color":
            return "; the run was trained with color=reject: give a grey image"
        if setting == "resize":
            return f"; the run was trained with resize=reject: give a {width}x{height} image"
        return "; give PNG, JPEG, GIF or WebP image files"

    def predict_files(
        self, paths: Sequence[str | Path], batch_size: int | None = None
    ) -> Prediction:
        """Probabilities and classes for the image files at ``paths``, decoded as the run's
        data was (see ``decode_files``); the result holds the decoded ``images`` (uint8
        N x H x W, x 3 for a colour run) and the decoding ``notes``.

        Raises ``DataError`` for a file that cannot be read, decoded or accepted.
        """
        images, notes = self.decode_files(paths)
        prediction = self.predict(images, batch_size)
        return Prediction(prediction.probabilities, prediction.classes, images, notes)


def _verb(resize: str) -> str:
    return "resized" if resize == "resize" else "padded or cropped"


def best_checkpoint_note(run: Run, *, model_factory: str | None = None) -> str:
    """Whether ``run``'s ``best.pt`` still holds a usable model, in words for a message
    about a failed resume: intact (its epoch and accuracy), missing, or why not
    (``model_factory`` as for ``Predictor.from_checkpoint``)."""
    from engine.checkpoint import load_checkpoint

    path = run.best_path
    if not path.is_file():
        return f"there is no {path.name} in {run.path}"
    try:
        state = load_checkpoint(path)
        Predictor.from_checkpoint(state, "cpu", str(path), model_factory=model_factory)
    except (CheckpointError, ModelError) as exc:
        return f"{path.name} is not usable either ({exc})"
    epoch, accuracy = state.get("epoch"), state.get("best_accuracy")
    saved = f"epoch {epoch}" if isinstance(epoch, int) else "its epoch unknown"
    if isinstance(accuracy, float):
        saved += f", test accuracy {accuracy:.4f}"
    return (
        f"{path.name} is intact ({saved}): `fmnist-tui predict` and `fmnist-tui export` "
        "still use it"
    )
