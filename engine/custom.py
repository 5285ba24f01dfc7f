"""Custom image datasets: a CSV of ``filename,label`` rows plus an image folder, as ``ImageData``.

This is the notes' ``CustomImageDataset`` format, decoded once (``engine.decode``) into the
same uint8 arrays as Fashion-MNIST, so training batches it on the device in the same way. Every
problem in the CSV, the folder or the images is gathered and reported in one ``DataError``.
This module reads the CSVs and the class names; ``engine.image_rows`` checks the paths and
splits, and ``engine.image_files`` decodes the images and caches them under the user's cache
folder.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import re
from pathlib import Path

from engine.data import ImageData
from engine.fields import ALPHA_POLICIES, COLOR_POLICIES, RESIZE_POLICIES, shown
from engine.files import read_input_head, read_input_text
from engine.identity import SPLIT_VERSION
from engine.image_files import CACHE_FORMAT
from engine.image_folder import IMAGE_SUFFIXES, load_image_folder
from engine.image_rows import (
    MAX_LISTED_PROBLEMS,
    ImagePaths,
    Row,
    assemble,
    data_error,
    option_problems,
)

__all__ = [
    "CACHE_FORMAT",
    "COLOR_POLICIES",
    "IMAGE_SUFFIXES",
    "MAX_CLASSES",
    "MAX_LISTED_PROBLEMS",
    "RESIZE_POLICIES",
    "load_custom",
    "load_image_folder",
]

MAX_CLASSES = 1000
# For engine.pixel_csv, which reports its problems in the same way.
_data_error = data_error


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
    problems = option_problems(test_fraction, size, resize, color, test_csv is not None)
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
    paths = ImagePaths(found)
    tables = _check_rows(
        [_read_csv(path, found, problems) for path in csv_paths],
        paths,
        problems,
        check_paths=not test_only,
    )
    rows = [row for table in tables for row in table]
    labels, classes, notes = _label_numbers(rows, classes_file, problems)
    return assemble(
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
        paths=paths,
        split_version=split_version,
    )


# --- The CSV ------------------------------------------------------------------------


def _read_csv(csv_path: Path, folder: Path | None, problems: list[str]) -> list[Row | str]:
    """The rows of one CSV in order: each a ``Row`` (its path not yet checked) or, for a
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

    rows: list[Row | str] = []
    image_rows = 0
    reader = csv.reader(text.splitlines())
    try:
        for fields in reader:
            line = reader.line_num
            if not any(field.strip() for field in fields):
                continue
            image_rows += 1
            if len(fields) != 2:
                rows.append(
                    f"{name} row {line}: expected 2 columns (filename,label), found {len(fields)}"
                )
                continue
            filename, label_text = (field.strip() for field in fields)
            label = _parse_label(label_text)
            if label is None and line == 1 and not _names_a_file(filename, folder):
                image_rows -= 1  # a header row: "filename,label" or similar
                continue
            number_ok = label is not None and label < MAX_CLASSES
            name_ok = label is None and bool(label_text) and not _NUMBER_LIKE.fullmatch(label_text)
            if number_ok or name_ok:
                rows.append(Row(name, line, filename, label_text))
            elif label is not None:
                rows.append(
                    f"{name} row {line}: label {label} is too large (at most {MAX_CLASSES - 1})"
                )
            elif label_text:
                rows.append(
                    f"{name} row {line}: label {shown(label_text)} is not a non-negative integer"
                )
            else:
                rows.append(f"{name} row {line}: the label is empty")
    except csv.Error as exc:
        rows.append(f"{name} row {reader.line_num}: unreadable CSV ({exc})")
        return rows
    if image_rows == 0:
        problems.append(f"{csv_path}: has a header but no image rows")
    return rows


# A label that looks like a number but is not a plain class number ("-1", "+3", "1.5",
# "1_000", non-ASCII digits) is a mistake, never a class name.
_NUMBER_LIKE = re.compile(r"[+-]?[0-9._]*[0-9][0-9._eE+-]*|\d+")


def _parse_label(text: str) -> int | None:
    # int() would also take "+3", "1_000" and non-ASCII digits; a label is plain digits.
    if text.isascii() and text.isdigit():
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


# --- Class names and the split --------------------------------------------------------


def _check_rows(
    tables: list[list[Row | str]],
    paths: ImagePaths,
    problems: list[str],
    *,
    check_paths: bool = True,
) -> list[list[Row]]:
    """The rows of each CSV whose label is of the kind most labels are (numbers or class
    names) and whose image is in the folder of ``paths``, with its resolved path; every
    other row adds its problem, in row order. ``check_paths=False`` keeps every row whose
    label is good, its path left unchecked (None)."""
    good = [row for table in tables for row in table if isinstance(row, Row)]
    names = [row for row in good if _parse_label(row.label) is None]
    odd: set[int] = set()
    if names and len(names) < len(good):
        numbers = len(good) - len(names)
        odd_names = len(names) <= numbers
        odd = {id(row) for row in good if (_parse_label(row.label) is None) == odd_names}
        what = "is not a non-negative integer" if odd_names else "is a number"
        other = "numbers" if odd_names else "class names"
    kept: list[list[Row]] = []
    for table in tables:
        rows: list[Row] = []
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
                path = paths.find(row.filename, row.where, problems)
                if path is not None:
                    rows.append(row._replace(path=path))
        kept.append(rows)
    return kept


def _label_numbers(
    rows: list[Row], classes_file: str | Path | None, problems: list[str]
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
