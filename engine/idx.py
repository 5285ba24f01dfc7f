"""The IDX file format Fashion-MNIST ships in: unsigned-byte arrays with a typed header.

A file is a 4-byte magic number (two zero bytes, 0x08 for unsigned bytes, the number of
dimensions), one big-endian 4-byte size per dimension, then the bytes, row-major;
a file may be compressed (gzip, bzip2 or xz), which its first bytes tell, never its name.
Numpy only, so reading needs no torch.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import math
import zlib
from pathlib import Path

import numpy as np

from engine import files
from engine.errors import DataError
from engine.fields import clip

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


# How a compressed file starts, whatever its name says: gzip, bzip2, xz.
GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"
ZIP_MAGIC = b"PK\x03\x04"


def compression(head: bytes) -> str | None:
    """The compression a file's first bytes show: "gzip", "bzip2", "xz", or None for none.

    Decided by the magic bytes alone, never by the file name: a raw IDX file named ``.gz``
    and gzip data named without ``.gz`` are both read for what they are.
    """
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return None


def _unpack(raw: bytes, kind: str, limit: int) -> bytes:
    """``raw`` decompressed, at most ``limit + 1`` bytes of it (more means too large)."""
    if kind == "gzip":
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            return f.read(limit + 1)
    decompressor = bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()
    data = decompressor.decompress(raw, max_length=limit + 1)
    if len(data) <= limit and not decompressor.eof:
        raise EOFError("compressed data ends early")
    return data


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when its first bytes show gzip, bzip2 or xz (whatever
    its name); at most ``DATA_FILE_LIMIT`` bytes either way. A FIFO, a device or a folder is
    refused at once (never blocks), as is anything larger."""
    limit = files.DATA_FILE_LIMIT
    kind = None
    try:
        raw = files.read_bytes(path, limit, follow_symlinks=True)
        kind = compression(raw[:8])
        if kind is None:
            return raw
        data = _unpack(raw, kind, limit)
    except (EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError, OSError, ValueError) as exc:
        if kind is None and isinstance(exc, OSError):
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        raise DataError(
            f"{path}: not a complete {kind} file ({clip(str(exc), 80)}); it was cut short or "
            "damaged: download it again"
        ) from None
    if len(data) > limit:
        raise DataError(f"{path}: cannot read (larger than {limit:,} bytes when unpacked)")
    return data


def _not_idx(path: Path, data: bytes, magic: int) -> str:
    """Why ``data`` is no IDX file, and what to do, for a file found where one belongs."""
    head = data[:64].lstrip()
    if data.startswith(ZIP_MAGIC):
        return (
            f"{path}: a zip archive, not an IDX file; unzip it and give the folder that "
            "holds the files inside"
        )
    if head[:1] == b"<":
        return (
            f"{path}: holds text (an HTML page?), not IDX data; a download went wrong: "
            "download the file again"
        )
    if head[:1].isdigit() or head[:5].lower() == b"label":
        return (
            f"{path}: holds text, not IDX data; a CSV of pixels is read with "
            "--data csv-pixels --custom-csv FILE"
        )
    return (
        f"{path}: not an unsigned-byte IDX file (magic 0x{magic:08x}); expected a "
        "Fashion-MNIST IDX file (magic 0x00000803 or 0x00000801): download it again"
    )


def read_idx(path: str | Path, expect_magic: int | None = None) -> np.ndarray:
    """Parse one IDX file of unsigned bytes (raw, or gzip, bzip2 or xz as its first bytes
    show) into a uint8 array of its shape.

    Checks the magic number, the element type, the dimensions and the file length,
    and raises ``DataError`` naming the file and the problem.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: file is empty or shorter than an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if expect_magic is not None and magic != expect_magic and data[:3] != b"\x00\x00\x08":
        raise DataError(_not_idx(path, data, magic))
    if expect_magic is not None and magic != expect_magic:
        raise DataError(
            f"{path}: wrong magic number 0x{magic:08x}, expected 0x{expect_magic:08x} "
            f"({'images' if expect_magic == IMAGES_MAGIC else 'labels'} file); "
            "the file is misnamed or swapped with another: give each its Fashion-MNIST name"
        )
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(_not_idx(path, data, magic))
    ndim = data[3]
    if ndim == 0 or ndim > 4:
        raise DataError(f"{path}: IDX header declares {ndim} dimensions, expected 1 to 4")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes)")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    # Python ints: four 16-bit dimensions overflow int64 to 0 and would pass the check.
    expected = header + math.prod(dims)
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(
            f"{path}: {problem}: header says {' x '.join(map(str, dims))} "
            f"({expected} bytes) but the file holds {len(data)} bytes"
        )
    # A writable copy: torch refuses to wrap read-only buffers without a warning. Annotated:
    # numpy's stubs for Python 3.10 read ``reshape(tuple[int, ...])`` as a 0-d array.
    array: np.ndarray = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()
    return array


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array as a uint8 IDX file (gzipped when the name ends in ``.gz``).

    Values are cast to uint8, so they should lie in 0-255. Raises ``OSError`` when the
    file cannot be written.
    """
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    payload = header + array.tobytes()
    if path.suffix == ".gz":
        # mtime=0 keeps the bytes reproducible: the same images give the same file.
        with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
