"""Small synthetic data and configs shared by the engine tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.config import TrainConfig
from engine.data import DataSource, ImageData, Split


def synthetic(n_train: int = 512, n_test: int = 128, seed: int = 0) -> ImageData:
    """Ten classes, each a bright bar in its own row band: learnable in one epoch."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> Split:
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 * label + 4 : 2 * label + 6, 4:24] = 250
        return Split(images, labels.astype(np.int64))

    return ImageData(
        make(n_train),
        make(n_test),
        tuple(str(i) for i in range(10)),
        DataSource("custom", Path("synthetic")),
    )


def cfg(tmp_path, **overrides) -> TrainConfig:
    base = {
        "epochs": 2,
        "batch_size": 32,
        "runs_dir": str(tmp_path / "runs"),
        "hidden_sizes": (64,),
        "log_every": 4,
        "device": "cpu",
    }
    base.update(overrides)
    return TrainConfig(**base)
