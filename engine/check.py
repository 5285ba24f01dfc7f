"""The dataset check: what is wrong with a dataset before a run trains on it.

``check_data`` looks at a loaded ``ImageData`` and says, in a ``DataCheck``: too few
classes (fewer than two classes with training images: refused), classes with no images
in a split (their accuracy is n/a, not 0%), exact duplicate images (the same pixels),
the same image under different labels, and test (or validation) images that are copies
of training images. The loader's own notes (colour and 16-bit conversions, how many
images each alpha rule touched) are kept with the findings.

The result is cached under the user's cache folder by the data's identity
(``engine.identity``), so a check of unchanged data reads one small file. Numpy only:
no torch, no torchvision.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data import ImageData, cache_dir

__all__ = ["CHECK_VERSION", "DataCheck", "check_data", "duplicate_groups"]

# Bump when what the check finds, or how it says it, changes: older cached results are
# then never read.
CHECK_VERSION = 1

# Examples of a finding listed at most, and images named in one.
_EXAMPLES = 3


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """For each of ``images`` (uint8 N x H x W), the index of the first image with exactly
    the same pixels (itself when it is the first): an int64 array of N.

    Rows are hashed once (a 64-bit hash of their bytes), and images whose hashes agree
    are compared pixel by pixel, so a hash collision never joins two different images.
    Time is linear in the pixels.
    """
    n = len(images)
    first = np.arange(n, dtype=np.int64)
    if n < 2:
        return first
    rows = np.ascontiguousarray(images).reshape(n, -1)
    keys = np.fromiter((hash(row.tobytes()) for row in rows), dtype=np.int64, count=n)
    order = np.argsort(keys, kind="stable")  # equal keys keep their order: earliest first
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, n])
    for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
        members = order[start : start + size]
        while len(members):
            same = (rows[members] == rows[members[0]]).all(axis=1)
            first[members[same]] = members[0]
            members = members[~same]
    return first


@dataclass(frozen=True)
class DataCheck:
    """What the dataset check found.

    ``counts`` holds, per split ("train", "val" when there is one, "test"), the images of
    each class (C ints); ``empty`` the classes with none there. ``duplicates`` counts
    images that repeat an earlier one exactly (``duplicate_groups``: sets of equal
    images), ``conflicting`` the sets whose images carry more than one label, ``leaked``
    per held-out split the images that are copies of training images. ``refusal`` is
    why the data cannot be trained on ("" when it can); ``findings`` says it all in lines.
    """

    classes: list[str]
    counts: dict[str, list[int]]
    empty: dict[str, list[int]]
    duplicates: int
    duplicate_groups: int
    conflicting: int
    leaked: dict[str, int]
    examples: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    refusal: str = ""
    seconds: float = 0.0  # how long the check itself took (not reading the cache)
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The check as JSON-ready data (``cached`` left out)."""
        out = asdict(self)
        out.pop("cached")
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataCheck:
        """Rebuild from ``to_dict``; ``ValueError`` (or ``TypeError``) when it does not fit."""
        return cls(**values)

    def findings(self) -> list[str]:
        """What the check found, one line each: the refusal first, then classes with no
        images, duplicates, conflicting labels, leakage (or that there are none) and the
        loader's notes (``note: ...``)."""
        lines = self.problems()
        if not (self.duplicates or self.conflicting or any(self.leaked.values())):
            lines.append(
                "no duplicate images (same pixels), no conflicting labels, "
                "no test images copied from training"
            )
        return lines + [f"note: {note}" for note in self.notes]

    def problems(self) -> list[str]:
        """The findings that are problems, one line each (none for clean data)."""
        lines = [self.refusal] if self.refusal else []
        lines += self.empty_lines()
        if self.duplicates:
            lines.append(
                f"{_images(self.duplicates)} repeat another image exactly (same pixels; "
                f"{self.duplicate_groups:,} sets of copies)"
                + _for_example(self.examples.get("duplicates"))
            )
        if self.conflicting:
            lines.append(
                (
                    "1 set of identical images carries"
                    if self.conflicting == 1
                    else f"{self.conflicting:,} sets of identical images carry"
                )
                + " different labels"
                + _for_example(self.examples.get("conflicting"))
            )
        for split, count in self.leaked.items():
            if count:
                name = "validation" if split == "val" else split
                lines.append(
                    f"{_images(count)} of the {name} split are copies of training images: "
                    f"its accuracy counts images the model trained on"
                    + _for_example(self.examples.get(f"leaked_{split}"))
                )
        return lines

    def empty_lines(self) -> list[str]:
        """One line per split with classes that have no images in it."""
        lines = []
        # Empty in every split, not only in every split that has an empty class.
        splits = list(self.counts) or list(self.empty)
        everywhere = (
            set.intersection(*(set(self.empty.get(split, [])) for split in splits))
            if splits
            else set()
        )
        if everywhere:
            listed = _classes(self.classes, sorted(everywhere))
            hint = ""
            if 0 in everywhere and self.classes and self.classes[0] == "0":
                hint = (
                    "; if the labels count from 1, number them from 0, or give a classes "
                    "file whose first line names class 0"
                )
            lines.append(f"{listed} no images in any split: accuracy n/a{hint}")
        for split, empty in self.empty.items():
            only_here = [c for c in empty if c not in everywhere]
            if only_here:
                name = "validation" if split == "val" else split
                lines.append(
                    f"{_classes(self.classes, only_here)} no images in the {name} split"
                    + (": its accuracy there is n/a" if split != "train" else "")
                )
        return lines


def _images(count: int) -> str:
    return f"{count:,} image" if count == 1 else f"{count:,} images"


def _classes(names: list[str], numbers: list[int]) -> str:
    shown = ", ".join(f"{i} ({names[i]})" if names[i] != str(i) else str(i) for i in numbers[:8])
    more = f" and {len(numbers) - 8} more" if len(numbers) > 8 else ""
    return f"class {shown} has" if len(numbers) == 1 else f"classes {shown}{more} have"


def _for_example(examples: list[str] | None) -> str:
    return f", e.g. {'; '.join(examples)}" if examples else ""


def check_data(data: ImageData, identity: dict[str, Any] | None = None) -> DataCheck:
    """Check ``data`` (see ``DataCheck``); with ``identity`` (``engine.identity``), the
    result is read from and written to the cache under that identity.

    Never raises for the data's sake: a refusal is ``DataCheck.refusal``. Costs one pass
    over the pixels when not cached, one small file read when cached.
    """
    import time

    cache_file = _cache_file(identity) if identity is not None else None
    if cache_file is not None:
        cached = _read(cache_file)
        if cached is not None:
            return cached
    started = time.perf_counter()
    result = _check(data)
    result = DataCheck(**{**result.to_dict(), "seconds": time.perf_counter() - started})
    if cache_file is not None:
        _write(cache_file, result)
    return result


def _check(data: ImageData) -> DataCheck:
    splits = {"train": data.train}
    val = getattr(data, "val", None)  # the validation split, where the data has one
    if val is not None and len(val):
        splits["val"] = val
    splits["test"] = data.test
    c = data.num_classes
    counts = {name: split.class_counts(c)[:c] for name, split in splits.items()}
    empty = {name: [i for i, n in enumerate(row) if n == 0] for name, row in counts.items()}
    refusal = ""
    present = [i for i, n in enumerate(counts["train"]) if n]
    if len(present) < 2:
        refusal = _too_few_classes(data, present, counts["train"])

    # Every image once, split after split, with where it came from.
    images = np.concatenate([split.images for split in splits.values()])
    labels = np.concatenate([split.labels for split in splits.values()])
    names = np.concatenate([np.full(len(split), i) for i, split in enumerate(splits.values())])
    offsets = np.cumsum([0, *(len(split) for split in splits.values())])
    split_names = list(splits)
    first = duplicate_groups(images)
    repeated = np.flatnonzero(first != np.arange(len(first)))

    def where(i: int) -> str:
        k = int(names[i])
        return f"{split_names[k]} #{i - offsets[k]} ({data.classes[int(labels[i])]})"

    examples: dict[str, list[str]] = {}
    groups = np.unique(first[repeated])
    examples["duplicates"] = [
        f"{where(int(first[i]))} = {where(int(i))}" for i in repeated[:_EXAMPLES].tolist()
    ]
    conflicting = 0
    conflict_examples = []
    if len(repeated):
        differs = labels[repeated] != labels[first[repeated]]
        bad_groups = np.unique(first[repeated[differs]])
        conflicting = len(bad_groups)
        for i in repeated[differs][:_EXAMPLES].tolist():
            conflict_examples.append(f"{where(int(first[i]))} = {where(int(i))}")
    examples["conflicting"] = conflict_examples
    leaked: dict[str, int] = {}
    train_end = offsets[1]
    for k, name in enumerate(split_names[1:], start=1):
        span = np.arange(offsets[k], offsets[k + 1])
        # An image of this split whose first copy is a training image.
        copies = span[first[span] < train_end]
        leaked[name] = len(copies)
        examples[f"leaked_{name}"] = [
            f"{where(int(i))} = {where(int(first[i]))}" for i in copies[:_EXAMPLES].tolist()
        ]
    return DataCheck(
        classes=list(data.classes),
        counts=counts,
        empty={name: row for name, row in empty.items() if row},
        duplicates=len(repeated),
        duplicate_groups=len(groups),
        conflicting=conflicting,
        leaked=leaked,
        examples={key: value for key, value in examples.items() if value},
        notes=list(data.notes),
        refusal=refusal,
    )


def _too_few_classes(data: ImageData, present: list[int], counts: list[int]) -> str:
    where = data.source.describe()
    if not present:
        return (
            f"{where}: the training split holds no images; a classifier needs images of "
            "two or more classes"
        )
    only = present[0]
    return (
        f"{where}: every training image is of one class, {data.classes[only]!r} "
        f"({counts[only]:,} images), so there is nothing to tell apart; a classifier needs "
        "two or more classes: check the labels"
    )


# --- the cache ----------------------------------------------------------------------


def _cache_file(identity: dict[str, Any]) -> Path:
    text = json.dumps({"check": CHECK_VERSION, "data": identity}, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:32]
    return cache_dir() / "checks" / f"{key}.json"


def _read(path: Path) -> DataCheck | None:
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
        check = DataCheck.from_dict(values)
    except (OSError, ValueError, TypeError):
        return None  # missing, cut short or foreign: checked again
    return DataCheck(**{**check.to_dict(), "cached": True})


def _write(path: Path, check: DataCheck) -> None:
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=".tmp-", suffix=".json", delete=False
        ) as f:
            temp = f.name
            json.dump(check.to_dict(), f)
        os.replace(temp, path)
    except OSError:
        # The cache only saves time: a read-only or full disk must not stop a run.
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
