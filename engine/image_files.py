"""Image files decoded to square uint8 grey arrays, and the on-disk cache of the result.

``decode_images`` reads each file once with ``torchvision.io`` (PNG, JPEG, GIF, WebP),
converts colour to grey and other sizes to the size asked for, as the policies say,
and notes what it converted. The result is cached under the user's cache folder, keyed
by the CSV files, the image files' paths, sizes and times, and the policies, so a
second load of an unchanged dataset decodes nothing. torch is imported only to decode.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine import files
from engine.data import cache_dir

# Bump when the cached arrays change meaning, so old cache files are never read as new ones.
CACHE_FORMAT = 1
# The largest image file read, in bytes: far above any real image, far below a memory's worth.
IMAGE_FILE_LIMIT = 64 << 20


def read_image_file(path: str | Path) -> bytes:
    """The bytes of the image file ``path``: a regular file (a symlink to one is followed)
    of at most ``IMAGE_FILE_LIMIT`` bytes.

    Raises ``OSError``: ``FileNotFoundError``, ``files.UnsafeFileError`` for a FIFO, a
    device, a folder or a file over the limit (never blocking, never reading one in full).
    """
    return files.read_bytes(path, IMAGE_FILE_LIMIT, follow_symlinks=True)


@dataclass
class DecodedImages:
    """Every distinct image, converted to size x size grey, and what was done to get there."""

    images: np.ndarray  # uint8, N x size x size, in the order of the distinct paths
    notes: tuple[str, ...]


def decode_images(
    csv_paths: list[Path],
    described: dict[Path, str],
    size: int,
    resize: str,
    color: str,
    use_cache: bool,
    problems: list[str],
) -> DecodedImages | None:
    """Decode every distinct image, or read them from the cache; None if any image is bad.

    ``described`` maps each resolved image path, in the order wanted, to the words that
    start its problems ("labels.csv row 7: image 'a.png'"). ``size`` is in pixels; ``resize``
    is "resize", "pad" (centre-pad or centre-crop) or "reject"; ``color`` "grayscale" or
    "reject". Each bad image adds a problem to ``problems``; nothing is raised. The
    images come back as uint8 N x size x size, in the order of ``described``.
    """
    paths = list(described)
    cache_file = None
    if use_cache:
        key = _cache_key(csv_paths, paths, size, resize, color)
        cache_file = cache_dir() / "custom" / f"{key}.npz"
        cached = _read_cache(cache_file, len(paths), size)
        if cached is not None:
            return cached

    images = np.zeros((len(paths), size, size), dtype=np.uint8)
    resized: Counter[tuple[int, int]] = Counter()
    converted = reduced = 0
    ok = True
    for i, (path, description) in enumerate(described.items()):
        try:
            rgb = _decode(path)
        except ValueError as exc:
            problems.append(f"{description} {exc}")
            ok = False
            continue
        if rgb.dtype == np.uint16:
            rgb = ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
            reduced += 1
        grey, is_colour = _to_grey(rgb)
        if is_colour:
            if color == "reject":
                problems.append(f"{description} is in colour (use color=grayscale to convert it)")
                ok = False
                continue
            converted += 1
        height, width = grey.shape
        if (height, width) != (size, size):
            if resize == "reject":
                problems.append(
                    f"{description} is {width}x{height}, expected "
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
    decoded = DecodedImages(images, tuple(notes))
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
        data = read_image_file(path)
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror or exc})") from None
    if not data:
        raise ValueError("is an empty file")
    try:
        # Photos often store their rotation in EXIF rather than in the pixels.
        image: torch.Tensor = decode_image(
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


def _read_cache(cache_file: Path, count: int, size: int) -> DecodedImages | None:
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
    return DecodedImages(images, notes)


def _write_cache(cache_file: Path, decoded: DecodedImages) -> None:
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
