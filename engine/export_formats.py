"""The exported files themselves: a run's network written as a state dict, ONNX, pt2
(``torch.export``) or TorchScript, quietly.

Every format but the state dict holds ``ExportedModel``: the network together with its
flip test-time augmentation when the run used it (``engine.models.predict_logits``), so
the file predicts as the run's ``Predictor`` does. Each takes float32
N x C x H x W images with a dynamic batch dimension N (``torch.export.Dim``), scaled as
``preprocessing.json`` says. This module imports torch; ``engine.export`` imports it
only when a model is written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from engine.files import atomic_write
from engine.models import predict_logits

# The example batch the exporters trace with: torch.export specialises sizes 0 and 1,
# so the example has 2 images and the batch dimension is declared dynamic from 1 up.
EXAMPLE_BATCH = 2
INPUT_NAME = "images"
# torch's and ONNX Script's loggers: the exporters report their progress on them.
_CHATTY_LOGGERS = ("torch.onnx", "torch.export", "torch._export", "torch._dynamo", "onnxscript")


class ExportedModel(nn.Module):
    """The run's network as a standalone file holds it: ``forward(images)`` takes float32
    N x C x H x W and returns the network's N x classes outputs (logits, log-probabilities
    or probabilities, by the run's loss). With ``tta`` they are the mean of the outputs
    for each image and its mirror image (``x.flip(-1)``), as the run's evaluation made them.
    """

    def __init__(self, model: nn.Module, tta: bool) -> None:
        super().__init__()
        self.model = model
        self.tta = tta

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return predict_logits(self.model, images, tta=self.tta)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep the exporters' progress lines, warnings (TorchScript's deprecation, pt2's
    archive notes) and log records off the user's screen while inside."""
    loggers = [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _example(channels: int, image_shape: tuple[int, int]) -> tuple[torch.Tensor]:
    return (torch.zeros(EXAMPLE_BATCH, channels, *image_shape),)


def _dynamic_batch() -> tuple[dict[int, object]]:
    return ({0: torch.export.Dim("batch", min=1)},)


def write_state_dict(model: nn.Module, path: Path) -> None:
    """The network's ``state_dict`` (loads with ``weights_only=True`` into the network
    ``engine.models.build_model`` makes from the run's config); ``OSError``."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write(path, buffer.getvalue())


def write_onnx(
    module: ExportedModel,
    channels: int,
    image_shape: tuple[int, int],
    path: Path,
    output_name: str,
) -> None:
    """``module`` through ``torch.onnx.export(dynamo=True, external_data=False)``: one
    ``.onnx`` file holding the weights, input ``images`` (float32, batch dynamic) and one
    output named ``output_name``. Needs onnx and onnxscript; ``OSError``, and the
    exporter's own errors for a network it cannot translate."""
    with quiet():
        program = torch.onnx.export(
            module,
            _example(channels, image_shape),
            dynamo=True,
            external_data=False,
            dynamic_shapes=_dynamic_batch(),
            input_names=[INPUT_NAME],
            output_names=[output_name],
            verbose=False,
        )
        assert program is not None  # dynamo=True always returns the program
        data = program.model_proto.SerializeToString()
    atomic_write(path, data)


def write_pt2(
    module: ExportedModel, channels: int, image_shape: tuple[int, int], path: Path
) -> None:
    """``torch.export.export`` of ``module`` (batch dynamic) saved by ``torch.export.save``:
    load it with ``torch.export.load(path).module()``; ``OSError``."""
    with quiet():
        program = torch.export.export(
            module, _example(channels, image_shape), dynamic_shapes=_dynamic_batch()
        )
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
    atomic_write(path, buffer.getvalue())


def write_torchscript(
    module: ExportedModel, channels: int, image_shape: tuple[int, int], path: Path
) -> None:
    """``torch.jit.trace`` of ``module``, saved by ``torch.jit.save`` (both deprecated by
    torch in favour of ``torch.export``; their warnings are kept quiet); ``OSError``."""
    with quiet():
        # torch.jit.trace has no annotations in torch's own typing.
        scripted = torch.jit.trace(module, _example(channels, image_shape))  # type: ignore[no-untyped-call]
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
    atomic_write(path, buffer.getvalue())
