"""Training-speed benchmark: the engine's epoch next to the tutorial's loop and a bare loop.

All three train the same model with the same optimiser, batch size and device on the
full training set, one epoch each, alternating, ``repeats`` times; the figures are
the medians of the training loop alone (no evaluation, no start-up). The tutorial's
loop is ``DataLoader(FashionMNIST(transform=ToTensor()), shuffle=True)``; the bare loop
indexes preloaded, normalised float tensors with a ``randperm``.
"""

from __future__ import annotations

import gzip
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.config import TrainConfig
from engine.data import FILES, ImageData, idx_files, load_fashion_mnist
from engine.optim import build_loss, build_optimizer


@dataclass(frozen=True)
class BenchResult:
    batch_size: int
    samples: int
    engine_seconds: list[float]
    tutorial_seconds: list[float]
    bare_seconds: list[float]

    @staticmethod
    def _median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    @property
    def engine(self) -> float:
        return self._median(self.engine_seconds)

    @property
    def tutorial(self) -> float:
        return self._median(self.tutorial_seconds)

    @property
    def bare(self) -> float:
        return self._median(self.bare_seconds)

    def rate(self, seconds: float) -> float:
        return self.samples / seconds if seconds > 0 else float("nan")


def _torchvision_root(data: ImageData, workdir: Path) -> Path:
    """A folder in torchvision's FashionMNIST layout, linking to the files in use."""
    files = idx_files(data.source.path)
    if files is None:
        raise FileNotFoundError(f"no IDX files in {data.source.path}")
    raw = workdir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for key, path in files.items():
        # torchvision reads the extracted files and would try to download gz files whose
        # checksums differ from its own (Debian's are recompressed), so extract here.
        target = raw / FILES[key]
        if not target.exists():
            target.write_bytes(
                gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            )
    return workdir


def _engine_epoch(config: TrainConfig, data: ImageData) -> float:
    from engine.events import EpochEnd
    from engine.trainer import Trainer

    seconds: list[float] = []

    def listen(event: object) -> None:
        if isinstance(event, EpochEnd):
            seconds.append(event.epoch_seconds)

    Trainer(config, data=data, record=False, listeners=(listen,)).fit()
    return seconds[0]


def _tutorial_epoch(config: TrainConfig, data: ImageData, root: Path) -> float:
    """The notes' train loop, verbatim in spirit: DataLoader + ToTensor, per-sample decode."""
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
    return time.perf_counter() - start


def _bare_epoch(config: TrainConfig, data: ImageData) -> float:
    """The fastest plain loop: preloaded normalised floats, randperm, index, step."""
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
    start = time.perf_counter()
    perm = torch.randperm(images.shape[0], device=device)
    for i in range(0, images.shape[0], b):
        idx = perm[i : i + b]
        loss = loss_fn(model(images[idx]), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def run_benchmark(
    config: TrainConfig,
    batch_sizes: tuple[int, ...] = (64, 256),
    repeats: int = 3,
    data_dir: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[BenchResult]:
    """Time one epoch of each loop ``repeats`` times per batch size, alternating."""
    data = load_fashion_mnist(data_dir or config.data_dir or None)
    results = []
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-") as tmp:
        root = _torchvision_root(data, Path(tmp))
        for batch_size in batch_sizes:
            cfg = TrainConfig.from_dict(
                {
                    "batch_size": batch_size,
                    "epochs": 1,
                    "schedule": "none",
                    "augment": False,
                    "train_subset": 0,
                    "test_subset": 1000,
                    # One epoch over the whole training split, as the loops it is timed against.
                    "val_fraction": 0.0,
                    "loss": "cross_entropy",
                },
                base=config,
            )
            engine_s, tutorial_s, bare_s = [], [], []
            for i in range(repeats):
                progress(f"batch {batch_size}: round {i + 1}/{repeats}")
                tutorial_s.append(_tutorial_epoch(cfg, data, root))
                bare_s.append(_bare_epoch(cfg, data))
                engine_s.append(_engine_epoch(cfg, data))
            results.append(BenchResult(batch_size, len(data.train), engine_s, tutorial_s, bare_s))
    return results
