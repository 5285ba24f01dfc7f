"""The named presets: settings that differ from ``TrainConfig``'s defaults, with a line each.

Pure data, so the CLI's ``--preset`` help and the app's preset list can show them
without building a config; ``engine.config.preset(name)`` makes one into a config.
"""

from __future__ import annotations

from typing import Any

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
        # fp32, as the notes train: auto would pick bf16 on a CPU with native bf16.
        "precision": "fp32",
        # The notes have no validation split: the test split is all they evaluate on.
        "val_fraction": 0.0,
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
