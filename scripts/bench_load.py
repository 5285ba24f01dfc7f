"""Benchmark loading a custom dataset (a CSV + folder of PNGs): time and peak memory.

The sets are written once from the real Fashion-MNIST images (train then test, cycled; an
image's index is written into its first three pixels, so no two files are the same) under
``--workdir``, as ``images/<label>/<i>.png`` with ``labels.csv`` naming them: the layout
both ``--data custom`` and torchvision's ``ImageFolder`` read. Sizes: 10,000 and 50,000
images at 28 px, 50,000 at 128 px (upscaled, bilinear) and, with ``--large``, 500,000 at 28.

For each set, each figure the median of ``--repeats`` runs, each run a new process (so
caches in memory and peak memory start afresh):

- ``first``: ``load_custom`` with an empty decode cache (every image decoded);
- ``cached``: ``load_custom`` again, the decode cache filled;
- ``test-only``: ``load_custom(test_only=True)``, cached, as Inspect loads a run's test split;
- ``read_image``: a bare ``torchvision.io.read_image`` pass over the same files, one process
  (the floor a cached load is held to: at most 1.2x);
- ``ImageFolder``: torchvision's ``ImageFolder(transform=PILToTensor())`` (its default
  loader: Pillow, to RGB; the least work that gives tensors) read through
  ``DataLoader(num_workers=0, batch_size=256)``, the tutorial's way to read a folder of
  images (the first decode must be at least as fast).

Peak memory is the process's peak resident set (``ru_maxrss``) less its resident set just
before the load, against the decoded pixels' bytes (at most 1.5x). A benchmark, not a
test: run it alone, on a quiet machine.

Run from the repository root: ``python -m scripts.bench_load [--repeats 3] [--large]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SETS = {"10k-28": (10_000, 28), "50k-28": (50_000, 28), "50k-128": (50_000, 128)}
LARGE = {"500k-28": (500_000, 28)}


def _write_chunk(args: tuple[str, int, int, np.ndarray, np.ndarray]) -> None:
    from PIL import Image

    folder, start, size, images, labels = args
    for offset, (image, label) in enumerate(zip(images, labels, strict=True)):
        i = start + offset
        pixels = image.copy()
        pixels.flat[:3] = (i & 255, (i >> 8) & 255, (i >> 16) & 255)
        picture = Image.fromarray(pixels)
        if size != pixels.shape[0]:
            picture = picture.resize((size, size), Image.Resampling.BILINEAR)
        picture.save(Path(folder) / "images" / str(int(label)) / f"{i}.png")


def make_set(folder: Path, count: int, size: int) -> Path:
    """``folder/labels.csv`` and ``folder/images/<label>/<i>.png``: ``count`` PNGs of
    ``size`` x ``size`` px from the real Fashion-MNIST, written once (a ``done`` file marks
    a finished set). Returns ``folder``."""
    if (folder / "done").exists():
        return folder
    from engine.data import load_fashion_mnist

    data = load_fashion_mnist(download=False)
    pool_images = np.concatenate([data.train.images, data.test.images])
    pool_labels = np.concatenate([data.train.labels, data.test.labels])
    index = np.arange(count) % len(pool_images)
    labels = pool_labels[index]
    for label in range(10):
        (folder / "images" / str(label)).mkdir(parents=True, exist_ok=True)
    chunk = 5_000
    jobs = [
        (str(folder), s, size, pool_images[index[s : s + chunk]], labels[s : s + chunk])
        for s in range(0, count, chunk)
    ]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_write_chunk, jobs))
    rows = [f"{int(label)}/{i}.png,{int(label)}" for i, label in enumerate(labels)]
    (folder / "labels.csv").write_text("filename,label\n" + "\n".join(rows) + "\n")
    (folder / "done").write_text("")
    return folder


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(kind: str, folder: Path, size: int) -> dict[str, float]:
    """One figure, in this process: seconds and peak memory growth in bytes."""
    csv_path, images = folder / "labels.csv", folder / "images"
    if kind in ("first", "cached", "test-only"):
        from PIL import Image, PngImagePlugin  # noqa: F401  (imports are not loading)

        from engine.custom import load_custom

        before = _rss_bytes()
        start = time.perf_counter()
        data = load_custom(csv_path, images, size=size, test_only=kind == "test-only")
        seconds = time.perf_counter() - start
        pixels = data.train.images.nbytes + data.test.images.nbytes
        count = len(data.train) + len(data.test)
    elif kind == "read_image":
        import torch
        from torchvision.io import read_image

        torch.set_num_threads(1)
        paths = [images / row.split(",")[0] for row in csv_path.read_text().split()[1:]]
        before = _rss_bytes()
        start = time.perf_counter()
        for path in paths:
            read_image(str(path))
        seconds = time.perf_counter() - start
        pixels, count = 0, len(paths)
    else:
        import torch
        from torch.utils.data import DataLoader
        from torchvision.datasets import ImageFolder
        from torchvision.transforms import PILToTensor

        torch.set_num_threads(1)
        before = _rss_bytes()
        start = time.perf_counter()
        dataset = ImageFolder(str(images), transform=PILToTensor())
        count = 0
        for x, _ in DataLoader(dataset, batch_size=256, num_workers=0):
            count += len(x)
        seconds = time.perf_counter() - start
        pixels = 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"seconds": seconds, "peak": peak - before, "pixels": pixels, "count": count}


def run_child(kind: str, folder: Path, size: int, cache: Path) -> dict[str, float]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bench_load", "--child", kind, str(folder), str(size)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} on {folder} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        print(json.dumps(measure(argv[1], Path(argv[2]), int(argv[3]))))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument("--large", action="store_true", help="also 500,000 images at 28 px")
    parser.add_argument("--only", help="one set by name (10k-28, 50k-28, 50k-128, 500k-28)")
    parser.add_argument(
        "--workdir",
        default=os.path.join(tempfile.gettempdir(), "fmnist-tui-bench-load"),
        help="where the image sets are written once and kept",
    )
    args = parser.parse_args(argv)
    sets = {**SETS, **(LARGE if args.large else {})}
    if args.only:
        sets = {args.only: {**SETS, **LARGE}[args.only]}
    print(f"{os.cpu_count()} CPUs; median of {args.repeats}, each a new process")
    for name, (count, size) in sets.items():
        folder = make_set(Path(args.workdir) / name, count, size)
        kinds = ["first", "cached", "test-only", "read_image"]
        if count <= 50_000:
            kinds.append("ImageFolder")
        figures: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="bench-load-cache-") as cache:
                for kind in kinds:
                    figures[kind].append(run_child(kind, folder, size, Path(cache)))
        median = {k: statistics.median(r["seconds"] for r in v) for k, v in figures.items()}
        print(f"\n{name}: {count:,} PNGs of {size}x{size} px")
        for kind, runs in figures.items():
            rate = runs[0]["count"] / median[kind]
            line = f"  {kind:<12} {median[kind]:7.2f} s  {rate:9,.0f} images/s"
            if runs[0]["pixels"]:
                peak = statistics.median(r["peak"] for r in runs)
                line += (
                    f"  peak +{peak / 2**20:,.0f} MiB for {runs[0]['pixels'] / 2**20:,.0f} MiB"
                    f" of pixels ({peak / runs[0]['pixels']:.2f}x)"
                )
            print(line)
        print(f"  cached / read_image: {median['cached'] / median['read_image']:.2f}x")
        if "ImageFolder" in median:
            speed = median["ImageFolder"] / median["first"]
            print(f"  first decode speed / ImageFolder: {speed:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
