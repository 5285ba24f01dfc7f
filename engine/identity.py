"""The identity of a run's data: what a resume compares, and the key of the check's cache.

``data_identity`` describes the data a run trains and tests on (JSON-ready): where it
came from, its files with their sizes (and a SHA-256 of each CSV and classes file), the
images in each split, a SHA-256 of the labels and one of the pixels, the classes, and
the split: its seed, test fraction and ``SPLIT_VERSION``, the version of how splits are
made. A run records it in its checkpoints and ``status.json``; ``differences`` says what
changed between two identities, in words.

A run made before identities were recorded has none: it resumes on the splits of
``FIRST_SPLIT_VERSION``, as it was made. Numpy and hashlib only: no torch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.config import TrainConfig
from engine.data import ImageData, idx_files

if TYPE_CHECKING:
    from engine.runs import Run

__all__ = [
    "FIRST_SPLIT_VERSION",
    "IDENTITY_FORMAT",
    "SPLIT_VERSION",
    "VALIDATION_BY_PIXELS",
    "data_identity",
    "differences",
    "run_split_version",
    "same_test_split",
    "split_indices",
    "split_version",
]

# How this code splits data it splits itself (the test split of a custom CSV without a test
# CSV, csv-pixels or an image folder without test/; the validation split of any data): 1,
# seeded and class-stratified, row by row (fmnist-tui before identities were recorded); 2,
# the same, with exact duplicate images kept on one side of the test split; 3, and of the
# validation split too. A run keeps the version it was made with.
SPLIT_VERSION = 3
FIRST_SPLIT_VERSION = 1
# The first version whose test split keeps identical images on one side.
TEST_SPLIT_BY_PIXELS = 2
# The first version whose validation split keeps identical images on one side.
VALIDATION_BY_PIXELS = 3
IDENTITY_FORMAT = 1


def same_test_split(version: int, other: int) -> bool:
    """Whether split versions ``version`` and ``other`` make the same test split from the
    same data (2 and 3 do: 3 changed only the validation split), so data loaded under one
    serves the other before its validation split is made."""
    return min(version, VALIDATION_BY_PIXELS - 1) == min(other, VALIDATION_BY_PIXELS - 1)


def split_version(identity: object) -> int:
    """The split version a recorded identity names; ``FIRST_SPLIT_VERSION`` for a run
    made before identities were recorded (``identity`` None or not one)."""
    if isinstance(identity, dict):
        split = identity.get("split")
        if isinstance(split, dict):
            version = split.get("version")
            if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
                return version
    return FIRST_SPLIT_VERSION


def _sha256(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _file(path: Path, content: bool) -> dict[str, Any]:
    """A file's name and size in bytes, and with ``content`` its SHA-256 (None: unreadable)."""
    entry: dict[str, Any] = {"name": path.name}
    try:
        entry["size"] = path.stat().st_size
        if content:
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        entry["size"] = None
    return entry


def _files(config: TrainConfig, data: ImageData) -> dict[str, dict[str, Any]]:
    """The data's files by role, as ``_file`` describes them."""
    found: dict[str, dict[str, Any]] = {}
    if data.source.kind != "custom":
        for role, path in (idx_files(data.source.path) or {}).items():
            found[role] = _file(path, content=False)  # the labels and pixels hashes cover them
        return found
    for role in ("custom_csv", "custom_test_csv", "classes_file"):
        value = getattr(config, role)
        if value and not (config.data == "image-folder" and role != "classes_file"):
            found[role] = _file(Path(value), content=True)
    return found


def data_identity(
    config: TrainConfig, data: ImageData, version: int = SPLIT_VERSION
) -> dict[str, Any]:
    """The identity of ``data``, loaded for ``config`` with splits of ``version``.

    JSON-ready: ``source`` (in words), ``files`` by role (name, size in bytes, SHA-256 of
    CSVs and classes files), ``counts`` of images per split, ``classes`` (count and
    SHA-256 of the names), ``labels`` and ``pixels`` (SHA-256 of every split's int64
    labels and uint8 pixels, train then validation then test), and ``split`` (seed, test
    fraction, version). Costs one hash over the pixels (about 40 ms for Fashion-MNIST).
    """
    val = getattr(data, "val", None)
    splits = [data.train, *([val] if val is not None else []), data.test]
    counts = {"train": len(data.train), "test": len(data.test)}
    if val is not None:
        counts["val"] = len(val)
    classes_text = "\n".join(data.classes).encode()
    return {
        "format": IDENTITY_FORMAT,
        "kind": config.data,
        "source": data.source.describe(),
        "files": _files(config, data),
        "counts": counts,
        "image_shape": list(data.image_shape),
        "classes": {"count": len(data.classes), "sha256": hashlib.sha256(classes_text).hexdigest()},
        "labels": _sha256(*(split.labels.astype(np.int64) for split in splits)),
        "pixels": _sha256(*(split.images for split in splits)),
        "split": {
            "seed": config.seed,
            "test_fraction": config.test_fraction,
            "version": version,
        },
    }


_ROLES = {
    "train_images": "training images file",
    "train_labels": "training labels file",
    "test_images": "test images file",
    "test_labels": "test labels file",
    "custom_csv": "CSV",
    "custom_test_csv": "test CSV",
    "classes_file": "classes file",
}


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What changed from the ``recorded`` identity to the ``current`` one, one short phrase
    each ("train images: 32 then, 48 now"); [] when the data is the same.

    Where the data is (its source, its file names) may change: a dataset moved or
    re-compressed is the same data. Its files' contents, counts, classes, labels, pixels
    and split may not.
    """
    changes: list[str] = []
    then_counts, now_counts = recorded.get("counts") or {}, current.get("counts") or {}
    for split in ("train", "val", "test"):
        a, b = then_counts.get(split, 0), now_counts.get(split, 0)
        if a != b:
            name = "validation" if split == "val" else split
            changes.append(f"{name} images: {_count(a)} then, {_count(b)} now")
    then_files, now_files = recorded.get("files") or {}, current.get("files") or {}
    for role in sorted(set(then_files) | set(now_files)):
        a, b = then_files.get(role), now_files.get(role)
        what = f"{_ROLES.get(role, role)}"
        if a is None or b is None:
            changes.append(
                f"{what}: {'none' if a is None else a.get('name')} then, "
                f"{'none' if b is None else b.get('name')} now"
            )
        elif a.get("sha256") != b.get("sha256"):
            sizes = (
                f"{_count(a.get('size'))} bytes then, {_count(b.get('size'))} now"
                if a.get("size") != b.get("size")
                else "same size, other content"
            )
            changes.append(f"{what} {b.get('name')}: {sizes}")
    if recorded.get("image_shape") != current.get("image_shape"):
        changes.append(f"image size: {_shape(recorded)} then, {_shape(current)} now")
    a_classes, b_classes = recorded.get("classes") or {}, current.get("classes") or {}
    if a_classes != b_classes:
        if a_classes.get("count") != b_classes.get("count"):
            changes.append(f"classes: {a_classes.get('count')} then, {b_classes.get('count')} now")
        else:
            changes.append("the class names differ")
    if recorded.get("labels") != current.get("labels") and not changes:
        changes.append("the labels differ")
    if recorded.get("pixels") != current.get("pixels") and not changes:
        changes.append("the images' pixels differ")
    a_split, b_split = recorded.get("split") or {}, current.get("split") or {}
    for key, word in (
        ("seed", "split seed"),
        ("test_fraction", "test fraction"),
        ("version", "split version"),
    ):
        if a_split.get(key) != b_split.get(key):
            changes.append(f"{word}: {a_split.get(key)} then, {b_split.get(key)} now")
    if changes and recorded.get("source") != current.get("source"):
        changes.append(f"source: {recorded.get('source')} then, {current.get('source')} now")
    return changes


def _count(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _shape(identity: dict[str, Any]) -> str:
    shape = identity.get("image_shape")
    return f"{shape[1]}x{shape[0]}" if isinstance(shape, list) and len(shape) == 2 else "?"


def split_indices(
    labels: np.ndarray, test_fraction: float, seed: int, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices (sorted int64 arrays) of ``labels`` (int64 N): about
    ``round(N * test_fraction)`` rows held out, seeded by ``seed``, each class in proportion.

    ``groups`` (int64 N, ``engine.check.duplicate_groups``: the first row with the same
    pixels) keeps each set of identical images on one side: sets are split as whole
    units, stratified by their first row's label, and the held-out sets are taken until
    they reach the count (the last may pass it). Without ``groups`` (or with no two rows
    alike) this is split version 1's split, row for row.
    """
    n = len(labels)
    rows = np.arange(n)
    if groups is None:
        groups = rows
    heads = np.flatnonzero(groups == rows)  # each set's first row, in order
    head_labels = labels[heads]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(heads))
    # Spread each class's sets evenly over [0, 1) and hold out the lowest positions, so each
    # class lands in the test split in proportion: a small set keeps its rare classes in both.
    position = np.empty(len(heads))
    for label in np.unique(head_labels):
        members = order[head_labels[order] == label]
        position[members] = (np.arange(len(members)) + rng.random()) / len(members)
    n_test = round(n * test_fraction)
    ranked = np.argsort(position, kind="stable")
    set_of = np.searchsorted(heads, groups)  # each row's set, as an index into heads
    sizes = np.bincount(set_of, minlength=len(heads))
    reached = np.cumsum(sizes[ranked])
    taken = int(np.searchsorted(reached, n_test)) + 1 if n_test > 0 else 0
    held_out = np.zeros(len(heads), dtype=bool)
    held_out[ranked[:taken]] = True
    test = held_out[set_of]
    return np.flatnonzero(~test), np.flatnonzero(test)


def run_split_version(run: Run) -> int:
    """The split version ``run`` was made with, from its ``status.json`` (no torch):
    ``FIRST_SPLIT_VERSION`` for a run made before identities were recorded."""
    return split_version(run.read_status().get("data"))
