"""Rows of image datasets (one image file and its label each), their paths, and the
``ImageData`` made from them: what a CSV + folder (``engine.custom``) and a folder per class
(``engine.image_folder``) have in common.

``ImagePaths`` checks that each file a row names lies inside the image folder, touching
each file once (one ``lstat``; folders are resolved once each) and keeping its size and
time for the decode cache's key. ``assemble`` decodes the rows' images
(``engine.image_files``), splits them and lays the splits out in the one array the
images were decoded into, so loading holds the pixels about once, not three times.
No torch.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.check import duplicate_groups
from engine.data import DataSource, ImageData, Split, empty_split
from engine.errors import DataError
from engine.fields import COLOR_POLICIES, RESIZE_POLICIES, input_channels, shown
from engine.identity import SPLIT_VERSION, split_indices
from engine.image_files import decode_images

__all__ = ["MAX_LISTED_PROBLEMS", "ImagePaths", "Row", "assemble", "data_error", "split_in_place"]

MAX_LISTED_PROBLEMS = 50
# A Windows path that is absolute: "C:\\data\\x.png", "C:/x.png", "\\\\server\\share".
_WINDOWS_ABSOLUTE = re.compile(r"[A-Za-z]:[\\/]|\\\\")


class Row(NamedTuple):
    """One image of a dataset: where it was named, the file, its label as written, and
    the checked file (its resolved path; None until checked)."""

    source: str  # the CSV's name, or "image folder"
    line: int  # the CSV's row number; 0 for an image found in a folder
    filename: str  # as written, relative to the image folder
    label: str  # a class number, or a class name
    path: str | None = None

    @property
    def where(self) -> str:
        """Where the row is, for messages: "labels.csv row 7" (or "image folder")."""
        return f"{self.source} row {self.line}" if self.line else self.source


def data_error(source: Path, problems: list[str]) -> DataError:
    """One ``DataError`` for a dataset: a headline naming ``source`` and the count, then
    one line per problem (the first ``MAX_LISTED_PROBLEMS``)."""
    listed = problems[:MAX_LISTED_PROBLEMS]
    lines = [f"  - {p}" for p in listed]
    if len(problems) > len(listed):
        lines.append(f"  ... and {len(problems) - len(listed)} more")
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    return DataError(f"custom dataset {source}: {count}:\n" + "\n".join(lines))


def option_problems(
    test_fraction: float, size: int, resize: str, color: str, has_test_csv: bool
) -> list[str]:
    """What is wrong with the loading options, in words (empty when nothing is)."""
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


class ImagePaths:
    """The image files rows name, checked to lie inside one folder.

    ``folder`` is the resolved image folder (None when it is missing: every row's file is
    then unchecked). A name is joined to the folder; its folder is resolved (symlinks
    followed) once for all the files in it, and the file itself is ``lstat``-ed once: a
    regular file is taken as it is, a symlink is followed and must end inside the folder
    as well. ``stamps`` keeps each found file's (size in bytes, mtime in ns).
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._root = str(folder) if folder is not None else ""
        self._inside = os.path.join(self._root, "")
        self._real_parents: dict[str, str] = {}
        self.stamps: dict[str, tuple[int, int]] = {}

    def _is_inside(self, path: str) -> bool:
        return path == self._root or path.startswith(self._inside)

    def find(self, filename: str, where: str, problems: list[str]) -> str | None:
        """The resolved file ``filename`` names (``/`` or Windows ``\\`` separators), or
        None with a problem added (prefixed by ``where``): empty, absolute, outside the
        folder (by ``..`` or a symlink), not a usable path, or not a regular file in it."""
        if not filename:
            problems.append(f"{where}: the filename is empty")
            return None
        if filename.startswith("/") or _WINDOWS_ABSOLUTE.match(filename):
            problems.append(
                f"{where}: image {shown(filename)} is an absolute path; "
                "give it relative to the image folder"
            )
            return None
        if self.folder is None:
            return None
        try:
            path, info = self._locate(filename)
        except (OSError, ValueError) as exc:
            # A NUL byte, a name too long, a symlink loop.
            problems.append(f"{where}: image {shown(filename)} is not a usable path ({exc})")
            return None
        if path is None:
            problems.append(
                f"{where}: image {shown(filename)} is outside the image folder {self.folder}"
            )
            return None
        if info is None:
            problems.append(f"{where}: image {shown(filename)} not found in {self.folder}")
            return None
        self.stamps[path] = (info.st_size, info.st_mtime_ns)
        return path

    def find_inside(self, relative: str) -> str | None:
        """The real path of the file ``relative`` (to the folder) names, or None when it
        lies outside the folder (by a symlink); a file that is missing or not regular is
        still returned, for the decoder to name. Raises ``OSError``/``ValueError`` for a
        path that is not usable (a symlink loop, a NUL byte)."""
        path, info = self._locate(relative)
        if path is not None and info is not None:
            self.stamps[path] = (info.st_size, info.st_mtime_ns)
        return path

    def _locate(self, filename: str) -> tuple[str | None, os.stat_result | None]:
        """(the real path, or None when it lies outside the folder; its stat, or None when
        it is not a regular file)."""
        relative = filename
        if "\\" in filename:
            # A path written on Windows ("shirts\\0.png") uses "\\" between folders; a file
            # whose name holds a "\\" (legal here) is still found by its own name.
            literal = os.path.join(self._root, filename)
            if not os.path.isfile(literal):
                relative = filename.replace("\\", "/")
        joined = self._inside + relative
        if "." in relative and ("/../" in f"/{relative}/" or "/./" in f"/{relative}/"):
            # ".." after a symlinked folder means the link's parent: resolve it all, as the
            # system would, rather than cancel names on paper.
            real = os.path.realpath(joined)
        else:
            parent, _, name = joined.rpartition("/")
            real_parent = self._real_parents.get(parent)
            if real_parent is None:
                real_parent = os.path.realpath(parent or "/")
                self._real_parents[parent] = real_parent
            real = f"{real_parent}/{name}" if name else real_parent
        if not self._is_inside(real):
            return None, None
        try:
            info = os.lstat(real)
        except FileNotFoundError:
            return real, None
        if stat.S_ISLNK(info.st_mode):
            real = os.path.realpath(real)
            if not self._is_inside(real):
                return None, None
            try:
                info = os.stat(real)
            except FileNotFoundError:
                return real, None
        return real, info if stat.S_ISREG(info.st_mode) else None


def split_in_place(
    images: np.ndarray, labels: np.ndarray, train_index: np.ndarray, test_index: np.ndarray
) -> tuple[Split, Split]:
    """The train and test splits of ``images`` (uint8 N x ...) and ``labels`` (int64 N),
    where ``train_index`` and ``test_index`` (sorted int arrays) together name every row
    once; each split keeps the rows' order.

    The test rows are copied out, the train rows are moved to the front of ``images`` and
    ``images`` is shrunk to them, in place (``ndarray.resize``, when it owns its memory;
    else the train split is a view of its front): the train split is ``images`` itself.
    So the extra memory is the test split's images, never a second copy of all of them.
    ``images`` must have no views when it owns its memory. Raises ``ValueError`` when the
    indices do not name every row once by count.
    """
    n_train = len(train_index)
    if len(train_index) + len(test_index) != len(images):
        raise ValueError(
            f"{len(train_index)} + {len(test_index)} split rows for {len(images)} images"
        )
    test = Split(images[test_index], labels[test_index])
    train_labels = labels[train_index]
    # Row k of train comes from row train_index[k] >= k: moving runs of consecutive rows
    # front to back never overwrites a row still to be moved. Slices, not gathers, so no
    # large temporary array is made.
    if n_train:
        breaks = np.flatnonzero(np.diff(train_index) != 1) + 1
        run_starts = np.concatenate([[0], breaks]).tolist()
        run_ends = np.concatenate([breaks, [n_train]]).tolist()
        for first, end in zip(run_starts, run_ends, strict=True):
            source = int(train_index[first])
            if source != first:
                images[first:end] = images[source : source + end - first]
    if images.flags.owndata and images.flags.c_contiguous:
        images.resize((n_train, *images.shape[1:]), refcheck=False)
        return Split(images, train_labels), test
    return Split(images[:n_train], train_labels), test


def assemble(
    source: Path,
    csv_paths: list[Path],
    rows: list[Row],
    labels: list[int],
    classes: tuple[str, ...],
    *,
    train_rows: int | None,
    folder_ok: bool,
    options: tuple[float, int, int, str, str, bool],
    problems: list[str],
    paths: ImagePaths,
    notes: tuple[str, ...] = (),
    alpha: str = "auto",
    test_only: bool = False,
    split_version: int = SPLIT_VERSION,
) -> ImageData:
    """Decode the rows' images and split them: the first ``train_rows`` rows train and the
    rest test, or (None) a seeded, stratified ``test_fraction`` split. ``test_only``
    decodes the test rows' images alone, checking with ``paths`` the files of rows not
    checked yet. From ``split_version`` 2 a split made here keeps identical images on one
    side, so it is made after every image is decoded (``test_only`` then decodes them all).
    Raises ``DataError`` listing ``problems`` and every new one."""
    test_fraction, seed, size, resize, color, use_cache = options
    by_pixels = train_rows is None and split_version >= 2
    test_split_only = test_only  # what the caller keeps
    if by_pixels and test_only:
        test_only = False
        rows = [_checked(row, paths, problems) for row in rows]
    split_problems: list[str] = []
    if train_rows is None and rows and not by_pixels:
        train_index, test_index = _split_v1(np.array(labels), test_fraction, seed)
        split_problems = _empty_split(train_index, test_index, test_fraction, len(rows))
    else:
        train_index = np.arange(train_rows or 0)
        test_index = np.arange(train_rows or 0, len(rows))
    if test_only:
        rows = [_checked(rows[i], paths, problems) for i in test_index]
    # Each distinct file is decoded once, however many rows name it; its problems name
    # the first of them.
    first_row: dict[str, int] = {}
    for i, row in enumerate(rows):
        if row.path is not None:
            first_row.setdefault(row.path, i)
    files = list(first_row)
    decoded = None
    if folder_ok and files:

        def describe(k: int) -> str:
            row = rows[first_row[files[k]]]
            return f"{row.where}: image {shown(row.filename)}"

        decoded = decode_images(
            csv_paths,
            files,
            describe,
            size,
            resize,
            color,
            use_cache,
            problems,
            alpha,
            stamps=[paths.stamps[file] for file in files]
            if all(file in paths.stamps for file in files)
            else None,
        )
    if problems or decoded is None:
        problems.extend(split_problems)
        raise data_error(source, problems)

    images = decoded.images
    if len(files) != len(rows):  # some files are named by more than one row
        position = {file: k for k, file in enumerate(files)}
        images = images[[position[row.path] for row in rows if row.path is not None]]
    all_labels = np.array(labels, dtype=np.int64)
    if by_pixels and rows:
        groups = duplicate_groups(images)
        train_index, test_index = split_indices(all_labels, test_fraction, seed, groups)
        split_problems = _empty_split(train_index, test_index, test_fraction, len(rows))
    if split_problems:
        raise data_error(source, split_problems)
    if test_only:
        train = empty_split((size, size), input_channels(color))
        test = Split(images, all_labels[test_index])
    elif test_split_only:  # every image was decoded to split them; the test ones are kept
        train = empty_split((size, size), input_channels(color))
        test = Split(images[test_index], all_labels[test_index])
    else:
        train, test = split_in_place(images, all_labels, train_index, test_index)
    return ImageData(
        train=train,
        test=test,
        classes=classes,
        source=DataSource("custom", source),
        notes=(*notes, *decoded.notes),
    )


def _checked(row: Row, paths: ImagePaths, problems: list[str]) -> Row:
    """``row`` with its image path checked (``ImagePaths.find``), if it has none yet."""
    if row.path is not None:
        return row
    return row._replace(path=paths.find(row.filename, row.where, problems))


def _empty_split(
    train_index: np.ndarray, test_index: np.ndarray, test_fraction: float, rows: int
) -> list[str]:
    """The problem of a split that leaves one side empty, if it does."""
    if len(test_index) and len(train_index):
        return []
    empty = "test" if len(test_index) == 0 else "train"
    return [
        f"test_fraction {test_fraction} of {rows} images leaves the {empty} split "
        "empty; add images or change test_fraction"
    ]


def _split_v1(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split version 1 (``engine.identity``): train and test row indices, sorted,
    round(n * test_fraction) rows held out, seeded, each class in proportion."""
    return split_indices(labels, test_fraction, seed)
