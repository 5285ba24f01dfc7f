"""Image files decoded to square uint8 arrays (grey, or RGB with ``color="rgb"``), and the
on-disk cache of the result.

``decode_images`` decodes each file once with ``engine.decode.decode_image`` (the decode
``predict``, ``Predictor`` and Inspect use too), and notes what it converted. The result is
cached under the user's cache folder, keyed by the decoder's version, the CSV files, the
image files' paths, sizes and times, and the policies, so a second load of an unchanged
dataset decodes nothing, and arrays made by another decoder are never reused. No torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from engine import files
from engine.data import cache_dir
from engine.decode import (
    DECODER_VERSION,
    IMAGE_FILE_LIMIT,
    ImageError,
    alpha_note,
    read_image_file,
)
from engine.decode_pool import decode_files, decode_workers, read_into

__all__ = [
    "CACHE_FORMAT",
    "DECODER_VERSION",
    "IMAGE_FILE_LIMIT",
    "DecodedImages",
    "decode_images",
    "read_image_file",
]

# Bump when the cached arrays change meaning, so old cache files are never read as new ones.
# The decoder's own version is in the key as well (``DECODER_VERSION``).
CACHE_FORMAT = 3  # 3: KEY.npy and KEY.json (2: one KEY.npz)


@dataclass
class DecodedImages:
    """Every distinct image, converted to size x size, and what was done to get there."""

    # uint8, N x size x size (N x size x size x 3 with color="rgb"), in the order of the
    # distinct paths
    images: np.ndarray
    notes: tuple[str, ...]
    # Images each alpha rule touched (keys of engine.decode.ALPHA_RULES); opaque ones are none.
    alpha_counts: dict[str, int] = field(default_factory=dict)


def decode_images(
    csv_paths: list[Path],
    paths: list[str],
    describe: Callable[[int], str],
    size: int,
    resize: str,
    color: str,
    use_cache: bool,
    problems: list[str],
    alpha: str = "auto",
    *,
    stamps: list[tuple[int, int]] | None = None,
    workers: int | None = None,
) -> DecodedImages | None:
    """Decode every distinct image, or read them from the cache; None if any image is bad.

    ``paths`` are the image files (resolved paths), in the order wanted; ``describe(i)``
    gives the words that start the problems of ``paths[i]`` ("labels.csv row 7: image
    'a.png'"), asked only for a bad image. ``csv_paths`` are the CSVs that name them, read
    for the cache key. ``size`` is in
    pixels; ``resize`` is "resize", "pad" (centre-pad or centre-crop) or "reject"; ``color``
    "grayscale", "reject" or "rgb"; ``alpha`` one of ``engine.decode.ALPHA_POLICIES``.
    ``stamps`` are the files' (size in bytes, mtime in ns), in the same order, for the cache
    key, when the caller has them from its own check of the paths (each file is then
    stat'ed once per load); without them the files are stat'ed here. ``workers`` is how many
    processes decode (``decode_workers``: None for one per CPU this process may use, when
    there are at least ``PARALLEL_MIN_IMAGES`` images to decode; 1 for this process alone).
    Each bad image adds a problem to ``problems``; nothing is raised. The images come back
    as uint8 N x size x size (N x size x size x 3 for "rgb"), in the order of ``paths``,
    with how many each alpha rule touched.
    """
    shape = (len(paths), size, size, *((3,) if color == "rgb" else ()))
    cache_file = None
    if use_cache:
        key = _cache_key(csv_paths, paths, stamps, size, resize, color, alpha)
        # No key when a CSV or an image cannot be read now: its problem is reported
        # elsewhere, and nothing is cached.
        cache_file = cache_dir() / "custom" / f"{key}.npy" if key else None
        cached = _read_cache(cache_file, shape) if cache_file else None
        if cached is not None:
            return cached

    writer = _CacheWriter(cache_file, shape) if cache_file is not None else None
    try:
        return _decode_all(paths, describe, shape, resize, color, alpha, problems, workers, writer)
    finally:
        if writer is not None:
            writer.abandon()  # nothing, once it was kept


def _decode_all(
    paths: list[str],
    describe: Callable[[int], str],
    shape: tuple[int, ...],
    resize: str,
    color: str,
    alpha: str,
    problems: list[str],
    workers: int | None,
    writer: _CacheWriter | None,
) -> DecodedImages | None:
    """``decode_images`` after a cache miss: decode, note, and keep the cache ``writer``
    fills chunk by chunk as the images arrive (None: no cache)."""
    size = shape[1]
    images = np.empty(shape, dtype=np.uint8)
    resized: Counter[tuple[int, int]] = Counter()
    rules: Counter[str] = Counter()
    converted = reduced = 0
    ok = True
    for start, outcomes in decode_files(
        paths, images, resize, color, alpha, decode_workers(len(paths), workers)
    ):
        if writer is not None and ok:
            writer.write(images[start : start + len(outcomes)])
        for offset, outcome in enumerate(outcomes):
            if isinstance(outcome, ImageError):
                problems.append(f"{describe(start + offset)} {outcome}{_remedy(outcome.setting)}")
                ok = False
                continue
            colour, was_reduced, rule, original = outcome
            converted += colour
            reduced += was_reduced
            if rule is not None:
                rules[rule] += 1
            if original != (size, size):
                resized[original] += 1
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
    transparency = alpha_note(dict(rules), alpha)
    if transparency:
        notes.append(transparency)
    decoded_images = DecodedImages(images, tuple(notes), dict(rules))
    if writer is not None:
        writer.keep(decoded_images)
    return decoded_images


def _remedy(setting: str) -> str:
    """How to convert what a policy refused, for a dataset's problem list."""
    if setting == "color":
        return " (use color=grayscale to convert it)"
    if setting == "resize":
        return " (use resize=resize or resize=pad to convert it)"
    return ""


def _images(count: int) -> str:
    return f"{count} image" if count == 1 else f"{count} images"


def _cache_key(
    csv_paths: list[Path],
    paths: list[str],
    stamps: list[tuple[int, int]] | None,
    size: int,
    resize: str,
    color: str,
    alpha: str,
) -> str | None:
    # The split, seed and class names are cheap to redo and stay out of the key, so that
    # changing them reuses the decoded images. The decoder's version is in it: arrays from
    # another decoder are never reused.
    digest = hashlib.sha256(
        f"v{CACHE_FORMAT} decoder {DECODER_VERSION} {size} {resize} {color} {alpha}\n".encode()
    )
    try:
        for csv_path in csv_paths:
            digest.update(hashlib.sha256(_read_csv_bytes(csv_path)).digest())
        if stamps is None:
            stamps = [(stat.st_size, stat.st_mtime_ns) for stat in map(os.stat, paths)]
    except OSError:
        return None
    digest.update(
        "".join(
            f"{path}\0{size}\0{mtime}\n" for path, (size, mtime) in zip(paths, stamps, strict=True)
        ).encode()
    )
    return digest.hexdigest()[:32]


def _read_csv_bytes(csv_path: Path) -> bytes:
    # As the CSV reader reads it: a symlink followed, never a FIFO, at most INPUT_FILE_LIMIT.
    return files.read_bytes(csv_path, files.INPUT_FILE_LIMIT, follow_symlinks=True)


def _read_cache(cache_file: Path, shape: tuple[int, ...]) -> DecodedImages | None:
    """The cached images (``cache_file``, a ``.npy``) and what was done to them (the
    ``.json`` beside it), or None for a miss."""
    try:
        meta = json.loads(files.read_bytes(cache_file.with_suffix(".json")))
        notes = tuple(str(note) for note in meta["notes"])
        counts = meta["alpha_counts"]
        if not isinstance(counts, dict) or not all(isinstance(n, int) for n in counts.values()):
            return None
        images = _load_pixels(cache_file, shape)
    except Exception:
        # A missing file is a miss; one cut short or overwritten by anything else is rebuilt,
        # never trusted, so any failure to read it counts as a miss.
        return None
    if images is None:
        return None
    return DecodedImages(images, notes, {str(rule): n for rule, n in counts.items()})


def _load_pixels(cache_file: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The uint8 ``shape`` array in the ``.npy`` file ``cache_file``, read into an array of
    its own (one that can later be shrunk in place), or None when the file holds another
    shape or type or is cut short."""
    with open(cache_file, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            stored, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            stored, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            return None
        if stored != shape or fortran or dtype != np.uint8:
            return None
        images = np.empty(shape, dtype=np.uint8)
        return images if read_into(f, images) else None


class _CacheWriter:
    """A decode cache entry written while the images are decoded: the ``.npy`` header at
    once, each chunk of pixels as it arrives (the loading process waits on its decode
    workers meanwhile), then, once every image is in, the file renamed into place and the
    notes written to the ``.json`` beside it, each atomically: a reader finds the notes only
    once the images are whole. Any failure (a read-only or full disk) drops the entry: the
    cache only saves time and must never stop a load."""

    def __init__(self, cache_file: Path, shape: tuple[int, ...]) -> None:
        self.cache_file = cache_file
        self.temp: Path | None = None
        self.file: IO[bytes] | None = None
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            self.file = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in keep/abandon)
                dir=cache_file.parent, prefix=".tmp-", suffix=".npy", delete=False
            )
            self.temp = Path(self.file.name)
            header = {"descr": "|u1", "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(self.file, header)
        except (OSError, ValueError):
            self.abandon()

    def write(self, pixels: np.ndarray) -> None:
        """Append ``pixels`` (the next images, in order)."""
        if self.file is None:
            return
        try:
            self.file.write(np.ascontiguousarray(pixels).reshape(-1).data)
        except OSError:
            self.abandon()

    def keep(self, decoded: DecodedImages) -> None:
        """Put the entry in place, with ``decoded``'s notes beside it."""
        if self.file is None or self.temp is None:
            return
        try:
            self.file.close()
            os.replace(self.temp, self.cache_file)
            self.file = self.temp = None
            meta = {"notes": list(decoded.notes), "alpha_counts": decoded.alpha_counts}
            target = self.cache_file.with_suffix(".json")
            with tempfile.NamedTemporaryFile(
                dir=target.parent, prefix=".tmp-", suffix=".json", delete=False
            ) as f:
                self.temp = Path(f.name)
                f.write(json.dumps(meta).encode())
            os.replace(self.temp, target)
            self.temp = None
        except OSError:
            self.abandon()

    def abandon(self) -> None:
        """Drop what was written (a no-op once kept)."""
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None
        if self.temp is not None:
            with contextlib.suppress(OSError):
                self.temp.unlink(missing_ok=True)
            self.temp = None
