"""Decoding on every CPU (issue 11, the first decode's speed): worker processes give the
same pixels and outcomes as this process, and loading keeps the pixels about once.

Files are built in tmp_path from real Fashion-MNIST test images, with a few that need each
rule of the decoder (colour, 16-bit, transparency, another size) and one that is not an
image, so every kind of outcome crosses the pipe from a worker.
"""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.custom import load_custom
from engine.data import ImageData
from engine.decode import ImageError
from engine.decode_pool import chunk_images, decode_files
from engine.image_files import decode_images
from engine.image_rows import split_in_place


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test decodes into a cache folder of its own, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def write_mixed_files(folder: Path, fashion: ImageData, count: int) -> list[str]:
    """``count`` files: real garments as grey PNGs, with every 50th one in colour, 16-bit,
    transparent, of another size or not an image at all."""
    folder.mkdir()
    paths = []
    for i in range(count):
        garment = fashion.test.images[i]
        path = folder / f"{i}.png"
        kind = i % 50
        if kind == 1:  # colour
            Image.fromarray(np.stack([garment, garment // 2, 255 - garment], axis=2)).save(path)
        elif kind == 2:  # 16-bit grey
            Image.fromarray(garment.astype(np.uint16) * 257).save(path)
        elif kind == 3:  # a silhouette in the alpha channel
            rgba = np.zeros((28, 28, 4), np.uint8)
            rgba[..., 3] = garment
            Image.fromarray(rgba).save(path)
        elif kind == 4:  # another size
            Image.fromarray(garment).resize((40, 40)).save(path)
        elif kind == 5:
            path.write_bytes(b"not an image at all")
        else:
            buffer = io.BytesIO()
            Image.fromarray(garment).save(buffer, "PNG")
            path.write_bytes(buffer.getvalue())
        paths.append(str(path))
    return paths


def test_worker_processes_decode_exactly_as_this_process(
    tmp_path: Path, fashion: ImageData
) -> None:
    paths = write_mixed_files(tmp_path / "images", fashion, 300)
    shape = (64, 64)  # resized up, so that 300 images make several chunks
    assert chunk_images(shape) < len(paths)
    results = {}
    for workers in (1, 2):
        out = np.full((len(paths), *shape), 7, dtype=np.uint8)
        outcomes = []
        starts = []
        for start, chunk in decode_files(paths, out, "resize", "grayscale", "auto", workers):
            starts.append(start)
            outcomes.extend(chunk)
        assert starts == sorted(starts) and starts[0] == 0
        results[workers] = out, outcomes
    (serial, serial_outcomes), (parallel, parallel_outcomes) = results[1], results[2]
    assert np.array_equal(serial, parallel)
    assert len(serial_outcomes) == len(parallel_outcomes) == len(paths)
    for mine, theirs in zip(serial_outcomes, parallel_outcomes, strict=True):
        if isinstance(mine, ImageError):
            assert isinstance(theirs, ImageError)
            assert (mine.what, mine.setting) == (theirs.what, theirs.setting)
        else:
            assert mine == theirs
    refused = [i for i, outcome in enumerate(parallel_outcomes) if isinstance(outcome, ImageError)]
    assert refused == [i for i in range(len(paths)) if i % 50 == 5]
    rules = {outcome[2] for outcome in parallel_outcomes if not isinstance(outcome, ImageError)}
    assert "alpha-as-grey" in rules


def test_a_load_through_workers_names_the_bad_files_and_notes_the_rest(
    tmp_path: Path, fashion: ImageData
) -> None:
    paths = write_mixed_files(tmp_path / "images", fashion, 120)
    problems: list[str] = []
    decoded = decode_images(
        [],
        paths,
        lambda i: f"image {i}",
        128,  # 64 images a chunk: two chunks, so both workers decode
        "resize",
        "grayscale",
        False,
        problems,
        workers=2,
    )
    assert decoded is None
    assert problems == [f"image {i} is not a PNG, JPEG, GIF or WebP image" for i in (5, 55, 105)]
    good = [p for i, p in enumerate(paths) if i % 50 != 5]
    problems = []
    decoded = decode_images([], good, str, 128, "resize", "grayscale", False, problems, workers=2)
    assert decoded is not None and problems == []
    assert any("in colour converted to grayscale" in note for note in decoded.notes)
    assert any("16-bit" in note for note in decoded.notes)
    assert any("transparency" in note for note in decoded.notes)


@pytest.mark.parametrize("test_every", [2, 5, 7])
def test_splitting_in_place_keeps_each_side_in_order(test_every: int) -> None:
    images = np.repeat(np.arange(3000)[:, None, None] % 251, 4, axis=2).astype(np.uint8)
    labels = np.arange(3000, dtype=np.int64)
    expected = images.copy()
    test_index = np.arange(3, 3000, test_every)
    train_index = np.setdiff1d(np.arange(3000), test_index)
    train, test = split_in_place(images, labels, train_index, test_index)
    assert np.array_equal(train.images, expected[train_index])
    assert np.array_equal(test.images, expected[test_index])
    assert np.array_equal(train.labels, train_index) and np.array_equal(test.labels, test_index)
    with pytest.raises(ValueError, match="split rows"):
        split_in_place(images, labels, train_index[1:], test_index)


def test_a_cached_load_gives_the_same_splits_as_the_first(
    tmp_path: Path, fashion: ImageData
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    rows = ["filename,label"]
    for i in range(60):
        Image.fromarray(fashion.test.images[i]).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{int(fashion.test.labels[i])}")
    rows.append(f"0.png,{int(fashion.test.labels[0])}")  # one file named twice
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    first = load_custom(tmp_path / "labels.csv", folder)
    again = load_custom(tmp_path / "labels.csv", folder)
    for a, b in ((first.train, again.train), (first.test, again.test)):
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert len(first.train) + len(first.test) == 61
    # Every image keeps its own label: the garment of the row that named it.
    label_of = {fashion.test.images[i].tobytes(): int(fashion.test.labels[i]) for i in range(60)}
    for split in (first.train, first.test):
        for image, label in zip(split.images, split.labels, strict=True):
            assert label_of[image.tobytes()] == label


@pytest.mark.parametrize("kind", ["csv", "csv+test-csv", "image-folder"])
def test_a_test_only_load_gives_the_full_loads_test_split_and_no_training_images(
    tmp_path: Path, fashion: ImageData, kind: str
) -> None:
    from engine.image_folder import load_image_folder

    folder = tmp_path / "images"
    rows = []
    for i in range(40):
        label = int(fashion.test.labels[i])
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(fashion.test.images[i]).save(folder / str(label) / f"{i}.png")
        rows.append(f"{label}/{i}.png,{label}")
    (tmp_path / "train.csv").write_text("\n".join(rows[:30]) + "\n")
    (tmp_path / "test.csv").write_text("\n".join(rows[30:]) + "\n")
    (tmp_path / "all.csv").write_text("\n".join(rows) + "\n")

    def load(test_only: bool) -> ImageData:
        if kind == "image-folder":
            return load_image_folder(folder, test_only=test_only, use_cache=False)
        if kind == "csv":
            return load_custom(tmp_path / "all.csv", folder, test_only=test_only)
        return load_custom(
            tmp_path / "train.csv", folder, test_csv=tmp_path / "test.csv", test_only=test_only
        )

    full, test_only = load(False), load(True)
    assert len(test_only.train) == 0 and test_only.train.images.shape[1:] == (28, 28)
    assert len(full.test) > 0
    np.testing.assert_array_equal(test_only.test.images, full.test.images)
    np.testing.assert_array_equal(test_only.test.labels, full.test.labels)


def decode_workers_of_this_process() -> list[int]:
    """The pids of this process's children running ``python -m engine.decode_pool``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"engine.decode_pool" in cmdline:
            found.append(int(entry.name))
    return found


def test_workers_killed_midway_leave_the_rest_to_this_process(
    tmp_path: Path, fashion: ImageData
) -> None:
    paths = write_mixed_files(tmp_path / "images", fashion, 400)
    shape = (128, 128)  # 64 images a chunk: seven chunks
    serial = np.zeros((len(paths), *shape), dtype=np.uint8)
    expected = [
        o
        for _, chunk in decode_files(paths, serial, "resize", "grayscale", "auto", 1)
        for o in chunk
    ]
    out = np.zeros_like(serial)
    outcomes = []
    chunks = decode_files(paths, out, "resize", "grayscale", "auto", 2)
    start, first = next(chunks)
    assert start == 0
    outcomes.extend(first)
    workers = decode_workers_of_this_process()
    assert len(workers) == 2  # the work is in worker processes
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    for _, chunk in chunks:
        outcomes.extend(chunk)
    assert np.array_equal(out, serial)
    assert [type(o) for o in outcomes] == [type(o) for o in expected]
    assert decode_workers_of_this_process() == []  # none left behind
