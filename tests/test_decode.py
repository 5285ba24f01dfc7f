"""One decode for every image (issue 11, items 2, 3 and 4, and options anywhere for predict).

Each case builds its files in tmp_path from real Fashion-MNIST test images: the same file
must become the same pixels, byte for byte, through custom-dataset loading, ``fmnist-tui
predict --json``, ``Predictor.predict_files`` and the Inspect pane; 16-bit PNGs, EXIF-rotated
JPEGs, palettes, WebP and transparency are read one way; ``--alpha`` says what transparency
means; ``predict`` uses the run's own image size, policies and test split; and no decode
writes to file descriptor 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pane_helpers import make_app, wait_for
from PIL import Image

from engine.custom import load_custom
from engine.data import ImageData
from engine.inference import Predictor
from engine.runs import Run, list_runs
from tui.cli import main
from tui.screens.inspect import InspectPane
from tui.widgets.prob_bars import ProbBars

# torchvision's image codecs warn that they are deprecated; nothing here should call them.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")

TRAIN = 80  # real test images 100..179 train every run here
QUICK = ["--epochs", "1", "--hidden-sizes", "16", "--batch-size", "32", "--device", "cpu"]


# --- Building files -------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(pixels: np.ndarray, color_type: int, extra: bytes = b"") -> bytes:
    """A PNG of H x W (x C) pixels (uint16 pixels give 16 bits), with ``extra`` chunks
    before the image data; written by hand, as Pillow cannot write every kind."""
    height, width = pixels.shape[:2]
    depth = 16 if pixels.dtype == np.uint16 else 8
    rows = pixels.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + extra
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def oversized_png(width: int = 20_000, height: int = 20_000) -> bytes:
    """A PNG whose header says ``width`` x ``height`` (400 million pixels), with next to
    no image data: what a decompression bomb looks like before it is read."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\0\0"))
        + png_chunk(b"IEND", b"")
    )


def pillow_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def exif_rotated_jpeg(garment: np.ndarray) -> bytes:
    """A JPEG whose pixels lie turned a quarter left, with EXIF Orientation 6 (turn right
    to show): shown upright, it is the garment."""
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(garment, 1)))
    return pillow_bytes(stored, "JPEG", quality=100, exif=exif.tobytes())


def special_files(fashion: ImageData) -> dict[str, tuple[bytes, np.ndarray | None]]:
    """Files of every kind, each made from a real test image: name -> (bytes, the pixels
    it must decode to, or None where only the routes' agreement is checked)."""
    test = fashion.test.images
    rng = np.random.default_rng(11)
    # 16 bits: the garment in the high byte, noise in the low one.
    sixteen = test[0].astype(np.uint16) * 256 + rng.integers(0, 256, (28, 28), dtype=np.uint16)
    silhouette = np.zeros((28, 28, 4), dtype=np.uint8)
    silhouette[..., 3] = test[2]  # black everywhere; the garment is in the alpha
    colour = np.dstack([test[5], test[5] // 2, test[5] // 4]).repeat(2, 0).repeat(2, 1)
    return {
        "sixteen.png": (png_bytes(sixteen, 0), test[0]),
        "rotated.jpg": (exif_rotated_jpeg(test[1]), None),
        "silhouette.png": (png_bytes(silhouette, 6), test[2]),
        "palette.gif": (pillow_bytes(Image.fromarray(test[3]), "GIF"), test[3]),
        "photo.webp": (
            pillow_bytes(Image.fromarray(test[4]).convert("RGB"), "WEBP", lossless=True),
            test[4],
        ),
        "colour56.png": (png_bytes(np.ascontiguousarray(colour), 2), None),
    }


@dataclass(frozen=True)
class Dataset:
    folder: Path
    images: Path
    train_csv: Path
    test_csv: Path
    special: list[str]  # the first rows of test.csv, in order
    expected: dict[str, np.ndarray | None]
    labels: dict[str, int]

    def paths(self) -> list[str]:
        return [str(self.images / name) for name in self.special]

    def flags(self) -> list[str]:
        return [
            "--data",
            "custom",
            "--custom-csv",
            str(self.train_csv),
            "--custom-test-csv",
            str(self.test_csv),
            "--custom-images",
            str(self.images),
        ]


def make_dataset(folder: Path, fashion: ImageData, normal_test: int = 20) -> Dataset:
    """A CSV + folder: 80 real test images train; the special files, then ``normal_test``
    more real ones, test."""
    images = folder / "images"
    images.mkdir(parents=True)
    test = fashion.test
    rows = []
    for i in range(100, 100 + TRAIN):
        Image.fromarray(test.images[i]).save(images / f"t{i}.png")
        rows.append(f"t{i}.png,{int(test.labels[i])}")
    train_csv = folder / "train.csv"
    train_csv.write_text("filename,label\n" + "\n".join(rows) + "\n")
    special = special_files(fashion)
    labels = {}
    rows = []
    for k, (name, (data, _)) in enumerate(special.items()):
        (images / name).write_bytes(data)
        labels[name] = int(test.labels[k if k < 5 else 5])
        rows.append(f"{name},{labels[name]}")
    for i in range(200, 200 + normal_test):
        Image.fromarray(test.images[i]).save(images / f"s{i}.png")
        rows.append(f"s{i}.png,{int(test.labels[i])}")
    test_csv = folder / "test.csv"
    test_csv.write_text("filename,label\n" + "\n".join(rows) + "\n")
    expected = {name: pixels for name, (_, pixels) in special.items()}
    return Dataset(folder, images, train_csv, test_csv, list(special), expected, labels)


@contextlib.contextmanager
def own_cache(folder: Path) -> Iterator[None]:
    """A private decode cache for a module's fixtures, never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield


def train(runs: Path, *flags: str) -> Run:
    """A one-epoch run through the CLI, as a person would start it; returns the run."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--json", "--runs-dir", str(runs), *QUICK, *flags]) == 0
    [info] = list_runs(runs)
    return Run(info.path)


def notes_of(run: Run) -> list[str]:
    """The notes the run's start reported (the data's own first), from its metrics log."""
    for line in run.path.joinpath("metrics.jsonl").read_text().splitlines():
        event = json.loads(line)
        if "notes" in event:
            return [str(n) for n in event["notes"]]
    raise AssertionError("no run-started event in metrics.jsonl")


def predict_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    capsys.readouterr()
    code = main(["predict", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()]


def sha(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err and ".cpp" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("xdg")
    with own_cache(folder):
        yield folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, fashion: ImageData) -> Dataset:
    return make_dataset(tmp_path_factory.mktemp("decode-data"), fashion)


@pytest.fixture(scope="module")
def run28(tmp_path_factory: pytest.TempPathFactory, dataset: Dataset, cache: Path) -> Run:
    """A run trained through the CLI on the dataset at 28 x 28, default policies."""
    return train(tmp_path_factory.mktemp("runs28"), *dataset.flags())


@pytest.fixture(scope="module")
def run64(tmp_path_factory: pytest.TempPathFactory, dataset: Dataset, cache: Path) -> Run:
    """The same data trained at --image-size 64."""
    return train(tmp_path_factory.mktemp("runs64"), *dataset.flags(), "--image-size", "64")


# --- Item 2: one decode function -------------------------------------------------------


async def test_one_file_decodes_alike_through_loading_predict_predictor_and_inspect(
    dataset: Dataset, run28: Run, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    # Custom-dataset loading, as training did: the special files are test rows 0..5.
    data = load_custom(dataset.train_csv, dataset.images, test_csv=dataset.test_csv)
    special = len(dataset.special)
    loaded = data.test.images[:special]
    predictor = Predictor.from_run(run28)
    expected_probs = predictor.predict(loaded).probabilities

    # Each file is read as it should be: 16-bit by its high byte, the EXIF turn applied,
    # the palette, the WebP and the silhouette's alpha exactly.
    for k, name in enumerate(dataset.special):
        want = dataset.expected[name]
        if want is not None:
            np.testing.assert_array_equal(loaded[k], want, err_msg=name)
    rotated = loaded[dataset.special.index("rotated.jpg")].astype(int)
    upright = fashion.test.images[1].astype(int)
    assert np.abs(rotated - upright).mean() < 3
    assert np.abs(rotated - np.rot90(upright, 1)).mean() > 20

    # fmnist-tui predict --json: the decoded input's hash and the probabilities.
    lines = predict_json(capsys, "--json", str(run28.path), *dataset.paths())
    assert [line["image"] for line in lines] == dataset.paths()
    for k, line in enumerate(lines):
        assert line["pixels_sha256"] == sha(loaded[k]), dataset.special[k]
        assert np.allclose(line["probabilities"], expected_probs[k], atol=1e-6, rtol=0)

    # Predictor.predict_files.
    prediction = predictor.predict_files(dataset.paths())
    assert prediction.images is not None
    assert prediction.images.tobytes() == loaded.tobytes()
    assert np.abs(prediction.probabilities - expected_probs).max() <= 1e-6
    assert "1 image with 16-bit pixels reduced to 8 bits" in prediction.notes

    # Inspect: the run's own test split, through the same loader, shown image by image.
    app = make_app(run28.path.parent, fashion.subset(200, 50))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        pane = app.query_one(InspectPane)
        await wait_for(pilot, lambda: pane.result is not None)
        assert pane.result is not None and pane.result.run.path == run28.path
        assert len(pane.result.labels) == len(data.test)
        bars = app.query_one(ProbBars)
        for k in range(special):
            assert pane.current_index == k
            assert pane.result.images[k].tobytes() == loaded[k].tobytes()
            assert np.abs(np.array(bars.probabilities) - expected_probs[k]).max() <= 1e-6
            await pilot.press("n")


def test_no_decode_writes_to_stderr_or_shows_library_internals(
    tmp_path: Path, run28: Run, fashion: ImageData, capfd: pytest.CaptureFixture[str]
) -> None:
    garment = fashion.test.images[7]
    files = {
        # WebP asked for as grey: torchvision warned about "grayscale conversions".
        "a.webp": pillow_bytes(Image.fromarray(garment).convert("RGB"), "WEBP", lossless=True),
        # A grey + alpha PNG with a stray tRNS chunk: libpng warned on stderr.
        "trns.png": png_bytes(np.dstack([garment, garment]), 4, png_chunk(b"tRNS", b"\0\0")),
        # A JPEG missing a little before its end marker: libjpeg warned on stderr.
        "cut.jpg": pillow_bytes(Image.fromarray(garment), "JPEG")[:-40] + b"\xff\xd9",
    }
    images = tmp_path / "images"
    images.mkdir()
    for name, data in files.items():
        (images / name).write_bytes(data)
    paths = [str(images / name) for name in files]
    capfd.readouterr()

    assert main(["predict", "--json", str(run28.path), *paths]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    assert len(out.splitlines()) == 3

    csv = tmp_path / "labels.csv"
    csv.write_text("".join(f"{name},{i % 2}\n" for i, name in enumerate(files)))
    with own_cache(tmp_path / "xdg"):
        data = load_custom(csv, images, test_csv=csv)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    np.testing.assert_array_equal(data.train.images[0], garment)


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("notes.txt", b"a shirt, size M\n", "is not a PNG, JPEG, GIF or WebP image"),
        ("empty.png", b"", "is an empty file"),
        (
            "cut.png",
            b"\x89PNG\r\n\x1a\n" + b"\0" * 30,
            "is a damaged PNG file (chunk b'\\x00\\x00\\x00\\x00')",
        ),
        (
            "badcrc.png",
            png_bytes(np.zeros((28, 28), np.uint8), 0, png_chunk(b"tEXt", b"a\0b")[:-4] + b"oops"),
            "is a damaged PNG file (bad header checksum in b'tEXt')",
        ),
    ],
)
def test_bad_image_files_are_one_line(
    name: str, data: bytes, says: str, tmp_path: Path, run28: Run, capsys
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    line = one_line_error(capsys, ["predict", str(run28.path), str(path)])
    assert line == f"fmnist-tui: error: {path} {says}; give PNG, JPEG, GIF or WebP image files"


def test_an_animation_is_refused_in_one_line(
    tmp_path: Path, run28: Run, fashion: ImageData, capsys
) -> None:
    frames = [Image.fromarray(fashion.test.images[i]) for i in range(3)]
    path = tmp_path / "walk.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    line = one_line_error(capsys, ["predict", str(run28.path), str(path)])
    assert line == (
        f"fmnist-tui: error: {path} is an animation of 3 frames, expected one image; "
        "give PNG, JPEG, GIF or WebP image files"
    )


def test_a_dataset_names_each_unusable_image_by_its_row(
    tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for i in range(6):
        Image.fromarray(fashion.test.images[i]).save(images / f"{i}.png")
        rows.append(f"{i}.png,{i % 2}")
    frames = [Image.fromarray(fashion.test.images[i]) for i in range(3)]
    frames[0].save(images / "walk.gif", save_all=True, append_images=frames[1:])
    (images / "huge.png").write_bytes(oversized_png())
    (images / "notes.txt").write_bytes(b"a shirt, size M\n")
    (images / "cut.png").write_bytes((images / "0.png").read_bytes()[:60])
    csv = tmp_path / "labels.csv"
    bad = ["walk.gif,0", "huge.png,1", "notes.txt,0", "cut.png,1"]
    csv.write_text("filename,label\n" + "\n".join(rows + bad) + "\n")
    flags = ["--data", "custom", "--custom-csv", str(csv), "--custom-images", str(images)]

    capsys.readouterr()
    with own_cache(tmp_path / "xdg"):
        assert main(["check-data", *flags]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ".cpp" not in err
    assert err.splitlines() == [
        f"fmnist-tui: error: custom dataset {csv}: 4 problems:",
        "  - labels.csv row 8: image 'walk.gif' is an animation of 3 frames, expected one image",
        "  - labels.csv row 9: image 'huge.png' is too large (over 89,478,485 pixels)",
        "  - labels.csv row 10: image 'notes.txt' is not a PNG, JPEG, GIF or WebP image",
        "  - labels.csv row 11: image 'cut.png' cannot be decoded (image file is truncated)",
    ]


def test_the_decode_cache_never_reuses_an_older_decoders_arrays(
    tmp_path: Path, fashion: ImageData
) -> None:
    """An array cached by the torchvision decoder (at its key, as it wrote it) is not read."""
    images = tmp_path / "images"
    images.mkdir()
    csv = tmp_path / "labels.csv"
    rows = []
    for i in range(4):
        Image.fromarray(fashion.test.images[i]).save(images / f"{i}.png")
        rows.append(f"{i}.png,{i % 2}")
    csv.write_text("\n".join(rows) + "\n")
    # The old decoder's key: format 1, the policies, the CSVs' hashes (the one CSV given
    # as train and as test), each image path's stat.
    digest = hashlib.sha256(b"v1 28 resize grayscale\n")
    for _ in ("train", "test"):
        digest.update(hashlib.sha256(csv.read_bytes()).digest())
    for i in range(4):
        path = (images / f"{i}.png").resolve()
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    old = tmp_path / "xdg" / "fmnist-tui" / "custom" / f"{digest.hexdigest()[:32]}.npz"
    old.parent.mkdir(parents=True)
    np.savez(old, images=np.full((4, 28, 28), 99, np.uint8), notes=np.array([], dtype=np.str_))

    with own_cache(tmp_path / "xdg"):
        data = load_custom(csv, images, test_csv=csv)
    np.testing.assert_array_equal(data.train.images, fashion.test.images[:4])


# --- Item 3: transparency --------------------------------------------------------------


def test_a_transparent_png_is_its_alpha_and_the_count_is_reported(
    dataset: Dataset, run28: Run
) -> None:
    data = load_custom(dataset.train_csv, dataset.images, test_csv=dataset.test_csv)
    k = dataset.special.index("silhouette.png")
    expected = dataset.expected["silhouette.png"]
    assert expected is not None and expected.any()
    np.testing.assert_array_equal(data.test.images[k], expected)
    note = "1 image with transparency (alpha=auto): 1 read from their alpha (uniform colour)"
    assert note in data.notes
    assert note in notes_of(run28)  # what `train` reported when the run started


def rgba_cases(garment: np.ndarray) -> dict[str, np.ndarray]:
    """Two transparent images: a white silhouette (the garment in its alpha), and the
    garment in colour behind a half-transparent right half."""
    silhouette = np.dstack([np.full((28, 28, 3), 255, np.uint8), garment])
    alpha = np.full((28, 28), 255, np.uint8)
    alpha[:, 14:] = 128
    behind = np.dstack([garment, garment, garment, alpha])
    return {"silhouette.png": silhouette, "behind.png": behind}


def composite(colour: np.ndarray, alpha: np.ndarray, background: int) -> np.ndarray:
    c, a = colour.astype(np.int64), alpha.astype(np.int64)
    return ((c * a + background * (255 - a) + 127) // 255).astype(np.uint8)


@pytest.mark.parametrize("policy", ["auto", "over-black", "over-white", "ignore"])
def test_alpha_policies(policy: str, tmp_path: Path, fashion: ImageData) -> None:
    garment = fashion.test.images[9]
    images = tmp_path / "images"
    images.mkdir()
    cases = rgba_cases(garment)
    for name, pixels in cases.items():
        (images / name).write_bytes(png_bytes(pixels, 6))
    csv = tmp_path / "labels.csv"
    csv.write_text("silhouette.png,0\nbehind.png,1\n")
    with own_cache(tmp_path / "xdg"):
        data = load_custom(csv, images, test_csv=csv, alpha=policy)
    silhouette, behind = data.train.images
    half = cases["behind.png"][..., 3]
    expected = {
        "auto": (garment, composite(garment, half, 0)),
        "over-black": (garment, composite(garment, half, 0)),
        "over-white": (np.full((28, 28), 255), composite(garment, half, 255)),
        "ignore": (np.full((28, 28), 255), garment),
    }[policy]
    np.testing.assert_array_equal(silhouette, expected[0])
    np.testing.assert_array_equal(behind, expected[1])
    words = {
        "auto": "1 read from their alpha (uniform colour), 1 composited over black",
        "over-black": "2 composited over black",
        "over-white": "2 composited over white",
        "ignore": "2 with their alpha ignored",
    }[policy]
    assert f"2 images with transparency (alpha={policy}): {words}" in data.notes


def test_alpha_flag_trains_and_predicts_with_the_runs_policy(
    tmp_path: Path, fashion: ImageData, capsys
) -> None:
    dataset = make_dataset(tmp_path / "data", fashion, normal_test=0)
    with own_cache(tmp_path / "xdg"):
        run = train(tmp_path / "runs", *dataset.flags(), "--alpha", "over-white")
        assert "1 image with transparency (alpha=over-white): 1 composited over white" in (
            notes_of(run)
        )
        silhouette = str(dataset.images / "silhouette.png")
        [line] = predict_json(capsys, str(run.path), silhouette, "--json")
    # Black over white, as the run says, not the default: the garment comes out dark on white.
    garment = dataset.expected["silhouette.png"]
    assert garment is not None
    assert line["pixels_sha256"] == sha(255 - garment)

    error = one_line_error(capsys, ["train", "--alpha", "sideways"])
    assert error == (
        "fmnist-tui: error: alpha: got 'sideways'; expected one of auto, over-black, "
        "over-white, ignore"
    )


# --- Item 4: predict on runs trained on custom data --------------------------------------


def test_predict_uses_the_runs_image_size(
    dataset: Dataset, run64: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    data = load_custom(dataset.train_csv, dataset.images, test_csv=dataset.test_csv, size=64)
    assert data.image_shape == (64, 64)
    k = dataset.special.index("photo.webp")
    path = dataset.paths()[k]
    [line] = predict_json(capsys, str(run64.path), path, "--json")
    assert line["pixels_sha256"] == sha(data.test.images[k])
    predictor = Predictor.from_run(run64)
    assert predictor.image_shape == (64, 64)
    prediction = predictor.predict_files([path])
    assert prediction.images is not None and prediction.images.shape == (1, 64, 64)
    assert np.allclose(line["probabilities"], prediction.probabilities[0], atol=1e-6, rtol=0)


def test_predict_without_images_classifies_the_runs_own_test_split(
    dataset: Dataset, run64: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    data = load_custom(dataset.train_csv, dataset.images, test_csv=dataset.test_csv, size=64)
    lines = predict_json(capsys, str(run64.path), "--count", "8", "--json")
    assert [line["image"] for line in lines] == [f"test[{i}]" for i in range(8)]
    assert [line["true_class"] for line in lines] == data.test.labels[:8].tolist()
    assert [line["pixels_sha256"] for line in lines] == [sha(x) for x in data.test.images[:8]]
    expected = Predictor.from_run(run64).predict(data.test.images[:8]).probabilities
    assert np.allclose([line["probabilities"] for line in lines], expected, atol=1e-6, rtol=0)


def test_predict_without_images_refuses_when_the_runs_data_is_gone(
    tmp_path: Path, fashion: ImageData, capsys
) -> None:
    dataset = make_dataset(tmp_path / "data", fashion, normal_test=0)
    with own_cache(tmp_path / "xdg"):
        run = train(tmp_path / "runs", *dataset.flags())
        os.unlink(dataset.test_csv)
        line = one_line_error(capsys, ["predict", str(run.path)])
    assert line == (
        f"fmnist-tui: error: cannot classify run {run.id}'s own test images: its data cannot "
        f"be loaded (custom dataset {dataset.train_csv}: {dataset.test_csv}: CSV file not "
        "found); restore it, or name image files to classify "
        f"(`fmnist-tui predict {run.id} IMAGE...`)"
    )


# --- Messages: options anywhere among predict's arguments --------------------------------


def test_predict_takes_options_anywhere(
    dataset: Dataset, run28: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = dataset.paths()[:2]
    runs_dir = str(run28.path.parent)
    first = predict_json(capsys, run28.id, "--json", paths[0], "--runs-dir", runs_dir, paths[1])
    second = predict_json(capsys, "--runs-dir", runs_dir, "--json", run28.id, *paths)
    assert [line["image"] for line in first] == paths
    assert first == second
