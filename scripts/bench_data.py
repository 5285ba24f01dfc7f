"""Benchmark the data path: one epoch of ``DeviceData`` batches against the tutorial's DataLoader.

Both sides serve the full Fashion-MNIST training set in shuffled batches of 64 on the CPU, with
no model: ``DeviceData`` normalises and augments (flip + crop) each batch, the tutorial's
``DataLoader(FashionMNIST(transform=ToTensor()), shuffle=True)`` converts each image on its own.
The two alternate ``--repeats`` times and the medians are printed, with the median time of
``load_fashion_mnist()``. A benchmark, not a test: on a shared machine its numbers are only
indicative.

Run from the repository root: ``python -m scripts.bench_data [--data-dir DIR] [--repeats 5]``.

``python -m scripts.bench_data check-data [--data-dir DIR] [--repeats 3] [--images 10000]``
times ``fmnist-tui check-data`` instead, each run a new process timed from its start, median
of ``--repeats``: on the full Fashion-MNIST (target: under 3 s), and on a CSV + folder of
``--images`` 28x28 PNGs written from the real test set (target: under 10 s). Each is timed
cold (a new, empty cache folder for every run: the images decoded, the check made) and warm
(the decoded images and the check's result cached, as on a second run start), and what the
check found on the full set is printed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from engine.data import FILES, Augment, DeviceData, ImageData, idx_files, load_fashion_mnist
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


def time_check_data(flags: list[str], cache: Path | None, repeats: int) -> tuple[list[float], str]:
    """Seconds of ``repeats`` runs of ``fmnist-tui check-data FLAGS``, each a new process
    timed from its start to its end, and the last run's output. ``cache`` is the cache
    folder (XDG_CACHE_HOME) for every run; None gives each run a new, empty one."""
    seconds, out = [], ""
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-check-") as fresh:
            env = {**os.environ, "XDG_CACHE_HOME": str(cache or fresh)}
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "tui.cli", "check-data", *flags],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            seconds.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise EngineError(f"check-data failed: {done.stderr.strip()}")
        out = done.stdout
    return seconds, out


def write_png_set(folder: Path, data: ImageData, count: int) -> list[str]:
    """The first ``count`` test images of ``data`` as 28x28 PNGs in ``folder/images``, and
    ``folder/labels.csv`` naming them; returns the check-data flags for them."""
    from PIL import Image

    images = folder / "images"
    images.mkdir(parents=True)
    rows = []
    for i in range(count):
        Image.fromarray(data.test.images[i]).save(images / f"{i}.png")
        rows.append(f"{i}.png,{int(data.test.labels[i])}")
    csv = folder / "labels.csv"
    csv.write_text("filename,label\n" + "\n".join(rows) + "\n")
    return ["--data", "custom", "--custom-csv", str(csv), "--custom-images", str(images)]


def check_data_main(argv: list[str]) -> int:
    """``check-data`` mode: time ``fmnist-tui check-data`` (see the module's docstring)."""
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_data check-data")
    parser.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--images", type=int, default=10000, help="PNGs in the custom set")
    args = parser.parse_args(argv)
    try:
        data = load_fashion_mnist(args.data_dir, download=False)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if data.source.is_sample:
        print("error: only the bundled sample was found; the benchmark needs the full set")
        return 2
    print(f"data: {data.source.describe()}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-check-") as workdir:
        work = Path(workdir)
        sets = {
            "Fashion-MNIST (IDX, 70,000 images)": ["--data-dir", str(data.source.path)],
            f"CSV + folder of {args.images:,} PNGs": write_png_set(
                work / "pngs", data, min(args.images, len(data.test))
            ),
        }
        for name, flags in sets.items():
            cold, _ = time_check_data(flags, None, args.repeats)
            warm_cache = work / f"cache-{len(flags)}"
            time_check_data(flags, warm_cache, 1)  # fills the cache
            warm, out = time_check_data(flags, warm_cache, args.repeats)
            for label, values in (("cold", cold), ("warm", warm)):
                runs = ", ".join(f"{v:.2f}" for v in values)
                print(
                    f"{name}: check-data {label}: median {statistics.median(values):.2f} s "
                    f"(runs {runs})"
                )
            if name.startswith("Fashion-MNIST"):
                print("  what the check found on the full set:")
                for line in out.splitlines():
                    print(f"    {line}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check-data"]:
        return check_data_main(argv[1:])
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
