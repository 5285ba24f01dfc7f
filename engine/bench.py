"""Training-speed benchmarks: the engine's epoch next to bare loops and the tutorial's loop,
and the wall time to a test accuracy (``time_to_accuracy``).

``run_benchmark`` trains the same model with the same optimiser (``build_optimizer``),
batch size and device on the full training set, one epoch per loop, alternating,
``repeats`` times; the figures are the medians of the training loop alone (no
evaluation, no start-up), in samples/s. The loops:

- ``engine``: ``Trainer.fit`` at the config's precision (``auto`` resolved as a run
  resolves it), and ``engine_fp32`` at fp32 (the same loop when auto chose fp32);
- ``bare``: preloaded normalised float tensors indexed by a ``randperm``, fp32, and
  ``bare_bf16``: the same under bf16 autocast. Where the CPU only emulates bf16 (auto
  chose fp32 for want of ``avx512_bf16``/``amx_bf16``), that loop is slow enough to
  dominate the benchmark, so it runs for at most ``EMULATED_SECONDS`` per repeat and its
  rate comes from the batches it finished;
- ``tutorial``: ``DataLoader(FashionMNIST(transform=ToTensor()), shuffle=True)``, the
  notes' loop.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.config import TrainConfig
from engine.data import ImageData, load_fashion_mnist
from engine.optim import build_loss, build_optimizer

LOOPS = ("engine", "engine_fp32", "bare", "bare_bf16", "tutorial")
EMULATED_SECONDS = 10.0  # per repeat, for a bf16 bare loop the CPU only emulates


@dataclass(frozen=True)
class BenchResult:
    """One batch size's figures: samples/s per repeat for each loop in ``LOOPS``, the
    precision the engine's default resolved to, and whether the bf16 bare loop ran on
    emulated bf16 (timed on part of the epoch)."""

    batch_size: int
    samples: int
    precision: str
    rates: dict[str, list[float]] = field(default_factory=dict)
    bf16_emulated: bool = False

    def median(self, loop: str) -> float:
        """The median samples/s of ``loop`` (NaN if it did not run)."""
        values = self.rates.get(loop, [])
        return statistics.median(values) if values else float("nan")

    def ratio(self, loop: str, baseline: str) -> float:
        """The median over rounds of ``loop``'s samples/s over ``baseline``'s in the same
        round (NaN if either did not run). Each round times the loops back to back, so a
        pair shares the machine's state: on a noisy machine (this one: about ±15% from
        epoch to epoch) the paired ratio moves far less than a ratio of medians."""
        pairs = [
            value / base
            for value, base in zip(
                self.rates.get(loop, []), self.rates.get(baseline, []), strict=False
            )
            if base > 0
        ]
        return statistics.median(pairs) if pairs else float("nan")


def _torchvision_root(data: ImageData, workdir: Path) -> Path:
    """A folder in torchvision's FashionMNIST layout holding the data in use as extracted
    IDX files (torchvision would try to download gz files whose checksums differ from its
    own, and the data may come compressed in any way ``load_fashion_mnist`` reads)."""
    from engine.peers import write_torchvision_layout

    write_torchvision_layout(data, workdir)
    return workdir


def _engine_epoch(config: TrainConfig, data: ImageData) -> tuple[float, str]:
    """Samples/s of one ``Trainer.fit`` epoch (its own figure: evaluation excluded) and
    the precision it trained in."""
    from engine.events import EpochEnd
    from engine.trainer import Trainer

    rates: list[float] = []

    def listen(event: object) -> None:
        if isinstance(event, EpochEnd):
            rates.append(event.samples_per_second)

    trainer = Trainer(config, data=data, record=False, listeners=(listen,))
    trainer.fit()
    return rates[0], trainer.config.precision


def _tutorial_epoch(config: TrainConfig, data: ImageData, root: Path) -> float:
    """Samples/s of the notes' train loop: DataLoader + ToTensor, per-sample decode."""
    import torch
    from torch.utils.data import DataLoader
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    from engine.device import select_device
    from engine.models import build_model

    device = select_device(config.device)
    training_data = datasets.FashionMNIST(
        root=str(root), train=True, download=False, transform=ToTensor()
    )
    loader = DataLoader(training_data, batch_size=config.batch_size, shuffle=True)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    optimizer = build_optimizer(config, model.parameters())
    loss_fn = build_loss(config)
    model.train()
    start = time.perf_counter()
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = loss_fn(model(x), y)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        optimizer.step()
        optimizer.zero_grad()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(training_data) / (time.perf_counter() - start)


def _bare_epoch(
    config: TrainConfig, data: ImageData, precision: str, seconds: float = math.inf
) -> float:
    """Samples/s of the fastest plain loop: preloaded normalised floats, randperm, index,
    step, under ``precision`` ("fp32" or "bf16" autocast); it stops after the batch that
    passes ``seconds``."""
    import torch

    from engine.data import MEAN, STD
    from engine.device import select_device
    from engine.models import build_model

    device = select_device(config.device)
    images = ((torch.from_numpy(data.train.images).float() / 255 - MEAN) / STD).unsqueeze(1)
    images, labels = images.to(device), torch.from_numpy(data.train.labels).to(device)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    optimizer = build_optimizer(config, model.parameters())
    loss_fn = build_loss(config)
    model.train()
    b = config.batch_size
    autocast = device.type in ("cpu", "cuda") and precision == "bf16"
    start = time.perf_counter()
    perm = torch.randperm(images.shape[0], device=device)
    done = 0
    for i in range(0, images.shape[0], b):
        idx = perm[i : i + b]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            outputs = model(images[idx])
            loss = loss_fn(outputs.float(), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        optimizer.step()
        done += idx.shape[0]
        if time.perf_counter() - start > seconds:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return done / (time.perf_counter() - start)


def bare_loop(
    config: TrainConfig,
    precision: str = "bf16",
    *,
    data: ImageData | None = None,
    seconds: float = math.inf,
) -> float:
    """Samples/s of one epoch of the bare loop (``bare``/``bare_bf16`` in ``LOOPS``) at
    ``precision`` ("fp32" or "bf16" autocast), with ``config``'s model, optimiser, batch
    size and device, over the whole training split of ``data`` (default: Fashion-MNIST
    from ``config.data_dir`` or the usual places); it stops after the batch that passes
    ``seconds``. Raises ``DataError`` when the data cannot be found."""
    if data is None:
        data = load_fashion_mnist(config.data_dir or None)
    return _bare_epoch(bench_config(config, config.batch_size), data, precision, seconds)


def bench_config(config: TrainConfig, batch_size: int) -> TrainConfig:
    """``config`` as the throughput benchmark trains it: one epoch over the whole training
    split (no validation split, no subset) at ``batch_size``, no schedule or augmentation,
    cross entropy, 1,000 test images."""
    return TrainConfig.from_dict(
        {
            "batch_size": batch_size,
            "epochs": 1,
            "schedule": "none",
            "augment": False,
            "train_subset": 0,
            "test_subset": 1000,
            "val_fraction": 0.0,
            "loss": "cross_entropy",
        },
        base=config,
    )


def run_benchmark(
    config: TrainConfig,
    batch_sizes: tuple[int, ...] = (64, 256),
    repeats: int = 3,
    data_dir: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """Time one epoch of each loop in ``LOOPS`` ``repeats`` times per batch size,
    alternating, on the full Fashion-MNIST training set (``data_dir``, else the config's,
    else the usual places). Raises ``DataError`` when the data cannot be found."""
    import torch

    from engine.device import resolve_precision, select_device

    data = load_fashion_mnist(data_dir or config.data_dir or None)
    device = select_device(config.device)
    resolved, _reason = resolve_precision(config.precision, device)
    capabilities: dict[str, object] = dict(getattr(torch.cpu, "get_capabilities", dict)())
    emulated = device.type == "cpu" and not (
        capabilities.get("avx512_bf16") or capabilities.get("amx_bf16")
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-") as tmp:
        root = _torchvision_root(data, Path(tmp))
        for batch_size in batch_sizes:
            cfg = bench_config(config, batch_size)
            fp32 = TrainConfig.from_dict({"precision": "fp32"}, base=cfg)
            rates: dict[str, list[float]] = {loop: [] for loop in LOOPS}
            for i in range(repeats):
                progress(f"batch {batch_size}: round {i + 1}/{repeats}")
                rates["tutorial"].append(_tutorial_epoch(fp32, data, root))
                rates["bare"].append(_bare_epoch(cfg, data, "fp32"))
                limit = EMULATED_SECONDS if emulated else math.inf
                rates["bare_bf16"].append(_bare_epoch(cfg, data, "bf16", limit))
                rate, used = _engine_epoch(cfg, data)
                rates["engine"].append(rate)
                # The fp32 engine separately only where the default is not fp32 already.
                rates["engine_fp32"].append(
                    rate if used == "fp32" else _engine_epoch(fp32, data)[0]
                )
            results.append(
                BenchResult(batch_size, len(data.train), resolved, rates, bf16_emulated=emulated)
            )
    return results


# --- time to accuracy -----------------------------------------------------------------


def process_age() -> float:
    """Seconds since this process started (from ``/proc/self/stat`` and ``/proc/uptime``
    on Linux; elsewhere since ``engine.bench`` was imported)."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # starttime, field 22
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - started, 0.0)
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED


_IMPORTED = time.perf_counter()


@dataclass(frozen=True)
class TimeToAccuracy:
    """``time_to_accuracy``'s answer, in seconds of wall time from process start.

    ``seconds`` = ``startup_seconds`` (imports, up to the call) + ``load_seconds`` (the
    data read and checked) + ``train_seconds`` (data to the device, model, training and
    each epoch's evaluation, to the end of the first epoch whose test accuracy reached
    ``target``). ``reached`` is False when no epoch did (``seconds`` then runs to the
    end of training); ``accuracy`` is that epoch's test accuracy (the last one's when
    not reached), ``epoch`` its number, ``precision`` what the run trained in."""

    target: float
    reached: bool
    seconds: float
    startup_seconds: float
    load_seconds: float
    train_seconds: float
    accuracy: float
    epoch: int
    precision: str

    def to_dict(self) -> dict[str, object]:
        """The figures as JSON-ready values (seconds rounded to milliseconds)."""
        return {
            "target": self.target,
            "reached": self.reached,
            "seconds": round(self.seconds, 3),
            "startup_seconds": round(self.startup_seconds, 3),
            "load_seconds": round(self.load_seconds, 3),
            "train_seconds": round(self.train_seconds, 3),
            "accuracy": self.accuracy,
            "epoch": self.epoch,
            "precision": self.precision,
        }


def time_to_accuracy(
    config: TrainConfig,
    target: float,
    *,
    data: ImageData | None = None,
    startup_seconds: float | None = None,
) -> TimeToAccuracy:
    """Train ``config`` (no run folder) until an epoch's test accuracy reaches ``target``
    (0..1), then stop; the wall time split into start-up, data load and training.

    ``startup_seconds`` defaults to ``process_age()`` now. Raises ``ConfigError`` for a
    ``target`` outside (0, 1], and what ``Trainer.fit`` raises.
    """
    from engine.errors import ConfigError
    from engine.events import EpochEnd
    from engine.trainer import Trainer

    if not 0 < target <= 1:
        raise ConfigError([f"--to: {target:g} is not an accuracy; use a number in (0, 1]"])
    startup = process_age() if startup_seconds is None else startup_seconds
    reached: list[tuple[float, EpochEnd]] = []
    last: list[EpochEnd] = []
    trainer: Trainer

    def listen(event: object) -> None:
        if isinstance(event, EpochEnd):
            last[:] = [event]
            if event.test_accuracy >= target and not reached:
                reached.append((time.perf_counter(), event))
                trainer.stop("reached")

    trainer = Trainer(config, data=data, record=False, listeners=(listen,))
    begin = time.perf_counter()
    trainer.prepare_data()
    loaded = time.perf_counter()
    trainer.fit()
    end = reached[0][0] if reached else time.perf_counter()
    final = reached[0][1] if reached else (last[0] if last else None)
    load, train = loaded - begin, end - loaded
    return TimeToAccuracy(
        target=target,
        reached=bool(reached),
        seconds=startup + load + train,
        startup_seconds=startup,
        load_seconds=load,
        train_seconds=train,
        accuracy=final.test_accuracy if final is not None else float("nan"),
        epoch=final.epoch if final is not None else 0,
        precision=trainer.config.precision,
    )
