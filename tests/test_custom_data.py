"""Custom CSV + image-folder datasets: policies, every problem in one error, and the cache."""

from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.io import encode_jpeg, encode_png

from engine.custom import load_custom
from engine.data import DataSource
from engine.errors import DataError

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec and warns at every call;
# the loader still relies on them (TorchCodec is not a dependency), so the warning is noise here.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch) -> Path:
    """Every test gets its own cache folder, so none reads another's (or the user's) cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "fmnist-tui" / "custom"


def png_bytes(pixels: np.ndarray, color_type: int, *, palette: bytes = b"") -> bytes:
    """A PNG of H x W (x C) pixels in any colour type, for the ones torchvision cannot write.

    Colour types: 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA; uint16 pixels give 16 bits.
    """
    height, width = pixels.shape[:2]
    depth = 16 if pixels.dtype == np.uint16 else 8
    rows = pixels.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + (chunk(b"PLTE", palette) if palette else b"")
    return b"\x89PNG\r\n\x1a\n" + chunks + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def grey_png(path: Path, pixels: np.ndarray) -> None:
    path.write_bytes(encode_png(torch.from_numpy(pixels)[None]).numpy().tobytes())


def rgb_png(path: Path, pixels: np.ndarray) -> None:
    path.write_bytes(
        encode_png(torch.from_numpy(pixels).permute(2, 0, 1).contiguous()).numpy().tobytes()
    )


def pattern(seed: int, size: int = 28) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(size, size), dtype=np.uint8)


def write_csv(path: Path, rows: list[str], header: bool = True) -> Path:
    path.write_text("\n".join((["filename,label"] if header else []) + rows) + "\n")
    return path


def grey_dataset(folder: Path, count: int = 10, classes: int = 2) -> dict[str, np.ndarray]:
    """``count`` 28x28 grey PNGs labelled ``i % classes``, and labels.csv; returns the pixels."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    written = {}
    rows = []
    for i in range(count):
        name = f"img{i}.png"
        written[name] = pattern(i)
        grey_png(images / name, written[name])
        rows.append(f"{name},{i % classes}")
    write_csv(folder / "labels.csv", rows)
    return written


def problem_lines(error: pytest.ExceptionInfo[DataError]) -> list[str]:
    return [line.strip().removeprefix("- ") for line in str(error.value).splitlines()[1:]]


# --- Loading ----------------------------------------------------------------------------


def test_grey_28_images_load_unchanged(tmp_path: Path) -> None:
    written = grey_dataset(tmp_path, count=10)
    data = load_custom(
        tmp_path / "labels.csv", tmp_path / "images", resize="reject", color="reject"
    )
    assert (len(data.train), len(data.test)) == (8, 2)
    assert data.classes == ("0", "1")
    assert data.source == DataSource("custom", tmp_path / "labels.csv")
    assert data.notes == ()
    assert data.image_shape == (28, 28)
    assert data.train.images.dtype == np.uint8
    assert data.train.labels.dtype == np.int64
    # Every image comes back with its own label, whichever split it landed in.
    by_pixels = {image.tobytes(): int(name[3:-4]) for name, image in written.items()}
    for split in (data.train, data.test):
        for image, label in zip(split.images, split.labels, strict=True):
            assert by_pixels[image.tobytes()] % 2 == label


def test_header_is_optional(tmp_path: Path) -> None:
    grey_dataset(tmp_path, count=10)
    rows = (tmp_path / "labels.csv").read_text().splitlines()[1:]
    with_header = load_custom(tmp_path / "labels.csv", tmp_path / "images")
    without = load_custom(write_csv(tmp_path / "bare.csv", rows, header=False), tmp_path / "images")
    np.testing.assert_array_equal(with_header.train.images, without.train.images)
    np.testing.assert_array_equal(with_header.test.labels, without.test.labels)


def test_split_is_seeded_and_keeps_every_class_in_both(tmp_path: Path) -> None:
    grey_dataset(tmp_path, count=40, classes=4)
    csv, images = tmp_path / "labels.csv", tmp_path / "images"
    first = load_custom(csv, images, seed=3, test_fraction=0.25)
    again = load_custom(csv, images, seed=3, test_fraction=0.25)
    other = load_custom(csv, images, seed=4, test_fraction=0.25)
    assert (len(first.train), len(first.test)) == (30, 10)
    np.testing.assert_array_equal(first.test.images, again.test.images)
    assert not np.array_equal(first.test.images, other.test.images)
    assert sorted(first.test.class_counts(4)) == [2, 2, 3, 3]


def test_separate_test_csv(tmp_path: Path) -> None:
    grey_dataset(tmp_path, count=10)
    lines = (tmp_path / "labels.csv").read_text().splitlines()[1:]
    train_csv = write_csv(tmp_path / "train.csv", lines[:7])
    test_csv = write_csv(tmp_path / "test.csv", lines[7:], header=False)
    data = load_custom(train_csv, tmp_path / "images", test_csv=test_csv)
    assert (len(data.train), len(data.test)) == (7, 3)
    np.testing.assert_array_equal(data.test.images[0], pattern(7))
    np.testing.assert_array_equal(data.train.labels, [0, 1, 0, 1, 0, 1, 0])


def test_mixed_folder_under_default_policies(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for i in range(4):
        grey_png(images / f"grey{i}.png", pattern(i))
        rows.append(f"grey{i}.png,{i % 2}")
    for i in range(3):
        grey_png(images / f"big{i}.png", pattern(10 + i, size=32))
        rows.append(f"big{i}.png,{i % 2}")
    for i in range(2):
        colour = np.stack([pattern(20 + i), pattern(30 + i), pattern(40 + i)], axis=2)
        rgb_png(images / f"colour{i}.png", colour)
        rows.append(f"colour{i}.png,{i % 2}")
    jpeg = encode_jpeg(torch.full((1, 28, 28), 120, dtype=torch.uint8))
    assert isinstance(jpeg, torch.Tensor)
    (images / "photo.jpg").write_bytes(jpeg.numpy().tobytes())
    rows.append("photo.jpg,1")
    data = load_custom(write_csv(tmp_path / "labels.csv", rows), images)
    assert len(data.train) + len(data.test) == 10
    assert data.notes == (
        "2 images in colour converted to grayscale",
        "3 images resized to 28x28 (from 32x32: 3)",
    )
    everything = np.concatenate([data.train.images, data.test.images])
    assert everything.shape == (10, 28, 28)
    assert any(np.abs(image.astype(int) - 120).max() <= 2 for image in everything)


def test_colour_becomes_luminance(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    colour = np.zeros((28, 28, 3), dtype=np.uint8)
    colour[..., 0], colour[..., 1], colour[..., 2] = 200, 100, 50
    rgb_png(images / "a.png", colour)
    grey_png(images / "b.png", pattern(1))
    csv = write_csv(tmp_path / "labels.csv", ["a.png,0", "b.png,1"])
    data = load_custom(csv, images, test_csv=write_csv(tmp_path / "t.csv", ["b.png,1"]))
    luminance = round(200 * 0.299 + 100 * 0.587 + 50 * 0.114)
    assert (data.train.images[0] == luminance).all()
    assert data.notes == ("1 image in colour converted to grayscale",)


def test_grey_stored_as_rgb_is_not_colour(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    grey = pattern(5)
    rgb_png(images / "a.png", np.stack([grey] * 3, axis=2))
    csv = write_csv(tmp_path / "labels.csv", ["a.png,0"])
    data = load_custom(csv, images, test_csv=csv, color="reject")
    np.testing.assert_array_equal(data.train.images[0], grey)
    assert data.notes == ()


@pytest.mark.parametrize(
    ("name", "pixels", "color_type", "palette", "expected"),
    [
        # Uniform alpha: composited over black (alpha=auto), 90 * 7 / 255 and 30 * 0 / 255.
        ("grey-alpha", np.dstack([np.full((28, 28), 90), np.full((28, 28), 7)]), 4, b"", 2),
        ("rgba", np.dstack([np.full((28, 28), v) for v in (30, 30, 30, 0)]), 6, b"", 0),
        ("palette", np.full((28, 28), 1), 3, bytes([0, 0, 0, 77, 77, 77]), 77),
        ("16-bit", np.full((28, 28), 257 * 140), 0, b"", 140),
    ],
)
def test_other_png_kinds_read_as_grey(
    tmp_path: Path, name: str, pixels: np.ndarray, color_type: int, palette: bytes, expected: int
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    dtype = np.uint16 if name == "16-bit" else np.uint8
    (images / "a.png").write_bytes(png_bytes(pixels.astype(dtype), color_type, palette=palette))
    csv = write_csv(tmp_path / "labels.csv", ["a.png,0"])
    data = load_custom(csv, images, test_csv=csv, color="reject")
    assert (data.train.images[0] == expected).all()


def test_resize_policies(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    big = pattern(1, size=32)
    small = np.full((20, 20), 200, dtype=np.uint8)
    flat = np.full((56, 56), 90, dtype=np.uint8)
    grey_png(images / "big.png", big)
    grey_png(images / "small.png", small)
    grey_png(images / "flat.png", flat)
    csv = write_csv(tmp_path / "labels.csv", ["big.png,0", "small.png,1", "flat.png,2"])

    padded = load_custom(csv, images, test_csv=csv, resize="pad").train.images
    np.testing.assert_array_equal(padded[0], big[2:30, 2:30])
    assert (padded[1][4:24, 4:24] == 200).all()
    assert padded[1].sum() == 200 * 20 * 20
    assert (padded[2] == 90).all()

    resized = load_custom(csv, images, test_csv=csv, resize="resize")
    assert (resized.train.images[2] == 90).all()
    assert resized.train.images.shape == (3, 28, 28)
    assert resized.notes == ("3 images resized to 28x28 (from 32x32: 1, 20x20: 1, 56x56: 1)",)

    eight = load_custom(csv, images, test_csv=csv, size=8)
    assert eight.image_shape == (8, 8)

    with pytest.raises(DataError) as error:
        load_custom(csv, images, test_csv=csv, resize="reject")
    message = str(error.value)
    assert "labels.csv row 2: image 'big.png' is 32x32, expected 28x28" in message
    assert "labels.csv row 3: image 'small.png' is 20x20" in message
    assert "labels.csv row 4: image 'flat.png' is 56x56" in message


def test_classes_file_names_the_labels(tmp_path: Path) -> None:
    grey_dataset(tmp_path, count=10, classes=2)
    classes = tmp_path / "classes.txt"
    classes.write_text("Shirt\nTrouser\nBag\n")
    data = load_custom(tmp_path / "labels.csv", tmp_path / "images", classes_file=classes)
    assert data.classes == ("Shirt", "Trouser", "Bag")
    assert data.num_classes == 3


def test_bundled_example_loads() -> None:
    folder = Path(__file__).resolve().parent.parent / "assets" / "custom-example"
    data = load_custom(
        folder / "labels.csv",
        folder / "images",
        classes_file=folder / "classes.txt",
        use_cache=False,
    )
    assert len(data.train) + len(data.test) == 40
    assert data.classes[0] == "T-shirt/top"
    assert len(data.notes) == 2


# --- Problems ---------------------------------------------------------------------------


def test_every_problem_is_listed_in_one_error(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    grey_png(images / "good.png", pattern(0))
    rgb_png(images / "colour.png", np.dstack([pattern(1), pattern(2), pattern(3)]))
    grey_png(images / "big.png", pattern(4, size=32))
    (images / "garbage.png").write_bytes(b"this is not an image at all")
    whole = encode_png(torch.from_numpy(pattern(5))[None]).numpy().tobytes()
    (images / "cut.png").write_bytes(whole[: len(whole) // 2])
    (images / "empty.png").write_bytes(b"")
    grey_png(tmp_path / "outside.png", pattern(6))
    (images / "link.png").symlink_to(tmp_path / "outside.png")
    rows = [
        "good.png,0",  # row 2
        "good.png,1,extra",  # row 3
        "good.png,cat",  # row 4
        "good.png,-1",  # row 5
        "missing.png,0",  # row 6
        "garbage.png,0",  # row 7
        "cut.png,1",  # row 8
        "empty.png,1",  # row 9
        "../outside.png,0",  # row 10
        "link.png,0",  # row 11
        f"{tmp_path / 'outside.png'},0",  # row 12
        "colour.png,0",  # row 13
        "big.png,0",  # row 14
        "lonely",  # row 15
        "filename,label",  # row 16: only row 1 can be a header
    ]
    csv = write_csv(tmp_path / "labels.csv", rows)
    with pytest.raises(DataError) as error:
        load_custom(csv, images, color="reject", resize="reject")
    lines = problem_lines(error)
    expected = {
        3: "expected 2 columns (filename,label), found 3",
        4: "label 'cat' is not a non-negative integer",
        5: "label '-1' is not a non-negative integer",
        6: f"image 'missing.png' not found in {images.resolve()}",
        7: "image 'garbage.png' is not a PNG, JPEG, GIF or WebP image",
        8: "image 'cut.png' cannot be decoded",
        9: "image 'empty.png' is an empty file",
        10: "image '../outside.png' is outside the image folder",
        11: "image 'link.png' is outside the image folder",
        12: "is an absolute path",
        13: "image 'colour.png' is in colour",
        14: "image 'big.png' is 32x32, expected 28x28",
        15: "expected 2 columns (filename,label), found 1",
        16: "label 'label' is not a non-negative integer",
    }
    for row, text in expected.items():
        matching = [line for line in lines if line.startswith(f"labels.csv row {row}: ")]
        assert len(matching) == 1, (row, lines)
        assert text in matching[0], (row, matching[0])
    assert len(lines) == len(expected)
    assert str(error.value).startswith(f"custom dataset {csv}: {len(expected)} problems:")


def test_problems_from_both_csvs_and_the_classes_file_together(tmp_path: Path) -> None:
    grey_dataset(tmp_path, count=4, classes=4)
    test_csv = write_csv(tmp_path / "test.csv", ["nope.png,2"])
    classes = tmp_path / "classes.txt"
    classes.write_text("a\nb\na\n")
    with pytest.raises(DataError) as error:
        load_custom(
            tmp_path / "labels.csv", tmp_path / "images", test_csv=test_csv, classes_file=classes
        )
    lines = problem_lines(error)
    assert any(line.startswith("test.csv row 2: image 'nope.png' not found") for line in lines)
    assert "classes.txt line 3: 'a' repeats line 1" in lines
    assert any(
        line.startswith("classes.txt names 3 classes but the labels go up to 3") for line in lines
    )
    assert len(lines) == 3


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda d: (d / "labels.csv").unlink(), "CSV file not found"),
        (lambda d: (d / "labels.csv").write_text(""), "CSV file is empty"),
        (
            lambda d: (d / "labels.csv").write_text("filename,label\n"),
            "has a header but no image rows",
        ),
        (lambda d: (d / "labels.csv").write_bytes(b"a.png,\xff\xfe\n"), "not a UTF-8 text file"),
        (lambda d: os.rename(d / "images", d / "gone"), "image folder"),
    ],
    ids=["missing", "empty", "header-only", "not-utf8", "no-folder"],
)
def test_unusable_inputs(tmp_path: Path, setup, expected: str) -> None:
    grey_dataset(tmp_path, count=5)
    setup(tmp_path)
    with pytest.raises(DataError, match=re.escape(expected)):
        load_custom(tmp_path / "labels.csv", tmp_path / "images")


def test_missing_folder_is_reported_once(tmp_path: Path) -> None:
    grey_dataset(tmp_path, count=5)
    with pytest.raises(DataError) as error:
        load_custom(tmp_path / "labels.csv", tmp_path / "elsewhere")
    assert problem_lines(error) == [f"image folder {tmp_path / 'elsewhere'} does not exist"]


def test_split_that_leaves_test_empty(tmp_path: Path) -> None:
    grey_dataset(tmp_path, count=2)
    with pytest.raises(DataError, match="leaves the test split empty"):
        load_custom(tmp_path / "labels.csv", tmp_path / "images", test_fraction=0.2)


def test_long_lists_are_capped(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    csv = write_csv(tmp_path / "labels.csv", [f"m{i}.png,0" for i in range(60)])
    with pytest.raises(DataError) as error:
        load_custom(csv, tmp_path / "images")
    lines = problem_lines(error)
    assert len(lines) == 51
    assert lines[-1] == "... and 10 more"
    assert "60 problems" in str(error.value)


def test_bad_options_are_reported_together(tmp_path: Path) -> None:
    grey_dataset(tmp_path)
    with pytest.raises(DataError) as error:
        load_custom(
            tmp_path / "labels.csv",
            tmp_path / "images",
            resize="zoom",
            color="sepia",
            test_fraction=1.0,
        )
    assert len(problem_lines(error)) == 3


# --- The cache --------------------------------------------------------------------------


@pytest.fixture
def decode_calls(monkeypatch) -> list[int]:
    """Counts calls to Pillow's Image.open, which the decoder looks up at each call."""
    import PIL.Image

    calls: list[int] = []
    real_open = PIL.Image.open

    def counting(*args, **kwargs):
        calls.append(1)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(PIL.Image, "open", counting)
    return calls


def test_second_load_reads_the_cache(
    tmp_path: Path, private_cache: Path, decode_calls: list[int]
) -> None:
    grey_dataset(tmp_path, count=10)
    csv, images = tmp_path / "labels.csv", tmp_path / "images"
    first = load_custom(csv, images)
    assert len(decode_calls) == 10
    assert len(list(private_cache.glob("*.npy"))) == 1

    second = load_custom(csv, images, seed=5)  # another split reuses the decoded images
    assert len(decode_calls) == 10
    assert len(second.train) == len(first.train)
    np.testing.assert_array_equal(
        np.sort(np.concatenate([first.train.labels, first.test.labels])),
        np.sort(np.concatenate([second.train.labels, second.test.labels])),
    )

    later = (images / "img3.png").stat().st_mtime_ns + 10**9
    os.utime(images / "img3.png", ns=(later, later))
    load_custom(csv, images)
    assert len(decode_calls) == 20

    load_custom(csv, images, resize="pad")
    assert len(decode_calls) == 30


def test_corrupt_cache_is_rebuilt(
    tmp_path: Path, private_cache: Path, decode_calls: list[int]
) -> None:
    grey_dataset(tmp_path, count=10)
    csv, images = tmp_path / "labels.csv", tmp_path / "images"
    first = load_custom(csv, images)
    (cache_file,) = private_cache.glob("*.npy")
    cache_file.write_bytes(cache_file.read_bytes()[:100])
    rebuilt = load_custom(csv, images)
    assert len(decode_calls) == 20
    np.testing.assert_array_equal(first.train.images, rebuilt.train.images)
    assert list(private_cache.glob("*.npy")) == [cache_file]
    assert not list(private_cache.glob(".tmp-*"))
    load_custom(csv, images)
    assert len(decode_calls) == 20


def test_no_cache_when_asked(tmp_path: Path, private_cache: Path, decode_calls: list[int]) -> None:
    grey_dataset(tmp_path, count=10)
    load_custom(tmp_path / "labels.csv", tmp_path / "images", use_cache=False)
    load_custom(tmp_path / "labels.csv", tmp_path / "images", use_cache=False)
    assert len(decode_calls) == 20
    assert not private_cache.exists()
