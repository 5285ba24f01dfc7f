"""Checkpoint files: written as torch zip archives, loaded only with ``weights_only=True``.

A checkpoint is a dict of tensors and plain data (the format name and version, the
config, the model's and optimiser's ``state_dict``, and a ``TrainState``); loading it
can never run code, whatever the file holds.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from engine import files
from engine.errors import CheckpointError

CHECKPOINT_FORMAT = "fmnist-tui-checkpoint"
CHECKPOINT_VERSION = 1
# Larger than any model this project trains; a bigger file is refused, not read.
CHECKPOINT_LIMIT = 4 << 30


def encode_checkpoint(state: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint holding ``state`` (stamped with format and version)."""
    import torch

    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, buffer)
    return buffer.getvalue()


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; anything else is a ``CheckpointError``.

    Refuses a symlink, a FIFO or other non-regular file, a file over 4 GiB, a pickle
    that asks for code, and a file of another format or version, each with a reason.
    """
    import pickle

    import torch

    path = Path(path)
    try:
        raw = files.read_bytes(path, CHECKPOINT_LIMIT)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        match = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if match:
            raise CheckpointError(
                f"{path}: refused: the file holds objects that could run code when loaded "
                f"(it asks for {match.group(1)}); only tensors and plain data are accepted"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable checkpoint (damaged or not a torch checkpoint)"
        ) from None
    except Exception as exc:  # torch raises several types for a damaged zip or pickle
        raise CheckpointError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:160]})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an fmnist-tui checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('version')} is not supported "
            f"(this fmnist-tui reads version {CHECKPOINT_VERSION})"
        )
    return state
