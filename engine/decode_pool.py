"""Decoding many image files on every CPU: worker processes that run ``decode_image``.

A first load of a CSV + folder decodes every file once, and Pillow's decode of a small
image is mostly Python, which threads cannot share. So ``decode_files`` starts one
worker per CPU as ``python -m engine.decode_pool``: a new interpreter, not a fork. It
inherits none of this process's open files (a run's lock stays this process's), threads
or signal handlers, and it never re-runs the user's ``__main__`` (``multiprocessing``'s
spawn would). Each worker gets the files and options as one JSON line on its stdin and
answers, chunk by chunk in order, with the outcomes (JSON) and the raw pixels, which are
read straight into the caller's array. A worker runs in its own session (Ctrl+C at the
terminal is the parent's to handle), writes nothing to the terminal (its stderr is
discarded), and exits when its parent goes away (its stdout breaks). If workers cannot
start, or one dies (killed for memory), the chunks not yet read are decoded here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from engine.decode import ImageError, decode_many

__all__ = [
    "PARALLEL_MIN_IMAGES",
    "Outcome",
    "chunk_images",
    "decode_chunk",
    "decode_files",
    "decode_workers",
    "read_into",
]

# Fewer images than this are decoded in this process: starting a worker (about 0.2 s,
# mostly importing numpy and Pillow) would cost more than it saves.
PARALLEL_MIN_IMAGES = 3000
# A chunk's pixels, in bytes (about): what a worker sends at once, and fits a pipe's buffer.
CHUNK_BYTES = 1 << 20
_PIPE_BYTES = 1 << 20
_HEADER = struct.Struct(">Q")

# What became of one image: (had colour, had 16-bit samples, alpha rule or None, original
# (width, height)), or the ImageError that refused it.
Outcome = tuple[bool, bool, str | None, tuple[int, int]] | ImageError


def decode_workers(images: int, workers: int | None = None) -> int:
    """How many processes decode ``images`` images: ``workers`` if given (at least 1),
    else one per CPU this process may run on (``os.sched_getaffinity``) when there are at
    least ``PARALLEL_MIN_IMAGES`` images, else 1 (this process alone)."""
    if workers is not None:
        return max(1, workers)
    if images < PARALLEL_MIN_IMAGES:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus)


def chunk_images(shape: tuple[int, ...]) -> int:
    """Images per chunk for images of ``shape`` (H x W, or H x W x 3): about
    ``CHUNK_BYTES`` of pixels, between 16 and 1,000 images."""
    size = int(np.prod(shape)) or 1
    return max(16, min(1000, CHUNK_BYTES // size))


def decode_chunk(
    paths: list[str], shape: tuple[int, ...], resize: str, color: str, alpha: str
) -> tuple[np.ndarray, list[Outcome]]:
    """Decode ``paths`` with ``engine.decode.decode_many`` (``decode_image``) into uint8
    len(paths) x ``shape`` pixels (H x W, or H x W x 3 for "rgb"), zero where a file was
    refused, and each file's outcome. Raises nothing for a bad file."""
    pixels = np.zeros((len(paths), *shape), dtype=np.uint8)
    outcomes: list[Outcome] = []
    decoded_all = decode_many(
        paths, shape=(shape[0], shape[1]), resize=resize, color=color, alpha=alpha
    )
    for i, decoded in enumerate(decoded_all):
        if isinstance(decoded, ImageError):
            outcomes.append(decoded)
            continue
        pixels[i] = decoded.pixels
        outcomes.append(
            (decoded.colour, decoded.reduced, decoded.alpha_rule, decoded.original_size)
        )
    return pixels, outcomes


def decode_files(
    paths: list[str],
    out: np.ndarray,
    resize: str,
    color: str,
    alpha: str,
    workers: int,
) -> Iterator[tuple[int, list[Outcome]]]:
    """Decode ``paths`` into ``out`` (uint8 len(paths) x H x W, or x 3 for "rgb"), chunk
    by chunk in order, yielding each chunk's first index and its files' outcomes (pixels
    of a refused file stay as they were). ``workers`` above 1 decode in that many worker
    processes; 1 decodes here."""
    shape = tuple(out.shape[1:])
    step = chunk_images(shape)
    starts = list(range(0, len(paths), step))
    done = 0
    if workers > 1 and len(starts) > 1:
        for start, outcomes in _in_workers(paths, out, resize, color, alpha, workers, step):
            yield start, outcomes
            done += 1
    for start in starts[done:]:
        pixels, outcomes = decode_chunk(paths[start : start + step], shape, resize, color, alpha)
        out[start : start + len(pixels)] = pixels
        yield start, outcomes


def _in_workers(
    paths: list[str],
    out: np.ndarray,
    resize: str,
    color: str,
    alpha: str,
    workers: int,
    step: int,
) -> Iterator[tuple[int, list[Outcome]]]:
    """The chunks decoded by worker processes, in order, until all are read or a worker
    fails (then the caller decodes the rest)."""
    starts = list(range(0, len(paths), step))
    workers = min(workers, len(starts))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.extend(_start_worker() for _ in range(workers))
        for k, proc in enumerate(procs):
            task = {
                "shape": list(out.shape[1:]),
                "resize": resize,
                "color": color,
                "alpha": alpha,
                "chunks": [paths[s : s + step] for s in starts[k::workers]],
            }
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(task).encode() + b"\n")
            proc.stdin.close()
        for index, start in enumerate(starts):
            stream = procs[index % workers].stdout
            assert stream is not None
            end = min(start + step, len(paths))
            outcomes = _read_chunk(stream, out[start:end])
            if outcomes is None:
                return
            yield start, outcomes
    except OSError:
        return  # a worker could not start, or its pipe broke: the rest is decoded here
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None and not stream.closed:
                    stream.close()


def _start_worker() -> subprocess.Popen[bytes]:
    # The package's folder goes first on the path, so the worker imports this engine.
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.decode_pool"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    # A larger pipe lets a worker send a whole chunk and go on decoding.
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    return proc


def _read_chunk(stream: IO[bytes], out: np.ndarray) -> list[Outcome] | None:
    """One chunk from a worker: its outcomes, with its pixels read into ``out``; None if
    the worker ended or sent something else."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    (length,) = _HEADER.unpack(header)
    if length > 64 << 20:
        return None
    body = _read_exactly(stream, length)
    if body is None:
        return None
    if not read_into(stream, out):
        return None
    try:
        return [_outcome(item) for item in json.loads(body)]
    except (ValueError, TypeError, IndexError):
        return None


def read_into(stream: IO[bytes], out: np.ndarray) -> bool:
    """Fill ``out`` (a C-contiguous uint8 array) from ``stream`` with no copy in between;
    False when the stream ends first."""
    view = out.reshape(-1).data.cast("B")
    filled = 0
    while filled < len(view):
        got = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not got:
            return False
        filled += got
    return True


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def _outcome(item: list[Any]) -> Outcome:
    if item[0] == "error":
        return ImageError(str(item[1]), str(item[2]))
    return (bool(item[1]), bool(item[2]), item[3], (int(item[4]), int(item[5])))


def _encoded(outcome: Outcome) -> list[Any]:
    if isinstance(outcome, ImageError):
        return ["error", outcome.what, outcome.setting]
    colour, reduced, rule, (width, height) = outcome
    return ["ok", colour, reduced, rule, width, height]


def _serve() -> int:
    """A worker: read the task from stdin, decode its chunks, send each on stdout."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the work, not Ctrl+C
    task = json.loads(sys.stdin.buffer.readline())
    shape = tuple(task["shape"])
    out = sys.stdout.buffer
    for paths in task["chunks"]:
        pixels, outcomes = decode_chunk(paths, shape, task["resize"], task["color"], task["alpha"])
        body = json.dumps([_encoded(outcome) for outcome in outcomes]).encode()
        out.write(_HEADER.pack(len(body)))
        out.write(body)
        out.write(pixels.reshape(-1).data)
        out.flush()
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(_serve())
    except (BrokenPipeError, KeyboardInterrupt):
        os._exit(1)  # the parent went away or stopped the work: nothing to say
