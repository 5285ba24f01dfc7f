"""Optimisers, losses, targets and the learning-rate schedule, built from a ``TrainConfig``.

One copy of each, used by the trainer and the benchmark alike, so the two never
train differently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from engine.config import TrainConfig

if TYPE_CHECKING:
    import torch

LossFunction = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def build_optimizer(
    config: TrainConfig, params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """The config's optimiser (SGD, Adam, AdamW or RMSprop) with every setting it names.

    ``lr`` is the base rate; the loop sets each step's rate from ``learning_rate``.
    SGD, Adam and AdamW use torch's fused kernels (``fused=True``: one kernel for all
    parameters, on CPU and CUDA alike) when every parameter is on a device torch fuses
    for; RMSprop, and parameters elsewhere (mps), use its multi-tensor ``foreach`` path.
    The fused step computes the same update (to rounding) as the per-parameter loop;
    measured 1.22x the samples/s of the unfused AdamW step for the notes' MLP at batch 256
    on a 2-core AVX2 CPU (TECH-NOTES, 2026-12-02).
    """
    import torch

    c = config
    params = list(params)
    fusable = all(p.device.type in ("cpu", "cuda") for p in params)
    speed: dict[str, bool] = {"fused": True} if fusable else {"foreach": True}
    if c.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=c.lr,
            momentum=c.momentum,
            nesterov=c.nesterov,
            weight_decay=c.weight_decay,
            **speed,
        )
    if c.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=c.lr, betas=(c.beta1, c.beta2), weight_decay=c.weight_decay, **speed
        )
    if c.optimizer == "adamw":
        return torch.optim.AdamW(
            params, lr=c.lr, betas=(c.beta1, c.beta2), weight_decay=c.weight_decay, **speed
        )
    return torch.optim.RMSprop(
        params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay, foreach=fusable
    )


def build_loss(config: TrainConfig) -> LossFunction:
    """The loss on (float outputs ``N x C``, targets from ``targets``), reduced by the mean.

    Cross entropy (with the config's label smoothing), NLL (the model ends in
    log-softmax) or MSE (the model ends in softmax; one-hot targets), as in the notes.
    """
    from torch import nn

    if config.loss == "nll":
        return nn.NLLLoss()
    if config.loss == "mse":
        return nn.MSELoss()
    return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)


def targets(config: TrainConfig, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """What the loss compares outputs with: ``labels`` (``N`` int64), or ``N x C`` float32
    one-hot rows for MSE (the notes' ``target_transform``)."""
    if config.loss != "mse":
        return labels
    import torch

    return torch.nn.functional.one_hot(labels, num_classes).float()


def learning_rate(
    config: TrainConfig,
    step: int,
    total_steps: int,
    steps_per_epoch: int,
    *,
    plateau_lr: float | None = None,
) -> float:
    """The learning rate for optimiser step ``step`` (0-based) under the config's schedule.

    ``cosine`` anneals from ``lr`` to 0 over ``total_steps``; ``step`` multiplies by
    ``gamma`` every ``step_size`` epochs; ``onecycle`` warms up from ``lr``/25 over the
    first 30% and anneals to ``lr``/1e4 (the shape of ``torch.optim.lr_scheduler.OneCycleLR``
    with cosine annealing); ``plateau`` is ``plateau_lr``, the rate the run's
    ``ReduceLROnPlateau`` (``plateau_scheduler``) has reached at the last epoch's end, or
    ``lr`` when not given (it cannot be known ahead: it depends on the validation loss);
    anything else is constant.
    """
    base = config.lr
    if config.schedule == "plateau":
        return base if plateau_lr is None else plateau_lr
    progress = min(step / max(total_steps, 1), 1.0)
    if config.schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.schedule == "step":
        return float(base * config.gamma ** ((step // max(steps_per_epoch, 1)) // config.step_size))
    if config.schedule == "onecycle":
        warm = 0.3
        low, floor = base / 25.0, base / 1e4
        if progress < warm:
            return low + (base - low) * 0.5 * (1 - math.cos(math.pi * progress / warm))
        rest = (progress - warm) / (1 - warm)
        return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * rest))
    return base


def plateau_scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """torch's ``ReduceLROnPlateau`` for the ``plateau`` schedule (None for the others, and
    for a ``gamma`` of 1, which never changes the rate): mode min (a loss), factor
    ``gamma``, patience ``plateau_patience``, and torch's default threshold (relative 1e-4:
    a loss improves when it falls below the best times 0.9999), cooldown 0 and min_lr 0.
    It is stepped with each epoch's validation loss (the test loss without a validation
    split), and so multiplies the rate by ``gamma`` after more than ``plateau_patience``
    epochs in a row without improvement, as torch counts them."""
    if config.schedule != "plateau" or config.gamma >= 1:
        return None
    import torch

    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.gamma, patience=config.plateau_patience
    )


def schedule_curve(
    config: TrainConfig, steps_per_epoch: int, points: int = 200
) -> list[tuple[float, float]]:
    """(epoch, learning rate) pairs across the whole run, for showing the schedule; the
    ``plateau`` schedule shows ``lr`` flat (its drops depend on the validation loss)."""
    total = config.epochs * steps_per_epoch
    count = max(2, min(points, total))
    steps = [round(i * (total - 1) / (count - 1)) for i in range(count)]
    return [(s / steps_per_epoch, learning_rate(config, s, total, steps_per_epoch)) for s in steps]


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's rate to ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr
