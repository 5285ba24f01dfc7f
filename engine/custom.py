"""Custom image datasets: a CSV of ``filename,label`` rows plus an image folder, as ``ImageData``.

This is the notes' ``CustomImageDataset`` format, decoded once with ``torchvision.io`` into the
same uint8 arrays as Fashion-MNIST, so training batches it on the device in the same way. Every
problem in the CSV, the folder or the images is gathered and reported in one ``DataError``.
Decoded images are cached under the user's cache folder, keyed by the CSV and image files.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data import DataSource, ImageData, Split, cache_dir
from engine.errors import DataError

RESIZE_POLICIES = ("resize", "pad", "reject")
COLOR_POLICIES = ("grayscale", "reject")
MAX_CLASSES = 1000
MAX_LISTED_PROBLEMS = 50
# Bump when the cached arrays change meaning, so old cache files are never read as new ones.
CACHE_FORMAT = 1


@dataclass(frozen=True)
class _Row:
    """One image row of a CSV, with its path checked to lie inside the image folder."""

    where: str  # "labels.csv row 7", for messages
    filename: str
    label: int
    path: Path


@dataclass
class _Decoded:
    """Every distinct image, converted to size x size grey, and what was done to get there."""

    images: np.ndarray  # uint8, N x size x size, in the order of the distinct paths
    notes: tuple[str, ...]


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

    # Each distinct file is decoded once, however many rows name it.
    paths = list(dict.fromkeys(row.path for row in rows))
    decoded = None
    if folder.is_dir() and paths:
        decoded = _decode_all(csv_paths, rows, paths, size, resize, color, use_cache, problems)

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

    position = {path: i for i, path in enumerate(paths)}
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
        problems.append(f"resize must be one of {', '.join(RESIZE_POLICIES)}, not {resize!r}")
    if color not in COLOR_POLICIES:
        problems.append(f"color must be one of {', '.join(COLOR_POLICIES)}, not {color!r}")
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
        text = csv_path.read_text(encoding="utf-8-sig")
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
                problems.append(f"{where}: label {label_text!r} is not a non-negative integer")
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
            f"{where}: image {filename!r} is an absolute path; give it relative to the image folder"
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
        problems.append(f"{where}: image {filename!r} is not a usable path ({exc})")
        return None
    if not inside:
        problems.append(f"{where}: image {filename!r} is outside the image folder {folder}")
        return None
    if not found:
        problems.append(f"{where}: image {filename!r} not found in {folder}")
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
        lines = path.read_text(encoding="utf-8-sig").rstrip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = "not found" if isinstance(exc, FileNotFoundError) else f"cannot read ({exc})"
        problems.append(f"classes file {path}: {reason}")
        return ()
    names = [line.strip() for line in lines]
    first_line: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name:
            problems.append(f"{path.name} line {number}: the class name is empty")
        elif name in first_line:
            problems.append(f"{path.name} line {number}: {name!r} repeats line {first_line[name]}")
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


# --- Decoding and the cache ------------------------------------------------------------


def _decode_all(
    csv_paths: list[Path],
    rows: list[_Row],
    paths: list[Path],
    size: int,
    resize: str,
    color: str,
    use_cache: bool,
    problems: list[str],
) -> _Decoded | None:
    """Decode every distinct image, or read them from the cache; None if any image is bad."""
    cache_file = None
    if use_cache:
        key = _cache_key(csv_paths, paths, size, resize, color)
        cache_file = cache_dir() / "custom" / f"{key}.npz"
        cached = _read_cache(cache_file, len(paths), size)
        if cached is not None:
            return cached

    first_row = {}
    for row in rows:
        first_row.setdefault(row.path, row)
    images = np.zeros((len(paths), size, size), dtype=np.uint8)
    resized: Counter[tuple[int, int]] = Counter()
    converted = reduced = 0
    ok = True
    for i, path in enumerate(paths):
        row = first_row[path]
        try:
            rgb = _decode(path)
        except ValueError as exc:
            problems.append(f"{row.where}: image {row.filename!r} {exc}")
            ok = False
            continue
        if rgb.dtype == np.uint16:
            rgb = ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
            reduced += 1
        grey, is_colour = _to_grey(rgb)
        if is_colour:
            if color == "reject":
                problems.append(
                    f"{row.where}: image {row.filename!r} is in colour "
                    "(use color=grayscale to convert it)"
                )
                ok = False
                continue
            converted += 1
        height, width = grey.shape
        if (height, width) != (size, size):
            if resize == "reject":
                problems.append(
                    f"{row.where}: image {row.filename!r} is {width}x{height}, expected "
                    f"{size}x{size} (use resize=resize or resize=pad to convert it)"
                )
                ok = False
                continue
            resized[(width, height)] += 1
            grey = _resize(grey, size) if resize == "resize" else _pad_or_crop(grey, size)
        images[i] = grey
    if not ok:
        return None

    notes = []
    if converted:
        notes.append(f"{_images(converted)} in colour converted to grayscale")
    if reduced:
        notes.append(f"{_images(reduced)} with 16-bit pixels reduced to 8 bits")
    if resized:
        verb = "resized" if resize == "resize" else "padded or cropped"
        origins = ", ".join(f"{w}x{h}: {n}" for (w, h), n in resized.most_common(5))
        more = ", ..." if len(resized) > 5 else ""
        notes.append(f"{_images(resized.total())} {verb} to {size}x{size} (from {origins}{more})")
    decoded = _Decoded(images, tuple(notes))
    if cache_file is not None:
        _write_cache(cache_file, decoded)
    return decoded


def _images(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"


def _decode(path: Path) -> np.ndarray:
    """One image file as an H x W x 3 array (uint8, or uint16 for 16-bit PNGs).

    Decoding to RGB lets libpng and libjpeg handle palettes, alpha and CMYK; a grey image comes
    back with three equal channels. Raises ValueError with what is wrong, for the message.
    """
    import torch
    from torchvision.io import ImageReadMode, decode_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise ValueError("is an empty file")
    try:
        # Photos often store their rotation in EXIF rather than in the pixels.
        image = decode_image(
            torch.frombuffer(bytearray(data), dtype=torch.uint8),
            mode=ImageReadMode.RGB,
            apply_exif_orientation=True,
        )
    except RuntimeError as exc:
        if "Unsupported image file" in str(exc):
            raise ValueError("is not a PNG, JPEG, GIF or WebP image") from None
        # torchvision prefixes its C++ function, file and line: keep only the reason.
        reason = re.sub(r"^.*\.cpp:\d+, ", "", str(exc).strip())
        raise ValueError(f"cannot be decoded ({reason})") from None
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"is an animation of {image.shape[0]} frames, expected one image")
        image = image[0]
    return image.permute(1, 2, 0).numpy()


def _to_grey(rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """The luminance of an H x W x 3 uint8 image, and whether it had any colour at all."""
    red, green, blue = (rgb[..., c].astype(np.int32) for c in range(3))
    if np.array_equal(red, green) and np.array_equal(green, blue):
        return rgb[..., 0].copy(), False
    # ITU-R BT.601 weights, as PIL's "L" mode and torchvision's rgb_to_grayscale use.
    grey = (red * 299 + green * 587 + blue * 114 + 500) // 1000
    return grey.astype(np.uint8), True


def _resize(grey: np.ndarray, size: int) -> np.ndarray:
    import torch

    x = torch.from_numpy(grey).float()[None, None]
    # antialias matters when shrinking: plain bilinear would alias fine patterns.
    y = torch.nn.functional.interpolate(
        x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )
    return y[0, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def _pad_or_crop(grey: np.ndarray, size: int) -> np.ndarray:
    """Centre the image on a black size x size canvas, cropping what does not fit."""
    out = np.zeros((size, size), dtype=np.uint8)
    height, width = grey.shape
    src_y, dst_y = max(0, (height - size) // 2), max(0, (size - height) // 2)
    src_x, dst_x = max(0, (width - size) // 2), max(0, (size - width) // 2)
    h, w = min(height, size), min(width, size)
    out[dst_y : dst_y + h, dst_x : dst_x + w] = grey[src_y : src_y + h, src_x : src_x + w]
    return out


def _cache_key(csv_paths: list[Path], paths: list[Path], size: int, resize: str, color: str) -> str:
    # The split, seed and class names are cheap to redo and stay out of the key, so that
    # changing them reuses the decoded images.
    digest = hashlib.sha256(f"v{CACHE_FORMAT} {size} {resize} {color}\n".encode())
    for csv_path in csv_paths:
        digest.update(hashlib.sha256(csv_path.read_bytes()).digest())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def _read_cache(cache_file: Path, count: int, size: int) -> _Decoded | None:
    try:
        with np.load(cache_file, allow_pickle=False) as archive:
            images = archive["images"]
            notes = tuple(str(note) for note in archive["notes"])
    except Exception:
        # A missing file is a miss; one cut short or overwritten by anything else is rebuilt,
        # never trusted, so any failure to read it counts as a miss.
        return None
    if images.dtype != np.uint8 or images.shape != (count, size, size):
        return None
    return _Decoded(images, notes)


def _write_cache(cache_file: Path, decoded: _Decoded) -> None:
    temp_name = None
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=cache_file.parent, prefix=".tmp-", suffix=".npz", delete=False
        ) as f:
            temp_name = f.name
            np.savez(f, images=decoded.images, notes=np.array(decoded.notes, dtype=np.str_))
        os.replace(temp_name, cache_file)
    except OSError:
        # The cache only saves time: a read-only or full disk must not stop the load.
        if temp_name is not None:
            Path(temp_name).unlink(missing_ok=True)
