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
    # Chosen on the validation split (val_fraction 0.1, seed 0; scripts/bench_cnn.py
    # train) for the best accuracy in under 2 minutes of a 2-core AVX2 CPU: conv 16-32
    # (2.5x the images a second of 32-64 there) with AdamW, onecycle to 3e-3, label
    # smoothing 0.1: 92.4% on validation after 5 epochs (79 s), where 32-64 had 91.4% at
    # 73 s. Flip-TTA without flipped training lowered it (83%).
    "cnn": {
        "model": "cnn",
        "conv_channels": (16, 32),
        "hidden_sizes": (128,),
        "dropout": 0.25,
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 0.05,
        "schedule": "onecycle",
        "batch_size": 128,
        "label_smoothing": 0.1,
        "augment": False,
        "tta": False,
        "epochs": 5,
    },
    # Chosen on the validation split (val_fraction 0.1, seed 0; scripts/bench_cnn.py
    # train) for the best accuracy in about 3 minutes of a 2-core AVX2 CPU: ResNet-8 with
    # a pooling stem, widths 24-48-96 (1.5x the images a second of 16-32-64 without the
    # pool), AdamW with onecycle to 3e-3, label smoothing 0.1, 4 epochs: 93.2% on
    # validation. Flip augmentation with flip-TTA was 1.4 points lower after 4 epochs
    # (91.8%): too short a run to gain from it; TTA without flipped training is lower still.
    "resnet": {
        "model": "resnet",
        "conv_channels": (24, 48, 96),
        "dropout": 0.0,
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 0.05,
        "schedule": "onecycle",
        "batch_size": 128,
        "label_smoothing": 0.1,
        "augment": False,
        "tta": False,
        "epochs": 4,
    },
    # The notes' MLP for accuracy per second, chosen on the validation split (val_fraction
    # 0.1, seed 0; a 2-core AVX2 CPU): batch 256 (1.5x the samples/s of 128 there), AdamW
    # with onecycle to 3e-3 (lr 2e-3: 0.2 points lower). 3 epochs (2026-12-03): 89.2% on
    # validation, where 2 epochs gave 88.8% and a test accuracy under 88% on seeds 0-2
    # (the test split runs about a point below validation); 4 epochs gave 89.3%.
    "fast": {
        "model": "mlp",
        "hidden_sizes": (512, 512),
        "optimizer": "adamw",
        "lr": 3e-3,
        "schedule": "onecycle",
        "batch_size": 256,
        "epochs": 3,
    },
    "quick": {"epochs": 1, "train_subset": 5000, "test_subset": 1000},
}

PRESET_HELP = {
    "default": "MLP 512-512, AdamW, cosine schedule, 5 epochs",
    "tutorial": "the PyTorch basics tutorial: SGD lr 1e-3, batch 64, 5 epochs",
    "cnn": "small conv net (16-32), about 91.6% in 5 epochs",
    "resnet": "small residual net (ResNet-8), about 92.7% in 4 epochs",
    "fast": "the PyTorch tutorial's 784-512-512-10 MLP tuned for accuracy per second: "
    "batch 256, onecycle, 3 epochs",
    "quick": "one epoch on 5,000 images, for a first look",
}
