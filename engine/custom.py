"""Custom image datasets: a CSV of ``filename,label`` rows plus an image folder, as ``ImageData``.

This is the notes' ``CustomImageDataset`` format, decoded once with ``torchvision.io`` into the
same uint8 arrays as Fashion-MNIST, so training batches it on the device in the same way. Every
problem in the CSV, the folder or the images is gathered and reported in one ``DataError``.
This module reads the CSVs and checks the paths, the class names and the split;
``engine.image_files`` decodes the images and caches them under the user's cache folder.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.check import duplicate_groups
from engine.data import DataSource, ImageData, Split, empty_split
from engine.errors import DataError
from engine.fields import (
    ALPHA_POLICIES,
    COLOR_POLICIES,
    RESIZE_POLICIES,
    input_channels,
    shown,
)
from engine.files import read_input_head, read_input_text
from engine.identity import SPLIT_VERSION, split_indices
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
    label: str  # as written: a number, or a class name
    path: Path | None = None  # None until checked

    @property
    def file(self) -> Path:
        """The checked, resolved image path (only rows whose path was checked have one)."""
        assert self.path is not None, self.where
        return self.path


def load_custom(
    csv_path: str | Path,
    image_dir: str | Path | None,
    *,
    test_csv: str | Path | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    size: int = 28,
    resize: str = "resize",
    color: str = "grayscale",
    classes_file: str | Path | None = None,
    use_cache: bool = True,
    alpha: str = "auto",
    test_only: bool = False,
    split_version: int = SPLIT_VERSION,
) -> ImageData:
    """Load a CSV + image-folder dataset as size x size uint8 grey images (N x size x size).

    Each CSV row is ``filename,label``: the file relative to ``image_dir`` (``/`` or Windows
    ``\\`` separators, never leaving the folder); the label a class number, or a class name
    (``0.png,T-shirt``) mapped through ``classes_file`` or, without one, numbered in the
    sorted order of the names (a note says which). A CSV whose header is ``label,pixel1,...``
    is Kaggle's one-image-per-row format and is read as csv-pixels (``load_csv_pixels``), with
    a note. Without ``test_csv`` the rows of ``csv_path`` are split, seeded and
    class-stratified, with ``test_fraction`` of them held out for testing. ``resize`` says what
    to do with images of another size ("resize", "pad" to centre-pad or centre-crop, "reject");
    ``color`` what to do with colour images ("grayscale", "reject", or "rgb" to keep them:
    images are then N x size x size x 3, grey ones in three equal channels); ``alpha`` what
    transparency means (``engine.decode.decode_image``: "auto", "over-black", "over-white",
    "ignore"; a note counts the images each rule touched). ``test_only`` checks and decodes
    the test split's images alone (the CSVs are still read, to split and number the rows
    as a full load does; the train split is then empty, 0 x size x size), for looking at
    a model's test results. ``split_version`` says how a split is made here
    (``engine.identity.SPLIT_VERSION``; from 2, identical images stay on one side; a run
    keeps its own). Raises one ``DataError`` listing every problem.
    """
    csv_path = Path(csv_path)
    pixel_header = _pixel_header(csv_path)
    if pixel_header and color == "rgb":
        raise _data_error(
            csv_path,
            [
                f"color=rgb, but the header {pixel_header} says one grey image per row "
                "(csv-pixels); use color=grayscale for it"
            ],
        )
    if pixel_header:
        from engine.pixel_csv import load_csv_pixels

        data = load_csv_pixels(
            csv_path,
            test_csv=test_csv,
            test_fraction=test_fraction,
            seed=seed,
            size=size,
            classes_file=classes_file,
            test_only=test_only,
            split_version=split_version,
        )
        note = (
            f"{csv_path.name} has the header {pixel_header}: read as csv-pixels, one image "
            "per row (say --data csv-pixels to skip this guess)"
        )
        return dataclasses.replace(data, notes=(note, *data.notes))
    problems = _option_problems(test_fraction, size, resize, color, test_csv is not None)
    if alpha not in ALPHA_POLICIES:
        problems.append(f"alpha must be one of {', '.join(ALPHA_POLICIES)}, not {shown(alpha)}")
    if problems:
        raise _data_error(csv_path, problems)

    csv_paths = [csv_path] if test_csv is None else [csv_path, Path(test_csv)]
    if image_dir is None or str(image_dir) == "":
        raise _data_error(
            csv_path,
            [
                "no image folder given: give --custom-images, the folder the CSV's filenames "
                "are in (a CSV of pixel rows wants the header label,pixel1,pixel2,...)"
            ],
        )
    image_dir = Path(image_dir)
    folder = image_dir.resolve()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        problems.append(f"image folder {image_dir} {what}")
    found = folder if folder.is_dir() else None
    tables = _check_rows(
        [_read_csv(path, found, problems) for path in csv_paths],
        found,
        problems,
        check_paths=not test_only,
    )
    rows = [row for table in tables for row in table]
    labels, classes, notes = _label_numbers(rows, classes_file, problems)
    return _assemble(
        csv_path,
        csv_paths,
        rows,
        labels,
        classes,
        train_rows=None if test_csv is None else len(tables[0]),
        folder_ok=folder.is_dir(),
        options=(test_fraction, seed, size, resize, color, use_cache),
        problems=problems,
        notes=notes,
        alpha=alpha,
        test_only=test_only,
        folder=found,
        split_version=split_version,
    )


def _assemble(
    source: Path,
    csv_paths: list[Path],
    rows: list[_Row],
    labels: list[int],
    classes: tuple[str, ...],
    *,
    train_rows: int | None,
    folder_ok: bool,
    options: tuple[float, int, int, str, str, bool],
    problems: list[str],
    notes: tuple[str, ...] = (),
    alpha: str = "auto",
    test_only: bool = False,
    folder: Path | None = None,
    split_version: int = SPLIT_VERSION,
) -> ImageData:
    """Decode the rows' images and split them: the first ``train_rows`` rows train and the
    rest test, or (None) a seeded, stratified ``test_fraction`` split. ``test_only``
    decodes the test rows' images alone, finding in ``folder`` the files of rows not
    checked yet. From ``split_version`` 2 a split made here keeps identical images on one
    side, so it is made after every image is decoded (``test_only`` then decodes them all).
    Raises ``DataError`` listing ``problems`` and every new one."""
    test_fraction, seed, size, resize, color, use_cache = options
    by_pixels = train_rows is None and split_version >= 2
    if by_pixels and test_only:
        test_only = False
        rows = [_with_path(row, folder, problems) for row in rows]
    split_problems = []
    if train_rows is None and rows and not by_pixels:
        train_index, test_index = _split_indices(np.array(labels), test_fraction, seed)
        if len(test_index) == 0 or len(train_index) == 0:
            empty = "test" if len(test_index) == 0 else "train"
            split_problems.append(
                f"test_fraction {test_fraction} of {len(rows)} images leaves the {empty} split "
                "empty; add images or change test_fraction"
            )
    else:
        train_index = np.arange(train_rows or 0)
        test_index = np.arange(train_rows or 0, len(rows))
    if test_only:
        rows = [_with_path(rows[i], folder, problems) for i in test_index]
    # Each distinct file is decoded once, however many rows name it; its problems name
    # the first of them.
    described: dict[Path, str] = {}
    for row in rows:
        if row.path is not None:
            described.setdefault(row.file, f"{row.where}: image {shown(row.filename)}")
    decoded = None
    if folder_ok and described:
        decoded = decode_images(
            csv_paths, described, size, resize, color, use_cache, problems, alpha
        )
    position = {path: i for i, path in enumerate(described)}
    row_images = None
    if by_pixels and rows and decoded is not None and not problems:
        row_images = decoded.images[[position[row.file] for row in rows]]
        groups = duplicate_groups(row_images)
        train_index, test_index = split_indices(np.array(labels), test_fraction, seed, groups)
        split_problems = _empty_split(train_index, test_index, test_fraction, len(rows))
    problems.extend(split_problems)
    if problems or decoded is None:
        raise _data_error(source, problems)

    if row_images is None:
        row_images = decoded.images[[position[row.file] for row in rows]]
    all_labels = np.array(labels, dtype=np.int64)
    if test_only:
        train = empty_split((size, size), input_channels(color))
        test = Split(row_images, all_labels[test_index])
    else:
        train = Split(row_images[train_index], all_labels[train_index])
        test = Split(row_images[test_index], all_labels[test_index])
    return ImageData(
        train=train,
        test=test,
        classes=classes,
        source=DataSource("custom", source),
        notes=(*notes, *decoded.notes),
    )


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


def _with_path(row: _Row, folder: Path | None, problems: list[str]) -> _Row:
    """``row`` with its image path checked (``_image_path``), if it has none yet."""
    if row.path is not None:
        return row
    return dataclasses.replace(row, path=_image_path(row.filename, folder, row.where, problems))


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


def _read_csv(csv_path: Path, folder: Path | None, problems: list[str]) -> list[_Row | str]:
    """The rows of one CSV in order: each a ``_Row`` (its path not yet checked) or, for a
    bad row, the problem with it. A problem with the whole file is added to ``problems``.

    ``folder`` is the resolved image folder (None when missing), only to tell whether
    row 1 names an image or is a header.
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

    rows: list[_Row | str] = []
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
                rows.append(f"{where}: expected 2 columns (filename,label), found {len(fields)}")
                continue
            filename, label_text = (field.strip() for field in fields)
            label = _parse_label(label_text)
            if label is None and line == 1 and not _names_a_file(filename, folder):
                image_rows -= 1  # a header row: "filename,label" or similar
                continue
            if label is None and _NUMBER_LIKE.fullmatch(label_text):
                rows.append(f"{where}: label {shown(label_text)} is not a non-negative integer")
            elif label is None and not label_text:
                rows.append(f"{where}: the label is empty")
            elif label is not None and label >= MAX_CLASSES:
                rows.append(f"{where}: label {label} is too large (at most {MAX_CLASSES - 1})")
            else:
                rows.append(_Row(where, filename, label_text))
    except csv.Error as exc:
        rows.append(f"{name} row {reader.line_num}: unreadable CSV ({exc})")
        return rows
    if image_rows == 0:
        problems.append(f"{csv_path}: has a header but no image rows")
    return rows


# A label that looks like a number but is not a plain class number ("-1", "+3", "1.5",
# "1_000", non-ASCII digits) is a mistake, never a class name.
_NUMBER_LIKE = re.compile(r"[+-]?[0-9._]*[0-9][0-9._eE+-]*|\d+")
# A Windows path that is absolute: "C:\\data\\x.png", "C:/x.png", "\\\\server\\share".
_WINDOWS_ABSOLUTE = re.compile(r"[A-Za-z]:[\\/]|\\\\")


def _parse_label(text: str) -> int | None:
    # int() would also take "+3", "1_000" and non-ASCII digits; a label is plain digits.
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    return None


def _names_a_file(filename: str, folder: Path | None) -> bool:
    """Whether row 1's first field is an image in the folder (a row), not a heading."""
    if folder is None or not filename:
        return False
    try:
        return (folder / filename.replace("\\", "/")).is_file()
    except (OSError, ValueError):
        return False


def _pixel_header(csv_path: Path) -> str:
    """``label,pixel1..pixelN`` when the CSV's first line is Kaggle's header, else ""."""
    try:  # only the first line: the file may be large (and a FIFO must not block here)
        head = read_input_head(csv_path, 65536).split(b"\n", 1)[0]
    except OSError:
        return ""  # the CSV reader reports it
    names = head.decode("utf-8", "replace").lstrip("\ufeff").strip().lower().split(",")
    names = [name.strip() for name in names]
    pixels = [name for name in names if name != "label"]
    if len(pixels) != len(names) - 1 or not pixels:
        return ""
    if pixels != [f"pixel{i}" for i in range(1, len(pixels) + 1)] and pixels != [
        f"pixel{i}" for i in range(len(pixels))
    ]:
        return ""
    return f"label,{pixels[0]}..{pixels[-1]}"


def _image_path(filename: str, folder: Path | None, where: str, problems: list[str]) -> Path | None:
    """The resolved file a row names, or None (with a problem) if it is absent or outside."""
    if not filename:
        problems.append(f"{where}: the filename is empty")
        return None
    if Path(filename).is_absolute() or _WINDOWS_ABSOLUTE.match(filename):
        problems.append(
            f"{where}: image {shown(filename)} is an absolute path; "
            "give it relative to the image folder"
        )
        return None
    if folder is None:
        return None
    try:
        # A path written on Windows ("shirts\\0.png") uses "\\" between folders; a file
        # whose name holds a "\\" (legal here) is still found by its own name.
        literal = folder / filename
        relative = (
            filename if "\\" not in filename or literal.is_file() else filename.replace("\\", "/")
        )
        # resolve() follows symlinks, so a link pointing outside the folder is caught as well.
        path = (folder / relative).resolve()
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


def _check_rows(
    tables: list[list[_Row | str]],
    folder: Path | None,
    problems: list[str],
    *,
    check_paths: bool = True,
) -> list[list[_Row]]:
    """The rows of each CSV whose label is of the kind most labels are (numbers or class
    names) and whose image is in ``folder``, with its resolved path; every other row adds
    its problem, in row order. ``check_paths=False`` keeps every row whose label is good,
    its path left unchecked (None)."""
    good = [row for table in tables for row in table if isinstance(row, _Row)]
    names = [row for row in good if _parse_label(row.label) is None]
    odd: set[int] = set()
    if names and len(names) < len(good):
        numbers = len(good) - len(names)
        odd_names = len(names) <= numbers
        odd = {id(row) for row in good if (_parse_label(row.label) is None) == odd_names}
        what = "is not a non-negative integer" if odd_names else "is a number"
        other = "numbers" if odd_names else "class names"
    kept: list[list[_Row]] = []
    for table in tables:
        rows: list[_Row] = []
        for row in table:
            if isinstance(row, str):
                problems.append(row)
            elif id(row) in odd:
                problems.append(
                    f"{row.where}: label {shown(row.label)} {what}, but most labels are "
                    f"{other}; give every label as a class number or every one as a class name"
                )
            elif not check_paths:
                rows.append(row)
            else:
                path = _image_path(row.filename, folder, row.where, problems)
                if path is not None:
                    rows.append(dataclasses.replace(row, path=path))
        kept.append(rows)
    return kept


def _label_numbers(
    rows: list[_Row], classes_file: str | Path | None, problems: list[str]
) -> tuple[list[int], tuple[str, ...], tuple[str, ...]]:
    """Each row's class number, the class names and a note on how names became numbers.

    ``rows`` hold all class numbers or all class names (``_check_rows`` sees to it). Names
    map through ``classes_file`` (line 1 is class 0) or, without one, are numbered in sorted
    order; a name the classes file lacks adds a problem.
    """
    if all(_parse_label(row.label) is not None for row in rows):
        labels = [int(row.label) for row in rows]
        return labels, _class_names(classes_file, max(labels, default=-1), problems), ()
    if classes_file is None:
        classes = tuple(sorted({row.label for row in rows}))
        listed = ", ".join(f"{i}={name}" for i, name in enumerate(classes[:12]))
        more = ", ..." if len(classes) > 12 else ""
        note = (
            f"labels are class names, numbered in sorted order ({listed}{more}); "
            "give --classes-file to choose the order"
        )
    else:
        classes = _class_names(classes_file, -1, problems)
        note = f"labels are class names, numbered as in {Path(classes_file).name}"
    number = {name: i for i, name in enumerate(classes)}
    for row in rows:
        if row.label not in number and classes:
            close = difflib.get_close_matches(row.label, classes, n=1)
            hint = f" (did you mean {shown(close[0])}?)" if close else ""
            problems.append(
                f"{row.where}: class {shown(row.label)} is not in "
                f"{Path(str(classes_file)).name}{hint}; it names {len(classes)} classes: "
                + ", ".join(shown(c) for c in classes[:10])
                + (", ..." if len(classes) > 10 else "")
            )
    return [number.get(row.label, 0) for row in rows], classes, (note,)


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


# --- A folder per class ---------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def load_image_folder(
    root: str | Path,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    size: int = 28,
    resize: str = "resize",
    color: str = "grayscale",
    alpha: str = "auto",
    use_cache: bool = True,
    test_only: bool = False,
    split_version: int = SPLIT_VERSION,
) -> ImageData:
    """Load torchvision's ``ImageFolder`` layout as size x size uint8 grey images.

    ``ROOT/train/<class>/`` and ``ROOT/test/<class>/`` when ``ROOT/train`` holds class
    folders (without ``ROOT/test``, a seeded ``test_fraction`` of train is held out), else
    ``ROOT/<class>/`` split by ``test_fraction``. Class names are the folder names, sorted
    (class 0 first); images are found in a class folder and below it (PNG, JPEG, GIF, WebP;
    other files are counted in a note). ``resize``, ``color``, ``alpha`` and ``test_only``
    (the test split's images alone are checked and decoded) and ``split_version`` as for
    ``load_custom``.
    Raises one ``DataError`` listing every problem.
    """
    root_path = Path(root)
    problems = _option_problems(test_fraction, size, resize, color, False)
    if alpha not in ALPHA_POLICIES:
        problems.append(f"alpha must be one of {', '.join(ALPHA_POLICIES)}, not {shown(alpha)}")
    folder = root_path.resolve()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        problems.append(f"image folder {root_path} {what}")
        raise _data_error(root_path, problems)
    train_dir, test_dir = folder / "train", folder / "test"
    notes: list[str] = []
    if _class_dirs(train_dir):
        sides = [train_dir, test_dir] if _class_dirs(test_dir) else [train_dir]
        if len(sides) == 1:
            notes.append(f"no {test_dir.name}/ beside {train_dir}: test_fraction of it is held out")
    else:
        sides = [folder]
    by_side = {side: _class_dirs(side) for side in sides}
    classes = tuple(sorted({name for names in by_side.values() for name in names}))
    if not classes:
        loose = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        hint = f" (it holds {loose} images itself: for a CSV of labels use --data custom)"
        problems.append(
            f"image folder {root_path} holds no class folders; image-folder wants ROOT/<class>/ "
            f"or ROOT/train/<class>/ and ROOT/test/<class>/{hint if loose else ''}"
        )
        raise _data_error(root_path, problems)
    number = {name: i for i, name in enumerate(classes)}
    tables: list[list[_Row]] = []
    ignored: dict[str, int] = {}
    counts: dict[str, int] = dict.fromkeys(classes, 0)
    for side in sides:
        rows: list[_Row] = []
        for name in by_side[side]:
            for path in _images_below(side / name, ignored):
                shown_as = str(path.relative_to(folder))
                if test_only:  # only the test split's files are checked, in _assemble
                    rows.append(_Row("image folder", shown_as, str(number[name])))
                    counts[name] += 1
                    continue
                resolved = path.resolve()
                if not resolved.is_relative_to(folder):
                    problems.append(f"image {shown(shown_as)} is a link to outside {folder}")
                    continue
                rows.append(_Row("image folder", shown_as, str(number[name]), resolved))
                counts[name] += 1
        tables.append(rows)
        if len(sides) == 2:
            missing = [c for c in classes if c not in by_side[side]]
            if missing:
                notes.append(f"{side.name}/ has no folder for class " + ", ".join(missing))
    for name, count in counts.items():
        if count == 0:
            problems.append(
                f"class folder {name!r} holds no images ({', '.join(IMAGE_SUFFIXES)}); add "
                "images or remove the folder"
            )
    if ignored:
        listed = ", ".join(f"{suffix or 'no suffix'}: {n}" for suffix, n in sorted(ignored.items()))
        notes.append(f"{sum(ignored.values())} files that are not images skipped ({listed})")
    notes.insert(0, f"classes are the folder names, sorted: {', '.join(classes[:12])}")
    rows = [row for table in tables for row in table]
    return _assemble(
        root_path,
        [],
        rows,
        [int(row.label) for row in rows],
        classes,
        train_rows=len(tables[0]) if len(tables) == 2 else None,
        folder_ok=True,
        options=(test_fraction, seed, size, resize, color, use_cache),
        problems=problems,
        notes=tuple(notes),
        alpha=alpha,
        test_only=test_only,
        folder=folder,
        split_version=split_version,
    )


def _class_dirs(folder: Path) -> list[str]:
    """The sorted names of the class folders in ``folder`` (hidden ones skipped)."""
    try:
        return sorted(
            entry.name
            for entry in os.scandir(folder)
            if entry.is_dir() and not entry.name.startswith(".")
        )
    except OSError:
        return []


def _images_below(folder: Path, ignored: dict[str, int]) -> list[Path]:
    """The image files in ``folder`` and its sub-folders, sorted; other files are counted
    in ``ignored`` by suffix (hidden files are skipped quietly)."""
    found = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            suffix = Path(name).suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                found.append(Path(parent) / name)
            else:
                ignored[suffix] = ignored.get(suffix, 0) + 1
    return found
