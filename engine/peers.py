"""Peers in the same run: PyTorch Lightning and Keras (torch backend) on the engine's work.

The work: the notes' MLP (784-512-512-10, ReLU, the defaults of
``engine.models.NeuralNetwork``), Adam with lr 1e-3 and cross entropy, on every training
image of Fashion-MNIST, on the CPU, at one batch size at a time. Each peer is written as
its users write it: Lightning reads ``torchvision.datasets.FashionMNIST`` through
``ToTensor()`` and a shuffling ``DataLoader``; Keras calls ``fit`` on numpy arrays with
``KERAS_BACKEND=torch``. The engine trains the same model with its ``Trainer``.

Every measurement runs in a process of its own (``python -m engine.peers KIND PRECISION
BATCH --epochs N --data-dir DIR``, which prints one JSON object), so one peer's imports,
thread pools and environment cannot touch another's. A measurement is one fit of
``repeats + 1`` epochs: the first epoch is a warm-up, reported apart
(``first_epoch_seconds``), and the figure is the median of the other ``repeats`` epochs'
seconds. The peers are the optional extra ``[bench]``; a peer that is not installed is
reported as such, not measured.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.data import ImageData

PEERS = ("lightning", "keras")
"""The peers ``run_peers`` knows, in the order it runs them."""

PEER_PRECISIONS = ("fp32", "bf16")
"""fp32: each peer's default; bf16: Lightning ``bf16-mixed``, Keras ``mixed_bfloat16``."""

ENGINE_PRECISIONS = ("default", "fp32", "bf16")
"""``default``: ``TrainConfig``'s own precision, not set; the others set ``precision``."""

MODULES = {"lightning": "lightning", "keras": "keras"}
"""The module each peer is imported as: absent, the peer is "not installed"."""

ENVIRONMENT = ("MKL_CBWR", "MKL_DYNAMIC", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Variables that change how fast the math libraries run, reported with the figures."""

LR = 1e-3
HIDDEN = (512, 512)


@dataclass(frozen=True)
class Measurement:
    """One process's fit: who (``kind``: a peer or ``engine``), in which precision, at
    which batch size, and its seconds per epoch.

    ``installed`` False: the peer's module could not be imported (``missing`` names it);
    ``error`` non-empty: the process failed, and it says how. Otherwise
    ``epoch_seconds`` holds the measured epochs (the warm-up excluded, wall seconds),
    ``first_epoch_seconds`` the warm-up epoch, ``samples`` the training images per epoch,
    ``versions`` the packages' versions and ``settings`` the exact calls made, as text.
    ``precision_used`` is the precision the engine ran in (its config's, after the run
    resolved it); the peer's precision setting for a peer.
    """

    kind: str
    precision: str
    batch_size: int
    installed: bool = True
    missing: str = ""
    error: str = ""
    samples: int = 0
    epoch_seconds: tuple[float, ...] = ()
    first_epoch_seconds: float = float("nan")
    loss: float | None = None
    precision_used: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    settings: str = ""

    @property
    def ok(self) -> bool:
        """True when the fit ran and measured at least one epoch."""
        return self.installed and not self.error and bool(self.epoch_seconds)

    @property
    def seconds(self) -> float:
        """The median of ``epoch_seconds`` (NaN when nothing was measured)."""
        return statistics.median(self.epoch_seconds) if self.epoch_seconds else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, with ``seconds`` (the median) added."""
        return {
            "kind": self.kind,
            "precision": self.precision,
            "batch_size": self.batch_size,
            "installed": self.installed,
            "missing": self.missing,
            "error": self.error,
            "samples": self.samples,
            "seconds": None if not self.ok else round(self.seconds, 4),
            "epoch_seconds": [round(s, 4) for s in self.epoch_seconds],
            "first_epoch_seconds": (None if not self.ok else round(self.first_epoch_seconds, 4)),
            "loss": self.loss,
            "precision_used": self.precision_used,
            "versions": dict(self.versions),
            "settings": self.settings,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Measurement:
        """The inverse of ``to_dict`` (``seconds`` is recomputed, not read)."""
        first = values.get("first_epoch_seconds")
        return cls(
            kind=str(values["kind"]),
            precision=str(values["precision"]),
            batch_size=int(values["batch_size"]),
            installed=bool(values.get("installed", True)),
            missing=str(values.get("missing", "")),
            error=str(values.get("error", "")),
            samples=int(values.get("samples", 0)),
            epoch_seconds=tuple(float(s) for s in values.get("epoch_seconds", ())),
            first_epoch_seconds=float("nan") if first is None else float(first),
            loss=None if values.get("loss") is None else float(values["loss"]),
            precision_used=str(values.get("precision_used", "")),
            versions={str(k): str(v) for k, v in dict(values.get("versions", {})).items()},
            settings=str(values.get("settings", "")),
        )


@dataclass(frozen=True)
class Comparison:
    """A peer's figure beside the engine's at the same batch size.

    ``ratio`` is the engine's seconds per epoch over the peer's (under 1: the engine is
    faster); ``speedup`` its inverse (how many times faster the engine is).
    """

    peer: Measurement
    engine: Measurement

    @property
    def ratio(self) -> float:
        """Engine seconds per epoch / peer seconds per epoch (NaN if either is missing)."""
        if not (self.peer.ok and self.engine.ok):
            return float("nan")
        return self.engine.seconds / self.peer.seconds

    @property
    def speedup(self) -> float:
        """Peer seconds per epoch / engine seconds per epoch (NaN if either is missing)."""
        if not (self.peer.ok and self.engine.ok):
            return float("nan")
        return self.peer.seconds / self.engine.seconds


@dataclass(frozen=True)
class PeersReport:
    """Everything one ``run_peers`` call measured, in the order it ran.

    ``data`` says where the images came from and ``samples`` how many were trained on
    per epoch; ``repeats`` is the number of measured epochs per fit (the warm-up epoch
    comes on top). ``environment``: the variables that steer the math libraries, as
    every process got them (absent: not set).
    """

    data: str
    samples: int
    repeats: int
    measurements: tuple[Measurement, ...]
    environment: dict[str, str] = field(default_factory=dict)

    def peers(self) -> list[Measurement]:
        """The peers' measurements (installed or not)."""
        return [m for m in self.measurements if m.kind != "engine"]

    def engine(self, precision: str, batch_size: int) -> Measurement | None:
        """The engine's measurement in ``precision`` at ``batch_size``, if one was made."""
        for m in self.measurements:
            if m.kind == "engine" and m.precision == precision and m.batch_size == batch_size:
                return m
        return None

    def comparisons(self) -> list[Comparison]:
        """Each measured peer figure beside the engine's: a peer's fp32 (its default) beside
        the engine's default precision and its fp32, a peer's bf16 beside the engine's bf16.
        Failed or missing measurements are left out (see ``failed``, ``not_installed``).
        """
        pairs = {"fp32": ("default", "fp32"), "bf16": ("bf16",)}
        out = []
        for peer in self.peers():
            if not peer.ok:
                continue
            for precision in pairs[peer.precision]:
                engine = self.engine(precision, peer.batch_size)
                if engine is not None and engine.ok:
                    out.append(Comparison(peer, engine))
        return out

    def not_installed(self) -> dict[str, str]:
        """Peer name -> the module that could not be imported, for each missing peer."""
        return {m.kind: m.missing for m in self.peers() if not m.installed}

    @property
    def failed(self) -> bool:
        """True when an installed peer's or the engine's process failed."""
        return any(m.error for m in self.measurements)

    def to_dict(self) -> dict[str, Any]:
        """One JSON-ready object: the data, every measurement, and the comparisons."""
        return {
            "data": self.data,
            "samples": self.samples,
            "repeats": self.repeats,
            "warmup": "the first epoch of each fit is excluded from seconds (first_epoch_seconds)",
            "environment": dict(self.environment),
            "not_installed": self.not_installed(),
            "measurements": [m.to_dict() for m in self.measurements],
            "comparisons": [
                {
                    "peer": c.peer.kind,
                    "precision": c.peer.precision,
                    "batch_size": c.peer.batch_size,
                    "peer_seconds": round(c.peer.seconds, 4),
                    "engine_precision": c.engine.precision,
                    "engine_precision_used": c.engine.precision_used,
                    "engine_seconds": round(c.engine.seconds, 4),
                    "ratio": round(c.ratio, 4),
                    "speedup": round(c.speedup, 3),
                }
                for c in self.comparisons()
            ],
        }


# --- in the parent: one process per measurement --------------------------------------


def prepare_data(data_dir: str | None, workdir: Path) -> tuple[Path, str, int]:
    """Write the Fashion-MNIST in use as extracted IDX files in torchvision's layout
    (``workdir/FashionMNIST/raw``), which every process then reads: torchvision's
    ``FashionMNIST(root=workdir)`` and ``load_fashion_mnist(workdir)`` alike.

    Returns (the root, where the data came from in words, training images). Raises
    ``DataError`` when no source holds the data (see ``load_fashion_mnist``).
    """
    from engine.data import load_fashion_mnist

    data = load_fashion_mnist(data_dir)
    write_torchvision_layout(data, workdir)
    return workdir, data.source.describe(), len(data.train)


def write_torchvision_layout(data: ImageData, workdir: Path) -> None:
    """Write ``data`` as extracted IDX files in torchvision's FashionMNIST layout
    (``workdir/FashionMNIST/raw``); ``OSError`` if it cannot."""
    from engine.data import FILES
    from engine.idx import write_idx

    raw = workdir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": data.train.images,
        "train_labels": data.train.labels,
        "test_images": data.test.images,
        "test_labels": data.test.labels,
    }
    for key, array in arrays.items():
        write_idx(raw / FILES[key], array)


def _child_env(kind: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)
    if kind == "keras":
        env["KERAS_BACKEND"] = "torch"
    return env


def measure(
    kind: str, precision: str, batch_size: int, epochs: int, root: Path, *, timeout: float | None
) -> Measurement:
    """Run one measurement in a process of its own (see the module's doc) and read its
    JSON. A process that fails, or prints no JSON, gives a ``Measurement`` whose
    ``error`` says why (its last line of stderr), never an exception.
    """
    argv = [
        sys.executable,
        "-m",
        "engine.peers",
        kind,
        precision,
        str(batch_size),
        "--epochs",
        str(epochs),
        "--data-dir",
        str(root),
    ]
    failed = Measurement(kind, precision, batch_size)
    try:
        done = subprocess.run(
            argv,
            env=_child_env(kind),
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _with(failed, error=f"no result within {timeout:.0f} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        try:
            return Measurement.from_dict(json.loads(lines[-1]))
        except (ValueError, KeyError, TypeError) as exc:
            return _with(failed, error=f"unreadable result ({exc})")
    last = [line for line in done.stderr.splitlines() if line.strip()]
    why = last[-1].strip() if last else "no output"
    return _with(failed, error=f"exit code {done.returncode}: {why}")


def _with(m: Measurement, **changes: Any) -> Measurement:
    return dataclasses.replace(m, **changes)


def run_peers(
    batch_sizes: Sequence[int] = (64, 256),
    repeats: int = 3,
    data_dir: str | None = None,
    peers: Sequence[str] = PEERS,
    progress: Callable[[str], None] = lambda _: None,
    timeout: float | None = 3600.0,
) -> PeersReport:
    """Measure ``peers`` and the engine on the same work, each fit in its own process.

    Per batch size: each peer in fp32 (its default) and in bf16, then the engine in its
    default precision, fp32 and bf16; each a fit of ``repeats + 1`` epochs whose first
    is the warm-up. A peer found not installed is not tried again; where no peer was
    measured the engine is not either (there is nothing to compare). ``timeout``:
    seconds allowed per process. Raises ``ValueError`` for an unknown peer name or a
    ``repeats`` or batch size under 1, and ``DataError`` when the data is not found.
    """
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer {unknown[0]!r}; known: {', '.join(PEERS)}")
    if repeats < 1 or any(b < 1 for b in batch_sizes):
        raise ValueError("repeats and batch sizes must be at least 1")
    measurements: list[Measurement] = []
    missing: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="fmnist-peers-") as tmp:
        root, described, samples = prepare_data(data_dir, Path(tmp))
        for batch_size in batch_sizes:
            measured = False
            for precision in PEER_PRECISIONS:
                for peer in peers:
                    if peer in missing:
                        continue
                    progress(f"batch {batch_size}: {peer} {precision}")
                    m = measure(peer, precision, batch_size, repeats + 1, root, timeout=timeout)
                    if not m.installed:
                        missing.add(peer)
                    measured = measured or m.ok
                    measurements.append(m)
            if not measured:  # nothing to compare the engine with
                continue
            for precision in ENGINE_PRECISIONS:
                progress(f"batch {batch_size}: engine {precision}")
                measurements.append(
                    measure("engine", precision, batch_size, repeats + 1, root, timeout=timeout)
                )
    environment = {k: os.environ[k] for k in ENVIRONMENT if k in os.environ}
    return PeersReport(described, samples, repeats, tuple(measurements), environment)


# --- in the child: one fit -----------------------------------------------------------


class _EpochClock:
    """Wall seconds of each epoch, from the framework's epoch-begin and epoch-end hooks."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def begin(self) -> None:
        self._start = time.perf_counter()

    def end(self) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def _split(seconds: list[float]) -> dict[str, Any]:
    if len(seconds) < 2:
        raise RuntimeError(f"expected at least 2 epochs, measured {len(seconds)}")
    return {"first_epoch_seconds": seconds[0], "epoch_seconds": seconds[1:]}


def _call(name: str, kwargs: dict[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def _fit_lightning(precision: str, batch_size: int, epochs: int, root: Path) -> dict[str, Any]:
    lightning = importlib.import_module("lightning")
    import torch
    import torchvision
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    from engine.models import NeuralNetwork

    clock = _EpochClock()

    # Built with type(): the frameworks' classes are untyped (Any) to the type checker.
    def init(self: Any) -> None:
        lightning.LightningModule.__init__(self)
        self.model = NeuralNetwork()
        self.loss_fn = nn.CrossEntropyLoss()

    def training_step(self: Any, batch: Any, batch_idx: int) -> Any:
        x, y = batch
        return self.loss_fn(self.model(x), y)

    def configure_optimizers(self: Any) -> Any:
        return torch.optim.Adam(self.parameters(), lr=LR)

    module_class: Any = type(
        "MLPModule",
        (lightning.LightningModule,),
        {
            "__init__": init,
            "training_step": training_step,
            "configure_optimizers": configure_optimizers,
        },
    )
    clock_class: Any = type(
        "EpochClock",
        (lightning.Callback,),
        {
            "on_train_epoch_start": lambda self, trainer, module: clock.begin(),
            "on_train_epoch_end": lambda self, trainer, module: clock.end(),
        },
    )
    trainer_kwargs: dict[str, Any] = {
        "max_epochs": epochs,
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
    }
    if precision == "bf16":
        trainer_kwargs["precision"] = "bf16-mixed"
    torch.manual_seed(0)
    training_data = datasets.FashionMNIST(
        root=str(root), train=True, download=False, transform=ToTensor()
    )
    loader = DataLoader(training_data, batch_size=batch_size, shuffle=True)
    trainer = lightning.Trainer(callbacks=[clock_class()], **trainer_kwargs)
    trainer.fit(module_class(), loader)
    settings = (
        f"lightning.{_call('Trainer', trainer_kwargs)} (precision {trainer.precision!r}); "
        f"fit(LightningModule(NeuralNetwork() 784-512-512-10 ReLU, CrossEntropyLoss(), "
        f"torch.optim.Adam(lr={LR})), DataLoader(torchvision.datasets.FashionMNIST(root, "
        f"train=True, transform=ToTensor()), batch_size={batch_size}, shuffle=True))"
    )
    return {
        **_split(clock.seconds),
        "samples": len(training_data),
        "precision_used": str(trainer.precision),
        "versions": {
            "lightning": str(lightning.__version__),
            "torch": torch.__version__,
            "torchvision": str(torchvision.__version__),
        },
        "settings": settings,
    }


def _fit_keras(precision: str, batch_size: int, epochs: int, root: Path) -> dict[str, Any]:
    keras = importlib.import_module("keras")
    import numpy as np

    from engine.data import load_fashion_mnist

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"keras runs on {keras.backend.backend()}, not torch")
    data = load_fashion_mnist(root)
    x = data.train.images.astype(np.float32) / 255.0
    y = data.train.labels
    if precision == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    clock = _EpochClock()

    clock_class: Any = type(
        "EpochClock",
        (keras.callbacks.Callback,),
        {
            "on_epoch_begin": lambda self, epoch, logs=None: clock.begin(),
            "on_epoch_end": lambda self, epoch, logs=None: clock.end(),
        },
    )
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(HIDDEN[0], activation="relu"),
            keras.layers.Dense(HIDDEN[1], activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    fit_kwargs: dict[str, Any] = {"batch_size": batch_size, "epochs": epochs, "verbose": 0}
    history = model.fit(x, y, callbacks=[clock_class()], **fit_kwargs)
    policy = keras.mixed_precision.global_policy().name
    policy_text = (
        f"keras.mixed_precision.set_global_policy({policy!r})"
        if precision == "bf16"
        else f"dtype policy {policy!r} (the default)"
    )
    settings = (
        f"KERAS_BACKEND=torch; {policy_text}; Sequential([Input((28, 28)), Flatten(), "
        "Dense(512, activation='relu'), Dense(512, activation='relu'), Dense(10)]); "
        f"compile(optimizer=Adam(learning_rate={LR}), "
        "loss=SparseCategoricalCrossentropy(from_logits=True)) "
        f"(jit_compile {model.jit_compile!r}); "
        f"fit(x, y, {', '.join(f'{k}={v!r}' for k, v in fit_kwargs.items())}) "
        f"with x float32 {len(x)}x28x28 (pixels / 255), y int64 labels"
    )
    return {
        **_split(clock.seconds),
        "samples": len(x),
        "loss": float(history.history["loss"][-1]),
        "precision_used": policy,
        "versions": {"keras": str(keras.__version__), "torch": _torch_version()},
        "settings": settings,
    }


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


def engine_config_values(precision: str, batch_size: int, epochs: int) -> dict[str, Any]:
    """The ``TrainConfig`` values of the engine's side of the comparison: the notes' MLP,
    Adam lr 1e-3 without weight decay or schedule, one pass over every training image per
    epoch (no validation split, no augmentation), on the CPU. ``precision`` "default"
    leaves the config's own default; "fp32" or "bf16" sets it.
    """
    values: dict[str, Any] = {
        "model": "mlp",
        "hidden_sizes": HIDDEN,
        "activation": "relu",
        "dropout": 0.0,
        "loss": "cross_entropy",
        "label_smoothing": 0.0,
        "optimizer": "adam",
        "lr": LR,
        "weight_decay": 0.0,
        "grad_clip": 0.0,
        "schedule": "none",
        "batch_size": batch_size,
        "epochs": epochs,
        "augment": False,
        "train_subset": 0,
        "test_subset": 1000,  # evaluated between epochs, outside the epoch's seconds
        "val_fraction": 0.0,
        "device": "cpu",
        "seed": 0,
    }
    if precision != "default":
        values["precision"] = precision
    return values


def _fit_engine(precision: str, batch_size: int, epochs: int, root: Path) -> dict[str, Any]:
    from engine.config import TrainConfig
    from engine.data import load_fashion_mnist
    from engine.events import EpochEnd, RunStarted
    from engine.trainer import Trainer

    values = engine_config_values(precision, batch_size, epochs)
    config = TrainConfig.from_dict(values)
    data = load_fashion_mnist(root)
    seconds: list[float] = []
    losses: list[float] = []
    used: list[str] = []

    def listen(event: object) -> None:
        if isinstance(event, EpochEnd):
            seconds.append(event.epoch_seconds)
            losses.append(event.train_loss)
        elif isinstance(event, RunStarted):
            used.append(str(event.config.get("precision", "")))

    Trainer(config, data=data, record=False, listeners=(listen,)).fit()
    shown = {k: v for k, v in values.items() if k != "epochs"}
    return {
        **_split(seconds),
        "samples": len(data.train),
        "loss": losses[-1],
        "precision_used": used[0] if used else config.precision,
        "versions": {"torch": _torch_version()},
        "settings": f"Trainer({_call('TrainConfig', {**shown, 'epochs': epochs})}, "
        "record=False).fit() (epoch_seconds of each EpochEnd)",
    }


FITS: dict[str, Callable[[str, int, int, Path], dict[str, Any]]] = {
    "lightning": _fit_lightning,
    "keras": _fit_keras,
    "engine": _fit_engine,
}


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Whatever a framework prints goes to stderr; stdout carries the one JSON line."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


def fit_one(kind: str, precision: str, batch_size: int, epochs: int, root: Path) -> Measurement:
    """One fit in this process (what ``python -m engine.peers`` runs): ``kind`` a peer
    or "engine", ``epochs`` at least 2 (the first is the warm-up). A peer whose module
    cannot be imported gives ``installed=False``; other errors propagate.
    """
    allowed = ENGINE_PRECISIONS if kind == "engine" else PEER_PRECISIONS
    if kind not in FITS or precision not in allowed:
        raise ValueError(
            f"{kind} {precision}: kind must be one of {', '.join(FITS)}, and precision one "
            f"of {', '.join(allowed)}"
        )
    base = Measurement(kind, precision, batch_size)
    if kind == "keras":  # before keras is first imported, as its documentation asks
        os.environ["KERAS_BACKEND"] = "torch"
    if kind in MODULES:
        try:
            importlib.import_module(MODULES[kind])
        except ImportError as exc:
            return _with(base, installed=False, missing=exc.name or MODULES[kind])
    with _stdout_to_stderr():
        result = FITS[kind](precision, batch_size, epochs, root)
    return Measurement.from_dict(
        {"kind": kind, "precision": precision, "batch_size": batch_size, **result}
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.peers KIND PRECISION BATCH --epochs N --data-dir ROOT``: one fit,
    one JSON object on stdout; exit code 0, or 1 with a traceback when the fit fails."""
    parser = argparse.ArgumentParser(prog="python -m engine.peers")
    parser.add_argument("kind", choices=(*PEERS, "engine"))
    parser.add_argument("precision", choices=sorted({*PEER_PRECISIONS, *ENGINE_PRECISIONS}))
    parser.add_argument("batch_size", type=int)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    m = fit_one(args.kind, args.precision, args.batch_size, args.epochs, Path(args.data_dir))
    print(json.dumps(m.to_dict()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
