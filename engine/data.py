"""Fashion-MNIST on disk and in memory.

Finding the dataset (flag or ``FMNIST_DATA``, the user's cache, Debian's
``dataset-fashion-mnist``, a torchvision download, the bundled sample), loading its
IDX files (parsed by ``engine.idx``) into uint8 arrays with every shape and label
checked, and ``DeviceData``: a split held on the training device as one uint8 tensor
and batched by index, with normalisation and augmentation done as batched tensor
operations.

Parsing uses numpy only, so the app can show samples without importing torch.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import DataError

# The IDX format has a module of its own; its names are still imported from here too.
from engine.idx import IMAGES_MAGIC as IMAGES_MAGIC
from engine.idx import LABELS_MAGIC as LABELS_MAGIC
from engine.idx import read_idx as read_idx
from engine.idx import write_idx as write_idx

if TYPE_CHECKING:
    import torch

CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# Per-pixel statistics of the Fashion-MNIST training set, on the [0, 1] scale.
MEAN = 0.2860
STD = 0.3530

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "assets" / "fashion-mnist-sample"

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def cache_dir() -> Path:
    """The user's cache folder for fmnist-tui (``$XDG_CACHE_HOME/fmnist-tui``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fmnist-tui"


@dataclass(frozen=True)
class Split:
    """Images (uint8, N x H x W; N x H x W x 3 for colour data, ``color="rgb"``) and their
    integer labels (int64, N)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self, num_classes: int) -> list[int]:
        """Images per class label 0 .. ``num_classes - 1`` (more if a label is larger)."""
        return [int(count) for count in np.bincount(self.labels, minlength=num_classes)]

    def take(self, indices: np.ndarray) -> Split:
        """The images and labels at ``indices`` (an int array or a boolean mask), as a copy."""
        return Split(self.images[indices], self.labels[indices])


@dataclass(frozen=True)
class DataSource:
    """Where a dataset came from, in words a person can check."""

    kind: str  # "flag", "env", "cache", "system", "download", "sample" or "custom"
    path: Path
    is_sample: bool = False

    def describe(self) -> str:
        """Where the data came from, for a log line: ``Debian dataset-fashion-mnist: /usr/...``."""
        if self.is_sample:
            return (
                f"bundled SAMPLE of Fashion-MNIST ({self.path}), not the full set; "
                "install the full set with `apt-get install dataset-fashion-mnist`"
            )
        names = {
            "flag": "--data-dir",
            "env": "FMNIST_DATA",
            "cache": "user cache",
            "system": "Debian dataset-fashion-mnist",
            "download": "downloaded by torchvision",
            "custom": "custom dataset",
        }
        return f"{names.get(self.kind, self.kind)}: {self.path}"


@dataclass(frozen=True)
class ImageData:
    """A train and a test split with their class names and source, and optionally a
    validation split carved from the training images (``with_validation``)."""

    train: Split
    test: Split
    classes: tuple[str, ...]
    source: DataSource
    notes: tuple[str, ...] = field(default=())
    val: Split | None = None

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of every image, in pixels."""
        return (int(self.train.images.shape[1]), int(self.train.images.shape[2]))

    @property
    def channels(self) -> int:
        """Channels of every image: 3 for colour data (N x H x W x 3), else 1 (N x H x W)."""
        return image_channels(self.train.images)

    @property
    def num_classes(self) -> int:
        """How many classes there are: labels run from 0 to this less one."""
        return len(self.classes)

    def subset(self, train: int = 0, test: int = 0, seed: int = 0) -> ImageData:
        """A seeded random subset (0 keeps a split whole), for quick runs and tests: the
        images at ``subset_indices``."""
        new_train, new_test = self.train, self.test
        keep_train, keep_test = subset_indices(len(self.train), len(self.test), train, test, seed)
        if len(keep_train) < len(self.train):
            new_train = self.train.take(keep_train)
        if len(keep_test) < len(self.test):
            new_test = self.test.take(keep_test)
        return ImageData(new_train, new_test, self.classes, self.source, self.notes, self.val)

    def with_validation(
        self, fraction: float, seed: int = 0, *, keep_copies_together: bool = True
    ) -> ImageData:
        """The same data with ``fraction`` (0 to 1) of the training images moved, seeded
        and class-stratified, into a validation split; 0 leaves it as it is.

        ``round(N * fraction)`` of the N training images are held out, at least one, in
        each class's proportion. With ``keep_copies_together`` (split version 3 on,
        ``engine.identity``) each set of identical training images (the same pixels,
        ``engine.check.duplicate_groups``) goes wholly to one side, so the count may fall
        a little short of that; data without copies is split exactly as without it. The
        test split is untouched; the training images are copied once (into the two
        splits). Raises ``DataError`` when holding them out would leave no training image,
        or the data has a validation split already.
        """
        # Data loaded for its test split alone has no training images to hold out.
        if fraction <= 0 or len(self.train) == 0:
            return self
        if self.val is not None:
            raise DataError("the data has a validation split already")
        n = len(self.train)
        n_val = max(1, round(n * fraction))
        if n_val >= n:
            raise DataError(
                f"val_fraction {fraction:g} of {n:,} training images leaves none to train on; "
                "lower val_fraction (0: no validation split) or add images"
            )
        groups = None
        if keep_copies_together:
            from engine.check import duplicate_groups

            groups = duplicate_groups(self.train.images)
        train_index, val_index = stratified_split(self.train.labels, n_val, seed, groups)
        if len(train_index) == 0 and groups is not None:
            distinct = int(np.count_nonzero(groups == np.arange(n)))
            raise DataError(
                f"val_fraction {fraction:g}: the {n:,} training images are copies of "
                f"{distinct:,} distinct {'image' if distinct == 1 else 'images'}, and "
                "copies stay on one side of the validation split, so it would leave none to "
                "train on; set val_fraction 0 (no validation split) or add images"
            )
        return dataclasses.replace(
            self, train=self.train.take(train_index), val=self.train.take(val_index)
        )


def subset_indices(
    train_size: int, test_size: int, train: int = 0, test: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Which images ``ImageData.subset(train, test, seed)`` keeps of splits of
    ``train_size`` and ``test_size`` images: two sorted int64 arrays of indices into the
    whole splits (every index where a count is 0 or not under the split's size). The test
    draw comes after the train draw, from one generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    keep_train = np.arange(train_size, dtype=np.int64)
    keep_test = np.arange(test_size, dtype=np.int64)
    if 0 < train < train_size:
        keep_train = np.sort(rng.permutation(train_size)[:train]).astype(np.int64)
    if 0 < test < test_size:
        keep_test = np.sort(rng.permutation(test_size)[:test]).astype(np.int64)
    return keep_train, keep_test


# The validation split's own random stream: another draw than the custom test split's,
# which is seeded with the same seed.
_VALIDATION_STREAM = 0x76616C


def stratified_split(
    labels: np.ndarray, held_out: int, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Kept and held-out indices (sorted int64 arrays) of ``labels`` (int64 N): ``held_out``
    of them, seeded by ``seed``, each class in proportion to its share.

    ``groups`` (int64 N, ``engine.check.duplicate_groups``: for each row the first row with
    the same pixels) keeps each set of identical rows on one side: sets are ranked as rows
    are, by their first row's label, and held out in that order while they fit in
    ``held_out`` (a set that would pass it is skipped for the next that fits), so fewer may
    be held out; where every set is larger, the first is held out alone. Without
    ``groups``, or with no two rows alike, the split is the same as without them.
    """
    n = len(labels)
    rows = np.arange(n)
    heads = rows if groups is None else np.flatnonzero(groups == rows)  # each set's first row
    head_labels = labels[heads]
    rng = np.random.default_rng([seed, _VALIDATION_STREAM])
    order = rng.permutation(len(heads))
    # Each class's members spread evenly over [0, 1) in random order; the lowest positions
    # are held out, so every class gives its share of them.
    position = np.empty(len(heads))
    sorted_labels = head_labels[order]
    for label in np.unique(head_labels):
        members = order[sorted_labels == label]
        position[members] = (np.arange(len(members)) + rng.random()) / len(members)
    ranked = np.argsort(position, kind="stable")
    if groups is None or len(heads) == n:
        return np.sort(ranked[held_out:]), np.sort(ranked[:held_out])
    set_of = np.searchsorted(heads, groups)  # each row's set, as an index into heads
    sizes = np.bincount(set_of, minlength=len(heads))[ranked]
    # The leading sets that fit whole, then later ones that still fit in what is left.
    fit = int(np.searchsorted(np.cumsum(sizes), held_out, side="right"))
    chosen = list(range(fit))
    room = held_out - int(sizes[:fit].sum())
    for k in (np.flatnonzero(sizes[fit:] <= room) + fit).tolist():
        if room == 0:
            break
        if sizes[k] <= room:
            chosen.append(k)
            room -= int(sizes[k])
    held = np.zeros(len(heads), dtype=bool)
    held[ranked[chosen or [0]]] = True
    out = held[set_of]
    return np.flatnonzero(~out), np.flatnonzero(out)


# --- IDX files ----------------------------------------------------------------------


def _names(stem: str) -> tuple[str, ...]:
    """The names a Fashion-MNIST file goes by: ``train-images-idx3-ubyte``, the same with
    ``.gz``, and the dotted ``train-images.idx3-ubyte`` some archives unpack to."""
    dotted = stem.replace("-idx", ".idx")
    return (stem, stem + ".gz", dotted, dotted + ".gz")


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in _names(stem):
        candidate = folder / name
        # Anything there but a folder counts: a FIFO or device is then named and refused
        # by the reader, rather than called missing.
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def data_folders(folder: Path) -> tuple[Path, ...]:
    """Where the IDX files may be under ``folder``: in it, or where torchvision puts them
    (``raw/`` under ``FashionMNIST/``, given as ``folder`` or below it)."""
    return (folder, folder / "raw", folder / "FashionMNIST" / "raw", folder / "FashionMNIST")


# The files of the test split alone: what ``test_only`` loading reads.
TEST_FILES = ("test_images", "test_labels")


def idx_files(folder: Path, *, test_only: bool = False) -> dict[str, Path] | None:
    """The four Fashion-MNIST files in ``folder`` or torchvision's layout below it
    (``data_folders``), if all four are in one of those; whatever the compression.
    ``test_only``: the two test files (``TEST_FILES``) alone."""
    wanted = {key: FILES[key] for key in TEST_FILES} if test_only else FILES
    for candidate in data_folders(folder):
        found = {key: _find_file(candidate, stem) for key, stem in wanted.items()}
        if all(found.values()):
            return {key: path for key, path in found.items() if path is not None}
    return None


def _load_split(images_path: Path, labels_path: Path, num_classes: int) -> Split:
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected N x 28 x 28 images, got shape {images.shape}")
    if images.shape[1:] != (28, 28):
        raise DataError(
            f"{images_path}: images are {images.shape[1]} x {images.shape[2]}, expected 28 x 28"
        )
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected a 1-D list of labels, got shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; the two files must match"
        )
    if images.shape[0] == 0:
        raise DataError(f"{images_path}: holds no images")
    if labels.size and int(labels.max()) >= num_classes:
        raise DataError(
            f"{labels_path}: label {int(labels.max())} is out of range 0-{num_classes - 1}"
        )
    return Split(images, labels.astype(np.int64))


def empty_split(shape: tuple[int, int], channels: int = 1) -> Split:
    """A split of no images (uint8 0 x H x W, ``shape`` = (H, W) pixels; 0 x H x W x 3 with
    ``channels`` 3) and no labels: the train split of data loaded ``test_only``."""
    dims = (0, *shape, *((channels,) if channels != 1 else ()))
    return Split(np.zeros(dims, dtype=np.uint8), np.zeros(0, dtype=np.int64))


def load_idx_folder(folder: Path, source: DataSource, *, test_only: bool = False) -> ImageData:
    """Load Fashion-MNIST from a folder holding the four IDX files: uint8 N x 28 x 28
    images, int64 N labels. ``test_only`` reads the two test files alone (``TEST_FILES``;
    the train split is then empty), for looking at a model's test results.

    Raises ``DataError`` naming the missing or damaged file.
    """
    files = idx_files(folder, test_only=test_only)
    if files is None:
        raise DataError(_not_fashion_mnist(folder, test_only=test_only))
    n = len(CLASSES)
    if test_only:
        train = empty_split((28, 28))
    else:
        train = _load_split(files["train_images"], files["train_labels"], n)
    test = _load_split(files["test_images"], files["test_labels"], n)
    notes = (source.describe(),) if source.is_sample else ()
    return ImageData(train, test, CLASSES, source, notes)


# Files people have in place of the IDX files: torchvision's own pickles (older versions
# kept only these), Kaggle's CSVs, and archives not yet unpacked.
_PROCESSED = ("processed/training.pt", "processed/test.pt")
_KAGGLE_CSVS = ("fashion-mnist_train.csv", "fashion-mnist_test.csv")
_ARCHIVES = ("FashionMNIST.zip", "fashion-mnist.zip", "archive.zip", "FashionMNIST.tar.gz")


def _not_fashion_mnist(folder: Path, *, test_only: bool = False) -> str:
    """Why ``folder`` is no Fashion-MNIST folder, in one line: what it lacks and, for files
    found that are not usable as they are, what to do; never what else it holds
    (``--data-dir /etc`` must not list /etc). ``test_only``: only the test files count."""
    stems = [FILES[key] for key in TEST_FILES] if test_only else list(FILES.values())
    wanted = ", ".join(f"{stem}[.gz]" for stem in stems)
    if not folder.exists():
        how = "a broken symbolic link" if folder.is_symlink() else "no such folder"
        return f"{folder}: {how}; give the folder that holds the four IDX files ({wanted})"
    if not folder.is_dir():
        return f"{folder}: not a folder; give the folder that holds the four IDX files ({wanted})"
    # The place holding the most of the four files is where the rest were meant to be.
    places = [p for p in data_folders(folder) if p.is_dir()]
    missing_at = {p: [stem for stem in stems if _find_file(p, stem) is None] for p in places}
    place = min(places, key=lambda p: len(missing_at[p]))
    missing = missing_at[place]
    if len(missing) < len(stems):
        return (
            f"{place}: no Fashion-MNIST here; missing "
            + ", ".join(f"{m}[.gz]" for m in missing)
            + "; put the missing files beside the others"
        )
    for root in (folder, folder / "FashionMNIST"):
        found = [root / name for name in _PROCESSED if (root / name).is_file()]
        if found:
            return (
                f"{folder}: holds torchvision's processed files ({', '.join(map(str, found))}) "
                "but not the raw IDX files; fmnist-tui reads only the raw files: run "
                f"torchvision's FashionMNIST(root, download=True) again or put {wanted} in "
                f"{root / 'raw'}"
            )
    train_csv, test_csv = (folder / name for name in _KAGGLE_CSVS)
    if train_csv.is_file():
        test = f" --custom-test-csv {test_csv}" if test_csv.is_file() else ""
        return (
            f"{folder}: holds Kaggle's Fashion-MNIST CSV ({train_csv.name}), not IDX files; "
            f"train on it with --data csv-pixels --custom-csv {train_csv}{test}"
        )
    found = [folder / name for name in _ARCHIVES if (folder / name).is_file()]
    if found:
        return (
            f"{folder}: holds the archive {found[0]}, not the IDX files; unpack it and give "
            "the folder with the files it holds"
        )
    return (
        f"{folder}: no Fashion-MNIST here: "
        + ("neither test IDX file" if test_only else "none of the four IDX files")
        + " is in it; "
        f"a data folder holds {wanted}"
    )


def _download(target: Path) -> bool:
    """Fetch Fashion-MNIST with torchvision into ``target``; False when offline."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)
    try:
        from torchvision.datasets import FashionMNIST

        target.mkdir(parents=True, exist_ok=True)
        FashionMNIST(str(target), train=True, download=True)
        FashionMNIST(str(target), train=False, download=True)
        return idx_files(target) is not None
    except Exception:
        # Any failure here (no network, a proxy, a half-written file) means
        # "not downloadable now"; the next source in line is used instead.
        return False
    finally:
        socket.setdefaulttimeout(previous)


def locate_fashion_mnist(
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    system_dir: Path = SYSTEM_DIR,
    sample_dir: Path = SAMPLE_DIR,
    test_only: bool = False,
) -> DataSource:
    """Find Fashion-MNIST in DESIGN order and say where it is.

    An explicit ``data_dir`` (or ``FMNIST_DATA``) must hold the files: it is never
    silently passed over for another source. ``test_only``: a source needs only the test
    files (``TEST_FILES``). Raises ``DataError`` when it does not, or when no source has
    the data.
    """
    only = {"test_only": test_only}
    if data_dir is not None and str(data_dir) != "":
        folder = Path(data_dir).expanduser()
        if idx_files(folder, **only) is None:
            load_idx_folder(folder, DataSource("flag", folder), **only)  # raises, saying why
        return DataSource("flag", folder)
    env = os.environ.get("FMNIST_DATA")
    if env:
        folder = Path(env).expanduser()
        if idx_files(folder, **only) is None:
            load_idx_folder(folder, DataSource("env", folder), **only)
        return DataSource("env", folder)
    cache = cache_dir()
    if idx_files(cache, **only) is not None:
        return DataSource("cache", cache)
    if idx_files(system_dir, **only) is not None:
        return DataSource("system", system_dir)
    if download and _download(cache):
        return DataSource("download", cache)
    if idx_files(sample_dir, **only) is not None:
        return DataSource("sample", sample_dir, is_sample=True)
    raise DataError(
        "Fashion-MNIST not found: pass --data-dir, set FMNIST_DATA, or run "
        "`apt-get install dataset-fashion-mnist`; the bundled sample is missing too "
        f"({sample_dir})"
    )


def load_fashion_mnist(
    data_dir: str | Path | None = None, *, download: bool = True, test_only: bool = False
) -> ImageData:
    """Locate and load Fashion-MNIST as uint8 N x 28 x 28 images and int64 N labels.

    The full set has 60,000 train and 10,000 test images. ``test_only`` finds and reads
    the two test files alone (the train split is then empty: 0 x 28 x 28), for looking at
    a model's test results without reading the training images. Raises ``DataError`` when
    no source holds it or its files are damaged.
    """
    source = locate_fashion_mnist(data_dir, download=download, test_only=test_only)
    return load_idx_folder(source.path, source, test_only=test_only)


# --- On the device ------------------------------------------------------------------


@dataclass(frozen=True)
class Augment:
    """Batched augmentation: random horizontal flip and random crop with zero padding."""

    flip: bool = True
    crop_padding: int = 2


def augment_batch(x: torch.Tensor, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """Flip and crop a batch (B x C x H x W, any dtype) with one gather; no per-sample Python.

    The crop pads with zeros, so pass pixels before normalisation: zero is then black, the
    background of every Fashion-MNIST image.
    """
    import torch

    b, _, h, w = x.shape
    device = x.device
    if augment.flip:
        flip = torch.rand(b, 1, 1, 1, device=device, generator=generator) < 0.5
        x = torch.where(flip, x.flip(3), x)
    p = augment.crop_padding
    if p > 0:
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (b, 1), device=device, generator=generator)
        dx = torch.randint(0, 2 * p + 1, (b, 1), device=device, generator=generator)
        rows = (torch.arange(h, device=device) + dy)[:, None, :, None]
        cols = (torch.arange(w, device=device) + dx)[:, None, None, :]
        batch = torch.arange(b, device=device)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    return x


def image_channels(images: np.ndarray | torch.Tensor) -> int:
    """Channels of uint8 images: N x H x W is 1, N x H x W x C is C."""
    return int(images.shape[3]) if images.ndim == 4 else 1


def channels_first(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W (grey) -> N x 1 x H x W; N x H x W x C (colour) -> N x C x H x W
    (a view, no copy)."""
    if images.ndim == 4:
        return images.permute(0, 3, 1, 2)
    return images.unsqueeze(1)


def luminance(images: np.ndarray) -> np.ndarray:
    """Grey uint8 images for showing: N x H x W as they are, N x H x W x 3 (colour) as their
    luminance, N x H x W, ITU-R BT.601 as ``engine.decode`` turns colour into grey."""
    if images.ndim == 4:
        wide = images.astype(np.int32)
        grey = (wide[..., 0] * 299 + wide[..., 1] * 587 + wide[..., 2] * 114 + 500) // 1000
        return grey.astype(np.uint8)
    return images


def model_input(images: torch.Tensor, normalize: bool) -> torch.Tensor:
    """uint8 N x H x W -> float N x 1 x H x W (N x H x W x C -> N x C x H x W), scaled to
    [0, 1] and, if asked, normalised.

    Normalising uses Fashion-MNIST's ``MEAN`` and ``STD`` for every channel alike (colour
    data has no statistics of its own: it only centres the input). Scaling and normalising
    are folded into one multiply and one subtract: this runs on every training batch.
    """
    return scale_input(channels_first(images), normalize)


def scale_input(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    """uint8 N x C x H x W -> float, scaled (and normalised) as ``model_input`` does."""
    x = x.float()
    if normalize:
        return x.mul_(1.0 / (255.0 * STD)).sub_(MEAN / STD)
    return x.mul_(1.0 / 255.0)


# Largest float copy of a split ``DeviceData.hold_inputs`` keeps (bytes): Fashion-MNIST's
# training split is 188 MB as float32.
INPUTS_BUDGET = 1 << 30


class DeviceData:
    """One split held on the training device as uint8, served as float batches by index.

    ``hold_inputs()`` also keeps the split as the model's float input, so that batches
    without augmentation are one gather, not a gather, a cast and a scale each.
    """

    def __init__(
        self,
        split: Split,
        device: torch.device | str,
        *,
        num_classes: int,
        normalize: bool = True,
    ) -> None:
        import torch

        self.device = torch.device(device)
        self.images = torch.from_numpy(np.ascontiguousarray(split.images)).to(self.device)
        self.labels = torch.from_numpy(np.ascontiguousarray(split.labels)).to(self.device)
        self.num_classes = num_classes
        self.normalize = normalize
        self.inputs: torch.Tensor | None = None  # float N x C x H x W, see hold_inputs

    def hold_inputs(self, budget: int = INPUTS_BUDGET) -> bool:
        """Keep the whole split as float32 model input (``model_input`` of every image, the
        same values the batches would compute) when it takes at most ``budget`` bytes;
        True if it does. Batches with augmentation still start from the uint8 pixels."""
        size = self.images.numel() * 4
        if size > budget:
            return False
        self.inputs = model_input(self.images, self.normalize).contiguous()
        return True

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def num_batches(self, batch_size: int) -> int:
        """Batches of ``batch_size`` per pass, the last one possibly short."""
        return (len(self) + batch_size - 1) // batch_size

    def permutation(self, generator: torch.Generator) -> torch.Tensor:
        """A shuffled order of the split, drawn from ``generator`` (a CPU generator)."""
        import torch

        return torch.randperm(len(self), generator=generator).to(self.device, non_blocking=True)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 B x H x W pixels (B x H x W x C for colour) as the model's float
        B x C x H x W input (see ``model_input``)."""
        return model_input(images, self.normalize)

    def batches(
        self,
        batch_size: int,
        *,
        order: torch.Tensor | None = None,
        start: int = 0,
        augment: Augment | None = None,
        generator: torch.Generator | None = None,
        one_hot: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (inputs, targets) for batches ``start`` onwards, in ``order`` if given.

        Inputs are float B x C x H x W, C = 1 or 3 (see ``model_input``); targets int64 B labels, or
        float B x classes one-hot rows with ``one_hot``. ``order`` is a permutation of
        the split on its device, or a part of one (a data-parallel rank's share); the
        batches cover it. ``augment`` applies only when ``generator`` is given.
        """
        import torch

        n = len(self) if order is None else len(order)
        held = self.inputs if augment is None or generator is None else None
        for i in range(start * batch_size, n, batch_size):
            if held is not None:
                rows: slice | torch.Tensor = (
                    slice(i, i + batch_size) if order is None else order[i : i + batch_size]
                )
                labels = self.labels[rows]
                targets = (
                    torch.nn.functional.one_hot(labels, self.num_classes).float()
                    if one_hot
                    else labels
                )
                yield held[rows], targets
                continue
            if order is None:
                images = self.images[i : i + batch_size]
                labels = self.labels[i : i + batch_size]
            else:
                idx = order[i : i + batch_size]
                images = self.images[idx]
                labels = self.labels[idx]
            x = channels_first(images)
            if augment is not None and generator is not None:
                # On the uint8 pixels: padding a normalised batch with zeros would add grey
                # borders (the mean), not black ones.
                x = augment_batch(x, augment, generator)
            targets = (
                torch.nn.functional.one_hot(labels, self.num_classes).float() if one_hot else labels
            )
            yield scale_input(x, self.normalize), targets
