"""Custom image datasets: a CSV of ``filename,label`` rows plus an image folder, as ``ImageData``.

This is the notes' ``CustomImageDataset`` format, decoded once with ``torchvision.io`` into the
same uint8 arrays as Fashion-MNIST, so training batches it on the device in the same way. Every
problem in the CSV, the folder or the images is gathered and reported in one ``DataError``.
This module reads the CSVs and checks the paths, the class names and the split;
``engine.image_files`` decodes the images and caches them under the user's cache folder.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data import DataSource, ImageData, Split
from engine.errors import DataError
from engine.fields import COLOR_POLICIES, RESIZE_POLICIES, shown
from engine.files import read_input_text
from engine.image_files import CACHE_FORMAT, decode_images

__all__ = [
    "CACHE_FORMAT",
    "COLOR_POLICIES",
    "MAX_CLASSES",
    "MAX_LISTED_PROBLEMS",
    "RESIZE_POLICIES",
    "load_custom",
]

MAX_CLASSES = 1000
MAX_LISTED_PROBLEMS = 50


@dataclass(frozen=True)
class _Row:
    """One image row of a CSV, with its path checked to lie inside the image folder."""

    where: str  # "labels.csv row 7", for messages
    filename: str
    label: int
    path: Path


def load_custom(
    csv_path: str | Path,
    image_dir: str | Path,
    *,
    test_csv: str | Path | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    size: int = 28,
    resize: str = "resize",
    color: str = "grayscale",
    classes_file: str | Path | None = None,
    use_cache: bool = True,
) -> ImageData:
    """Load a CSV + image-folder dataset as size x size uint8 grey images.

    Without ``test_csv`` the rows of ``csv_path`` are split, seeded and class-stratified, with
    ``test_fraction`` of them held out for testing. ``resize`` says what to do with images of
    another size ("resize", "pad" to centre-pad or centre-crop, "reject"); ``color`` what to do
    with colour images ("grayscale" or "reject"). Raises one ``DataError`` listing every problem.
    """
    csv_path = Path(csv_path)
    image_dir = Path(image_dir)
    problems = _option_problems(test_fraction, size, resize, color, test_csv is not None)
    if problems:
        raise _data_error(csv_path, problems)

    csv_paths = [csv_path] if test_csv is None else [csv_path, Path(test_csv)]
    folder = image_dir.resolve()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        problems.append(f"image folder {image_dir} {what}")
    tables = [_read_csv(path, folder if folder.is_dir() else None, problems) for path in csv_paths]
    rows = [row for table in tables for row in table]

    # Each distinct file is decoded once, however many rows name it; its problems name
    # the first of them.
    described: dict[Path, str] = {}
    for row in rows:
        described.setdefault(row.path, f"{row.where}: image {shown(row.filename)}")
    decoded = None
    if folder.is_dir() and described:
        decoded = decode_images(csv_paths, described, size, resize, color, use_cache, problems)

    labels = [row.label for row in rows]
    classes = _class_names(classes_file, max(labels, default=-1), problems)
    if test_csv is None and rows:
        train_index, test_index = _split_indices(np.array(labels), test_fraction, seed)
        if len(test_index) == 0 or len(train_index) == 0:
            empty = "test" if len(test_index) == 0 else "train"
            problems.append(
                f"test_fraction {test_fraction} of {len(rows)} images leaves the {empty} split "
                "empty; add images or change test_fraction"
            )
    else:
        train_index = np.arange(len(tables[0]))
        test_index = np.arange(len(tables[0]), len(rows))
    if problems or decoded is None:
        raise _data_error(csv_path, problems)

    position = {path: i for i, path in enumerate(described)}
    row_images = decoded.images[[position[row.path] for row in rows]]
    all_labels = np.array(labels, dtype=np.int64)
    return ImageData(
        train=Split(row_images[train_index], all_labels[train_index]),
        test=Split(row_images[test_index], all_labels[test_index]),
        classes=classes,
        source=DataSource("custom", csv_path),
        notes=decoded.notes,
    )


def _option_problems(
    test_fraction: float, size: int, resize: str, color: str, has_test_csv: bool
) -> list[str]:
    problems = []
    if resize not in RESIZE_POLICIES:
        problems.append(f"resize must be one of {', '.join(RESIZE_POLICIES)}, not {shown(resize)}")
    if color not in COLOR_POLICIES:
        problems.append(f"color must be one of {', '.join(COLOR_POLICIES)}, not {shown(color)}")
    if not 1 <= size <= 1024:
        problems.append(f"size must be between 1 and 1024 pixels, not {size}")
    if not has_test_csv and not 0.0 < test_fraction < 1.0:
        problems.append(f"test_fraction must be between 0 and 1 (exclusive), not {test_fraction}")
    return problems


def _data_error(csv_path: Path, problems: list[str]) -> DataError:
    listed = problems[:MAX_LISTED_PROBLEMS]
    lines = [f"  - {p}" for p in listed]
    if len(problems) > len(listed):
        lines.append(f"  ... and {len(problems) - len(listed)} more")
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    return DataError(f"custom dataset {csv_path}: {count}:\n" + "\n".join(lines))


# --- The CSV ------------------------------------------------------------------------


def _read_csv(csv_path: Path, folder: Path | None, problems: list[str]) -> list[_Row]:
    """The good image rows of one CSV; each bad row adds a problem.

    ``folder`` is the resolved image folder, or None when it is missing (then the rows are
    only checked, and none is returned).
    """
    name = csv_path.name
    try:
        text = read_input_text(csv_path)
    except FileNotFoundError:
        problems.append(f"{csv_path}: CSV file not found")
        return []
    except UnicodeDecodeError:
        problems.append(f"{csv_path}: not a UTF-8 text file")
        return []
    except OSError as exc:
        problems.append(f"{csv_path}: cannot read ({exc.strerror or exc})")
        return []
    if not text.strip():
        problems.append(f"{csv_path}: CSV file is empty")
        return []

    rows: list[_Row] = []
    image_rows = 0
    reader = csv.reader(text.splitlines())
    try:
        for fields in reader:
            line = reader.line_num
            if not any(field.strip() for field in fields):
                continue
            image_rows += 1
            where = f"{name} row {line}"
            if len(fields) != 2:
                problems.append(
                    f"{where}: expected 2 columns (filename,label), found {len(fields)}"
                )
                continue
            filename, label_text = (field.strip() for field in fields)
            label = _parse_label(label_text)
            if label is None and line == 1:
                image_rows -= 1  # a header row: "filename,label" or similar
                continue
            if label is None or label < 0:
                problems.append(f"{where}: label {shown(label_text)} is not a non-negative integer")
                continue
            if label >= MAX_CLASSES:
                problems.append(f"{where}: label {label} is too large (at most {MAX_CLASSES - 1})")
                continue
            path = _image_path(filename, folder, where, problems)
            if path is not None:
                rows.append(_Row(where, filename, label, path))
    except csv.Error as exc:
        problems.append(f"{name} row {reader.line_num}: unreadable CSV ({exc})")
        return rows
    if image_rows == 0:
        problems.append(f"{csv_path}: has a header but no image rows")
    return rows


def _parse_label(text: str) -> int | None:
    # int() would also take "+3", "1_000" and non-ASCII digits; a label is plain digits.
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return None


def _image_path(filename: str, folder: Path | None, where: str, problems: list[str]) -> Path | None:
    """The resolved file a row names, or None (with a problem) if it is absent or outside."""
    if not filename:
        problems.append(f"{where}: the filename is empty")
        return None
    if Path(filename).is_absolute():
        problems.append(
            f"{where}: image {shown(filename)} is an absolute path; "
            "give it relative to the image folder"
        )
        return None
    if folder is None:
        return None
    try:
        # resolve() follows symlinks, so a link pointing outside the folder is caught as well.
        path = (folder / filename).resolve()
        inside = path.is_relative_to(folder)
        found = inside and path.is_file()
    except (OSError, RuntimeError, ValueError) as exc:
        # A NUL byte, a name too long, a symlink loop (RuntimeError before Python 3.13).
        problems.append(f"{where}: image {shown(filename)} is not a usable path ({exc})")
        return None
    if not inside:
        problems.append(f"{where}: image {shown(filename)} is outside the image folder {folder}")
        return None
    if not found:
        problems.append(f"{where}: image {shown(filename)} not found in {folder}")
        return None
    return path


# --- Class names and the split --------------------------------------------------------


def _class_names(
    classes_file: str | Path | None, max_label: int, problems: list[str]
) -> tuple[str, ...]:
    if classes_file is None:
        return tuple(str(label) for label in range(max_label + 1))
    path = Path(classes_file)
    try:
        lines = read_input_text(path).rstrip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not found" if isinstance(exc, FileNotFoundError) else f"cannot read ({exc})"
        problems.append(f"classes file {path}: {reason}")
        return ()
    names = [line.strip() for line in lines]
    first_line: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name:
            problems.append(f"{path.name} line {number}: the class name is empty")
        elif not name.isprintable():
            problems.append(
                f"{path.name} line {number}: the class name {shown(name)} holds control "
                "characters; give printable text"
            )
        elif name in first_line:
            problems.append(
                f"{path.name} line {number}: {shown(name)} repeats line {first_line[name]}"
            )
        else:
            first_line[name] = number
    if len(names) < max_label + 1:
        problems.append(
            f"{path.name} names {len(names)} classes but the labels go up to {max_label}; "
            f"it needs at least {max_label + 1} lines (line 1 names label 0)"
        )
    return tuple(names)


def _split_indices(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices: round(n * test_fraction) rows held out, seeded."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    # Spread each class's rows evenly over [0, 1) and hold out the lowest positions, so each
    # class lands in the test split in proportion: a small set keeps its rare classes in both.
    position = np.empty(len(labels))
    for label in np.unique(labels):
        members = order[labels[order] == label]
        position[members] = (np.arange(len(members)) + rng.random()) / len(members)
    n_test = round(len(labels) * test_fraction)
    ranked = np.argsort(position, kind="stable")
    return np.sort(ranked[n_test:]), np.sort(ranked[:n_test])
