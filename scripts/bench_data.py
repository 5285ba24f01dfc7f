"""Benchmark the data path: one epoch of ``DeviceData`` batches against the tutorial's DataLoader.

Both sides serve the full Fashion-MNIST training set in shuffled batches of 64 on the CPU, with
no model: ``DeviceData`` normalises and augments (flip + crop) each batch, the tutorial's
``DataLoader(FashionMNIST(transform=ToTensor()), shuffle=True)`` converts each image on its own.
The two alternate ``--repeats`` times and the medians are printed, with the median time of
``load_fashion_mnist()``. A benchmark, not a test: on a shared machine its numbers are only
indicative.

Run from the repository root: ``python -m scripts.bench_data [--data-dir DIR] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from engine.data import FILES, Augment, DeviceData, idx_files, load_fashion_mnist
from engine.errors import EngineError

BATCH_SIZE = 64


def torchvision_root(data_folder: Path, workdir: Path) -> Path:
    """A root in torchvision's ``FashionMNIST/raw/`` layout for the files in use.

    The ``.gz`` files are linked and extracted beside the links, as torchvision's own
    ``download=True`` would do, but by hand: Debian's ``.gz`` files hold the same IDX bytes
    under other gzip checksums, so torchvision would reject them and go to the network.
    Everything lands in ``workdir``, never in the (possibly read-only) data folder.
    """
    files = idx_files(data_folder)
    if files is None:
        raise EngineError(f"{data_folder}: no Fashion-MNIST IDX files")
    raw = workdir / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for key, path in files.items():
        extracted = raw / FILES[key]
        if path.suffix == ".gz":
            (raw / (FILES[key] + ".gz")).symlink_to(path.resolve())
            with gzip.open(path, "rb") as source, extracted.open("wb") as target:
                shutil.copyfileobj(source, target)
        else:
            extracted.symlink_to(path.resolve())
    return workdir


def device_data_epoch(data: DeviceData, generator: torch.Generator) -> int:
    augment = Augment()
    order = data.permutation(generator)
    count = 0
    for x, _ in data.batches(BATCH_SIZE, order=order, augment=augment, generator=generator):
        count += x.shape[0]
    return count


def data_loader_epoch(loader: torch.utils.data.DataLoader) -> int:
    count = 0
    for x, _ in loader:
        count += x.shape[0]
    return count


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files")
    parser.add_argument("--repeats", type=int, default=5, help="epochs per side (default 5)")
    args = parser.parse_args(argv)

    from torchvision.datasets import FashionMNIST
    from torchvision.transforms import ToTensor

    try:
        data = load_fashion_mnist(args.data_dir, download=False)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if data.source.is_sample:
        print("error: only the bundled sample was found; the benchmark needs the full set")
        return 2
    print(f"data: {data.source.describe()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH_SIZE}")

    load_seconds = [
        timed(lambda: load_fashion_mnist(args.data_dir, download=False))
        for _ in range(args.repeats)
    ]
    print(f"load_fashion_mnist(): median {statistics.median(load_seconds):.3f} s")

    device_data = DeviceData(data.train, "cpu", num_classes=data.num_classes)
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="bench-data-") as workdir:
        root = torchvision_root(data.source.path, Path(workdir))
        dataset = FashionMNIST(str(root), train=True, transform=ToTensor())
        loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True)

        samples = {"DeviceData": len(device_data), "DataLoader": len(dataset)}
        seconds: dict[str, list[float]] = {"DeviceData": [], "DataLoader": []}
        for _ in range(args.repeats):
            seconds["DeviceData"].append(timed(lambda: device_data_epoch(device_data, generator)))
            seconds["DataLoader"].append(timed(lambda: data_loader_epoch(loader)))

    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, values in seconds.items():
        rate = samples[name] / medians[name]
        spread = ", ".join(f"{v:.3f}" for v in values)
        print(
            f"{name:>10}: median {medians[name]:.3f} s per epoch ({rate:,.0f} samples/s); "
            f"runs {spread}"
        )
    print(f"DataLoader / DeviceData: {medians['DataLoader'] / medians['DeviceData']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
