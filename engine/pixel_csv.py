"""Kaggle's Fashion-MNIST CSV: one image per row, ``label,pixel1,...,pixel784``.

``load_csv_pixels`` reads such a CSV (and an optional test CSV) into the same uint8
arrays as the IDX files, checking every row: the column count, that every value is a
whole number, pixels 0-255, labels below ``MAX_CLASSES``. Every problem is listed in one
``DataError``, with row numbers, as for a CSV + image folder. Numpy only: no torch.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from engine import files
from engine.check import duplicate_groups
from engine.custom import (
    MAX_CLASSES,
    MAX_LISTED_PROBLEMS,
    _class_names,
    _data_error,
)
from engine.data import DataSource, ImageData, Split, empty_split
from engine.fields import shown
from engine.identity import SPLIT_VERSION, split_indices

# Rows parsed at a time: bounds the memory of the parse to a few MB beyond the images.
_CHUNK_ROWS = 4096


class _Table:
    """One pixel CSV: its images (uint8 N x side x side), labels (int64 N) and layout."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, columns: int) -> None:
        self.images = images
        self.labels = labels
        self.columns = columns


def load_csv_pixels(
    csv_path: str | Path,
    *,
    test_csv: str | Path | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    size: int = 28,
    classes_file: str | Path | None = None,
    test_only: bool = False,
    split_version: int = SPLIT_VERSION,
) -> ImageData:
    """Load a CSV of ``label,pixel1,...,pixelN`` rows as uint8 N x side x side images.

    N pixel columns make side x side images (784: 28 x 28), which ``size`` (pixels) must
    match; the header is optional, and its ``label`` column may stand anywhere (first
    without a header). Labels are class numbers (0 to ``MAX_CLASSES`` - 1), named by
    ``classes_file`` or by their numbers. Without ``test_csv`` a seeded, class-stratified
    ``test_fraction`` of the rows is held out for testing. ``test_only`` keeps the test
    split alone (the train split is then empty, 0 x side x side), and with ``test_csv``
    reads that file alone; its class names then come from ``classes_file`` or the test
    labels. ``split_version`` says how the split is made (from 2, identical images stay on
    one side; ``engine.identity``). Raises one ``DataError`` listing every problem (row
    numbers count lines of the file, the header being row 1).
    """
    csv_path = Path(csv_path)
    problems: list[str] = []
    if test_csv is None and not 0.0 < test_fraction < 1.0:
        problems.append(f"test_fraction must be between 0 and 1 (exclusive), not {test_fraction}")
    paths = [csv_path] if test_csv is None else [csv_path, Path(test_csv)]
    if test_only and test_csv is not None:
        paths = [Path(test_csv)]
    tables = [_read_table(path, size, problems) for path in paths]
    first, last = tables[0], tables[-1]
    if first is not None and last is not None and first.columns != last.columns:
        problems.append(
            f"{paths[1].name} has {last.columns} columns but {paths[0].name} has "
            f"{first.columns}; both must hold images of one size"
        )
    if problems or any(table is None for table in tables):
        raise _data_error(csv_path, problems)
    found = [table for table in tables if table is not None]
    labels = np.concatenate([table.labels for table in found])
    classes = _class_names(classes_file, int(labels.max(initial=-1)), problems)
    if test_csv is None:
        if split_version >= 2:
            groups = duplicate_groups(found[0].images)
            train_index, test_index = split_indices(labels, test_fraction, seed, groups)
        else:
            train_index, test_index = split_indices(labels, test_fraction, seed)
        if len(test_index) == 0 or len(train_index) == 0:
            empty = "test" if len(test_index) == 0 else "train"
            problems.append(
                f"test_fraction {test_fraction} of {len(labels)} images leaves the {empty} "
                "split empty; add rows or change test_fraction"
            )
    if problems:
        raise _data_error(csv_path, problems)
    if test_only:
        train = empty_split((size, size))
        rows = Split(found[-1].images, found[-1].labels)  # the test CSV's, or the only CSV's
        test = rows if test_csv is not None else rows.take(test_index)
    elif test_csv is None:
        images = found[0].images
        train = Split(images[train_index], labels[train_index])
        test = Split(images[test_index], labels[test_index])
    else:
        train = Split(found[0].images, found[0].labels)
        test = Split(found[1].images, found[1].labels)
    return ImageData(train, test, classes, DataSource("custom", csv_path))


def _read_table(path: Path, size: int, problems: list[str]) -> _Table | None:
    """One CSV's images and labels, or None after adding its problems to ``problems``."""
    try:
        data = files.read_bytes(path, files.DATA_FILE_LIMIT, follow_symlinks=True)
    except FileNotFoundError:
        problems.append(f"{path}: CSV file not found")
        return None
    except OSError as exc:
        problems.append(f"{path}: cannot read ({exc.strerror or exc})")
        return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.replace(b"\r", b"").split(b"\n")
    numbers = [i for i, line in enumerate(lines, start=1) if line.strip()]
    if not numbers:
        problems.append(f"{path}: CSV file is empty")
        return None
    name = path.name
    first = lines[numbers[0] - 1]
    label_column = 0
    columns = first.count(b",") + 1
    if re.search(rb"[^0-9,\s]", first):  # a header
        heads = [h.strip().lower() for h in first.decode("utf-8", "replace").split(",")]
        if heads.count("label") != 1:
            problems.append(
                f"{name} row {numbers[0]}: the header needs one column named label "
                f"(found {shown(','.join(heads[:4]) + (',...' if len(heads) > 4 else ''))})"
            )
            return None
        label_column = heads.index("label")
        numbers = numbers[1:]
        if not numbers:
            problems.append(f"{path}: has a header but no image rows")
            return None
    pixels = columns - 1
    side = math.isqrt(max(pixels, 0))
    if pixels < 1 or side * side != pixels:
        problems.append(
            f"{name}: {pixels} pixel columns do not make a square image; a pixel CSV holds "
            "label + side x side columns (785 for 28x28)"
        )
        return None
    if side != size:
        problems.append(
            f"{name} holds {side}x{side} images ({pixels} pixel columns) but image_size is "
            f"{size}; pixel CSVs are used at their own size: give --image-size {side}"
        )
        return None

    images = np.empty((len(numbers), side, side), dtype=np.uint8)
    labels = np.empty(len(numbers), dtype=np.int64)
    bad: list[str] = []
    for start in range(0, len(numbers), _CHUNK_ROWS):
        chunk = numbers[start : start + _CHUNK_ROWS]
        values = _parse_chunk([lines[i - 1] for i in chunk], columns)
        if values is None or values.max(initial=0) > 255 or _labels_too_large(values, label_column):
            values = _check_rows_one_by_one(lines, chunk, columns, label_column, name, bad)
            if values is None:
                if len(bad) >= MAX_LISTED_PROBLEMS:
                    break
                continue
        row_labels = values[:, label_column]
        pixels_of = np.delete(values, label_column, axis=1)
        images[start : start + len(chunk)] = pixels_of.reshape(-1, side, side)
        labels[start : start + len(chunk)] = row_labels
    if bad:
        problems.extend(bad)
        return None
    return _Table(images, labels, columns)


def _labels_too_large(values: np.ndarray, label_column: int) -> bool:
    return bool(values[:, label_column].max(initial=0) >= MAX_CLASSES)


def _parse_chunk(lines: list[bytes], columns: int) -> np.ndarray | None:
    """The rows as an int64 R x columns array, or None if any is not ``columns`` whole
    numbers (then the rows are checked one by one to say which)."""
    body = b",".join(line.strip() for line in lines)
    if body.translate(None, b"0123456789,") or b",," in body:
        return None
    if body.startswith(b",") or body.endswith(b","):
        return None
    if any(line.count(b",") != columns - 1 for line in lines):
        return None
    values = np.fromstring(body, dtype=np.int64, sep=",")
    if values.size != len(lines) * columns:
        return None
    return values.reshape(len(lines), columns)


def _check_rows_one_by_one(
    lines: list[bytes],
    chunk: list[int],
    columns: int,
    label_column: int,
    name: str,
    bad: list[str],
) -> np.ndarray | None:
    """The chunk's rows as an array, or None after adding each bad row's problem to ``bad``."""
    values = np.zeros((len(chunk), columns), dtype=np.int64)
    found = len(bad)
    for k, number in enumerate(chunk):
        if len(bad) >= MAX_LISTED_PROBLEMS:
            break
        where = f"{name} row {number}"
        fields = [f.strip() for f in lines[number - 1].decode("utf-8", "replace").split(",")]
        if len(fields) != columns:
            bad.append(
                f"{where}: expected {columns} columns (label + {columns - 1} pixels), "
                f"found {len(fields)}"
            )
            continue
        for column, text in enumerate(fields):
            is_label = column == label_column
            high = MAX_CLASSES - 1 if is_label else 255
            what = "label" if is_label else f"column {column + 1}"
            if not re.fullmatch(r"[0-9]+", text) or int(text) > high:
                bad.append(f"{where}: {what} is {shown(text)}; expected a whole number 0 to {high}")
                break
            values[k, column] = int(text)
    return None if len(bad) > found else values
