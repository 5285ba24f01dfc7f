"""Model registry: the tutorial's ``NeuralNetwork`` generalised (``mlp``), a small ``cnn``
and a small residual network (``resnet``).

``build_model(config, image_shape, num_classes)`` builds from a ``TrainConfig`` (its
``color`` policy gives the input's channels: 3 for "rgb", else 1); the
loss decides the output layer (``nll`` ends in LogSoftmax, ``mse`` in Softmax). A model
from the user's own code (``engine.own_model``) is built when its reference is named again.
``summary()`` reports layers, output shapes and parameter counts as data, computed on
the ``meta`` device so it does no arithmetic and is safe on any thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from engine.config import MODELS, TrainConfig
from engine.fields import input_channels, shown

ACTIVATION_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "celu": nn.CELU,
    "mish": nn.Mish,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def output_layer(loss: str) -> list[nn.Module]:
    """What the loss needs after the logits: nothing, LogSoftmax (nll) or Softmax (mse)."""
    if loss == "nll":
        return [nn.LogSoftmax(dim=1)]
    if loss == "mse":
        return [nn.Softmax(dim=1)]
    return []


def dense_layers(
    width: int,
    hidden_sizes: tuple[int, ...],
    num_classes: int,
    activation: str,
    dropout: float,
    loss: str,
) -> list[nn.Module]:
    """Fully-connected layers from ``width`` features to ``num_classes`` outputs.

    Each hidden size gives Linear, the activation and (when ``dropout`` > 0) Dropout; a
    last Linear and the loss's output layer follow. The MLP and the CNN's head share
    it, so both name their parameters alike.
    """
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), ACTIVATION_LAYERS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, num_classes))
    layers += output_layer(loss)
    return layers


class NeuralNetwork(nn.Module):
    """The tutorial's network, with its attribute names, so its state_dicts load here.

    Takes float N x C x H x W (or N x H x W) images with C * H * W = ``in_features``. With
    the defaults (hidden 512-512, ReLU, no dropout, cross entropy) it is exactly
    the notes' ``NeuralNetwork``.
    """

    def __init__(
        self,
        in_features: int = 28 * 28,
        num_classes: int = 10,
        hidden_sizes: tuple[int, ...] = (512, 512),
        activation: str = "relu",
        dropout: float = 0.0,
        loss: str = "cross_entropy",
    ) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            *dense_layers(in_features, hidden_sizes, num_classes, activation, dropout, loss)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (or what the loss's output layer makes of them), float N x classes."""
        logits: torch.Tensor = self.linear_relu_stack(self.flatten(x))
        return logits


class ConvNet(nn.Module):
    """Conv blocks (conv 3x3, batch norm, activation, 2x2 max pool), then an MLP head.

    Takes float N x C x H x W images, (H, W) = ``image_shape``, C = ``in_channels`` (1 for
    grey, 3 for colour); a block stops pooling once a side is under 2 pixels.
    """

    def __init__(
        self,
        image_shape: tuple[int, int] = (28, 28),
        num_classes: int = 10,
        conv_channels: tuple[int, ...] = (32, 64),
        hidden_sizes: tuple[int, ...] = (128,),
        activation: str = "relu",
        dropout: float = 0.0,
        loss: str = "cross_entropy",
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels, (h, w) = in_channels, image_shape
        for out in conv_channels:
            blocks += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                ACTIVATION_LAYERS[activation](),
            ]
            if h >= 2 and w >= 2:
                blocks.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            channels = out
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            *dense_layers(channels * h * w, hidden_sizes, num_classes, activation, dropout, loss),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float N x C x H x W images to logits (or the loss's outputs), float N x classes."""
        x = x.contiguous(memory_format=torch.channels_last)
        logits: torch.Tensor = self.classifier(self.features(x))
        return logits


class BasicBlock(nn.Module):
    """ResNet's basic block: conv 3x3 (``stride``), BN, activation, conv 3x3, BN, plus the
    shortcut (identity, or conv 1x1 with ``stride`` and BN when the shape changes), then
    the activation.

    float N x ``in_channels`` x H x W -> N x ``out_channels`` x ceil(H / stride) x
    ceil(W / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.act1 = ACTIVATION_LAYERS[activation]()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.act2 = ACTIVATION_LAYERS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float N x C_in x H x W -> N x C_out x H' x W' (see the class)."""
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        result: torch.Tensor = self.act2(out + self.shortcut(x))
        return result


class ResNet(nn.Module):
    """A small ResNet for small images: a conv 3x3 stem (BN, activation) of
    ``widths[0]`` channels and a 2x2 max pool, one ``BasicBlock`` per width (the first at
    stride 1, each later one at stride 2), global average pooling, (dropout,) a linear
    head: widths (24, 48, 96) make a ResNet-8 whose blocks see 14 x 14, 7 x 7 and 4 x 4
    on 28 x 28 images.

    The stem pools because on a CPU the full-size feature maps cost more than their
    arithmetic (batch norm, activations and the residual sums are memory-bound there):
    pooling first trained 1.5x as many images a second as a stride-1 stem of narrower
    widths (scripts/bench_cnn.py). The head has no hidden layers (``hidden_sizes`` is not
    used). Images of any size are taken (a side of 1 stays 1):
    float N x C x H x W (C = ``in_channels``) to float N x ``num_classes`` logits (or the
    loss's outputs).
    """

    def __init__(
        self,
        num_classes: int = 10,
        widths: tuple[int, ...] = (16, 32, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        loss: str = "cross_entropy",
        in_channels: int = 1,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            ACTIVATION_LAYERS[activation](),
            nn.MaxPool2d(2, ceil_mode=True),
        )
        blocks = []
        channels = widths[0]
        for i, width in enumerate(widths):
            blocks.append(BasicBlock(channels, width, 1 if i == 0 else 2, activation))
            channels = width
        self.blocks = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(channels, num_classes), *output_layer(loss)]
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float N x C x H x W images to logits (or the loss's outputs), float N x classes."""
        x = x.contiguous(memory_format=torch.channels_last)
        logits: torch.Tensor = self.head(self.blocks(self.stem(x)))
        return logits


def _build_mlp(
    config: TrainConfig, image_shape: tuple[int, int], num_classes: int, channels: int
) -> nn.Module:
    return NeuralNetwork(
        channels * image_shape[0] * image_shape[1],
        num_classes,
        config.hidden_sizes,
        config.activation,
        config.dropout,
        config.loss,
    )


def _build_cnn(
    config: TrainConfig, image_shape: tuple[int, int], num_classes: int, channels: int
) -> nn.Module:
    return ConvNet(
        image_shape,
        num_classes,
        config.conv_channels,
        config.hidden_sizes,
        config.activation,
        config.dropout,
        config.loss,
        channels,
    )


def _build_resnet(
    config: TrainConfig, image_shape: tuple[int, int], num_classes: int, channels: int
) -> nn.Module:
    return ResNet(
        num_classes, config.conv_channels, config.activation, config.dropout, config.loss, channels
    )


# The conv models, built in channels_last memory (see ``build_model``).
CHANNELS_LAST = ("cnn", "resnet")

REGISTRY: dict[str, Callable[[TrainConfig, tuple[int, int], int, int], nn.Module]] = {
    "mlp": _build_mlp,
    "cnn": _build_cnn,
    "resnet": _build_resnet,
}
assert tuple(REGISTRY) == MODELS, "engine.config.MODELS must list the registry's models"


def build_model(
    config: TrainConfig,
    image_shape: tuple[int, int] = (28, 28),
    num_classes: int = 10,
    channels: int | None = None,
    *,
    model_factory: str | None = None,
) -> nn.Module:
    """``config``'s network for (H, W) = ``image_shape`` images, on the default device.

    It takes float N x C x H x W batches, C = ``channels`` (by default the config's:
    ``input_channels(config.color)``, 3 for "rgb", else 1), and gives float
    N x ``num_classes`` outputs: logits, log-probabilities (loss nll) or probabilities
    (loss mse).

    A ``config.model`` that names a factory in the user's code (``engine.own_model``) is
    imported only when ``model_factory`` names it too; the factory's logits are followed
    by LogSoftmax (loss nll) or Softmax (loss mse) in an ``nn.Sequential``, whose
    state_dict keys then start ``0.``. Raises ``ModelError`` when it is not named, or
    cannot be imported or built (see ``engine.own_model.build_module``).
    """
    if channels is None:
        channels = input_channels(config.color)
    if config.model not in REGISTRY:
        from engine import own_model

        own_model.require_trust(config.model, model_factory, "the settings name")
        own = own_model.build_module(config.model, (channels, *image_shape), num_classes)
        after = output_layer(config.loss)
        return nn.Sequential(own, *after) if after else own
    model = REGISTRY[config.model](config, image_shape, num_classes, channels)
    if config.model in CHANNELS_LAST:
        # Conv weights (and, in forward, the input) in channels_last (NHWC) memory: oneDNN's
        # and cuDNN's fast layout. Measured here (2-core AVX2 EPYC, fp32, batch 128,
        # scripts/bench_cnn.py speed): the cnn trains 1.3-1.4x and the resnet 1.3x as many
        # images a second, and evaluates 1.5-1.8x. The state_dict is unchanged.
        model = model.to(memory_format=torch.channels_last)
    return model


def weights_mismatch(model: nn.Module, weights: object) -> str | None:
    """Why ``weights`` (a checkpoint's ``state_dict``) cannot be loaded into ``model``, in
    one line; None when every tensor is there with the model's shape.

    Names the first tensor whose shape differs (``layers.0.weight is 16x784 in the
    checkpoint, 24x784 in the model``) and counts the differences; torch itself would
    print one line per tensor.
    """
    if not isinstance(weights, dict):
        return f"the checkpoint holds no model weights (found {type(weights).__name__})"
    expected = model.state_dict()
    problems: list[str] = []
    for name, tensor in expected.items():
        got = weights.get(name)
        if not isinstance(got, torch.Tensor):
            problems.append(f"{name} is missing from the checkpoint")
        elif got.shape != tensor.shape:
            problems.append(
                f"{name} is {_dims(got.shape)} in the checkpoint, {_dims(tensor.shape)} in "
                "the model its settings describe"
            )
    extra = [str(name) for name in weights if name not in expected]
    if extra:
        problems.append(
            f"the checkpoint has {len(extra)} tensors the model lacks ({shown(extra[0])}, …)"
        )
    if not problems:
        return None
    more = len(problems) - 1
    return (
        "its weights do not fit the model: "
        + problems[0]
        + (f" (and {more} more difference{'s' * (more != 1)})" if more else "")
    )


def _dims(shape: torch.Size) -> str:
    return "x".join(str(n) for n in shape) or "a scalar"


def predict_logits(model: nn.Module, x: torch.Tensor, *, tta: bool) -> torch.Tensor:
    """``model``'s outputs for float N x C x H x W images ``x``: float N x classes.

    With ``tta`` (flip test-time augmentation), the mean of the outputs for each image and
    for its mirror image (``x.flip(-1)``, left and right swapped), in one forward pass of
    2N images; without, ``model(x)``. The model's mode and gradients are the caller's
    (evaluate under ``torch.inference_mode`` with ``model.eval()``). Outputs are averaged
    as the model gives them: logits, or log-probabilities (loss nll) or probabilities
    (loss mse), whose argmax is then that of the mean.
    """
    if not tta:
        out: torch.Tensor = model(x)
        return out
    n = x.shape[0]
    both: torch.Tensor = model(torch.cat([x, x.flip(-1)]))
    return (both[:n] + both[n:]) / 2


def probabilities(outputs: torch.Tensor, loss: str) -> torch.Tensor:
    """Softmax probabilities (float N x classes) from a model's outputs, whatever its loss."""
    if loss == "nll":
        return outputs.exp()
    if loss == "mse":
        return outputs
    return torch.softmax(outputs, dim=1)


@dataclass(frozen=True)
class LayerInfo:
    """One leaf layer: its dotted name, class name, output shape and own parameter count."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    parameters: int


@dataclass(frozen=True)
class ModelSummary:
    """A model's leaf layers in call order, with parameter counts (shapes for batch 1)."""

    layers: list[LayerInfo]
    total_parameters: int
    trainable_parameters: int
    named_parameters: list[tuple[str, tuple[int, ...]]]  # the tutorial's named_parameters loop

    def format(self) -> str:
        """A plain-text table of the layers and the total, for the CLI."""
        rows = [f"{'layer':<28} {'type':<12} {'output':<16} {'params':>10}"]
        for layer in self.layers:
            shape = "x".join(map(str, layer.output_shape))
            rows.append(f"{layer.name:<28} {layer.type:<12} {shape:<16} {layer.parameters:>10,}")
        rows.append(f"total parameters: {self.total_parameters:,}")
        return "\n".join(rows)


def summary(
    config: TrainConfig,
    image_shape: tuple[int, int] = (28, 28),
    num_classes: int = 10,
    channels: int | None = None,
    *,
    model_factory: str | None = None,
) -> ModelSummary:
    """Layers, output shapes and parameter counts for ``config``'s model, batch size 1, on
    float 1 x C x H x W input (``channels`` C as for ``build_model``; a model from the
    user's code only with ``model_factory``, as there: ``ModelError`` otherwise)."""
    if channels is None:
        channels = input_channels(config.color)
    with torch.device("meta"):
        model = build_model(config, image_shape, num_classes, channels, model_factory=model_factory)
    model.eval()
    layers: list[LayerInfo] = []

    def hook(name: str) -> Callable[..., None]:
        def record(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            count = sum(p.numel() for p in module.parameters(recurse=False))
            layers.append(LayerInfo(name, type(module).__name__, tuple(output.shape), count))

        return record

    handles = [
        module.register_forward_hook(hook(name))
        for name, module in model.named_modules()
        if name and not list(module.children())
    ]
    with torch.no_grad():
        model(torch.zeros(1, channels, *image_shape, device="meta"))
    for handle in handles:
        handle.remove()
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    named = [(name, tuple(p.shape)) for name, p in model.named_parameters()]
    return ModelSummary(layers, total, trainable, named)
