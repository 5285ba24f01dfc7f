"""The IDX file format Fashion-MNIST ships in: unsigned-byte arrays with a typed header.

A file is a 4-byte magic number (two zero bytes, 0x08 for unsigned bytes, the number of
dimensions), one big-endian 4-byte size per dimension, then the bytes, row-major;
``.gz`` files are gzipped. Numpy only, so reading needs no torch.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from pathlib import Path

import numpy as np

from engine import files
from engine.errors import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when its name ends in ``.gz``; at most
    ``DATA_FILE_LIMIT`` bytes either way. A FIFO, a device or a folder is refused at once
    (never blocks), as is anything larger."""
    limit = files.DATA_FILE_LIMIT
    try:
        raw = files.read_bytes(path, limit, follow_symlinks=True)
        if path.suffix != ".gz":
            return raw
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = f.read(limit + 1)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a complete gzip file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise DataError(f"{path}: cannot read (larger than {limit:,} bytes when unpacked)")
    return data


def read_idx(path: str | Path, expect_magic: int | None = None) -> np.ndarray:
    """Parse one IDX file (``.gz`` or raw) of unsigned bytes into a uint8 array of its shape.

    Checks the magic number, the element type, the dimensions and the file length,
    and raises ``DataError`` naming the file and the problem.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: file is empty or shorter than an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if expect_magic is not None and magic != expect_magic:
        raise DataError(
            f"{path}: wrong magic number 0x{magic:08x}, expected 0x{expect_magic:08x} "
            f"({'images' if expect_magic == IMAGES_MAGIC else 'labels'} file)"
        )
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file (magic 0x{magic:08x})")
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
