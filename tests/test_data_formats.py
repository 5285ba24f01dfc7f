"""The data people actually have (issue 11, items 6-10), each built from real Fashion-MNIST
test images: torchvision's layout and compression by magic bytes, Kaggle's pixel CSV, a
folder per class, labels given as class names, and CSV paths written on Windows. Each goes
through ``fmnist-tui train`` (in-process, one short epoch) and, where it tells, the engine.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pane_helpers import wait_for
from torchvision.io import encode_png

from engine.custom import load_custom
from engine.data import CLASSES, FILES, ImageData, load_fashion_mnist, write_idx
from engine.errors import DataError
from tui.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
N_TRAIN, N_TEST = 120, 40


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("FMNIST_DATA", raising=False)


@pytest.fixture(scope="module")
def real(fashion: ImageData) -> ImageData:
    """Real test images: the first 120 as a training split, the next 40 as a test split."""
    images, labels = fashion.test.images, fashion.test.labels
    from engine.data import Split

    return ImageData(
        Split(images[:N_TRAIN], labels[:N_TRAIN]),
        Split(images[N_TRAIN : N_TRAIN + N_TEST], labels[N_TRAIN : N_TRAIN + N_TEST]),
        CLASSES,
        fashion.source,
    )


def train(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict, str]:
    """``fmnist-tui train FLAGS`` for one tiny epoch: exit code, run_started event, stderr."""
    argv = ["train", *flags, "--epochs", "1", "--hidden-sizes", "16", "--device", "cpu"]
    code = main([*argv, "--json", "--runs-dir", str(tmp_path / "runs"), "--log-every", "1000"])
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    started = next((e for e in events if e.get("event") == "run_started"), {})
    return code, started, err


def read_sizes(started: dict) -> tuple[int, int]:
    """The training and test split sizes as read from the files. Training carves its
    validation split (``val_fraction``, default 0.1) out of the training split after
    reading; tests/test_validation_split.py covers that, so it is added back here."""
    return started["train_size"] + started["val_size"], started["test_size"]


def one_error_line(err: str) -> str:
    assert "Traceback" not in err and ".cpp" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("fmnist-tui: error: ")
    return lines[0]


def write_set(folder: Path, real: ImageData, name: str = "{}") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    parts = {
        "train_images": real.train.images,
        "train_labels": real.train.labels,
        "test_images": real.test.images,
        "test_labels": real.test.labels,
    }
    for key, array in parts.items():
        write_idx(folder / name.format(FILES[key]), array)


def png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(torch.from_numpy(pixels)[None]).numpy().tobytes())


# --- 6: Fashion-MNIST where people put it --------------------------------------------


def test_torchvision_raw_layout_under_data_dir(tmp_path: Path, real: ImageData, capsys) -> None:
    # torchvision's FashionMNIST(root) leaves ROOT/FashionMNIST/raw/*; people pass the
    # FashionMNIST folder itself.
    write_set(tmp_path / "root" / "FashionMNIST" / "raw", real, "{}.gz")
    given = tmp_path / "root" / "FashionMNIST"
    code, started, err = train(tmp_path, capsys, "--data-dir", str(given))
    assert code == 0, err
    assert read_sizes(started) == (N_TRAIN, N_TEST)
    assert str(given) in started["data_source"]


def test_compression_is_told_by_magic_bytes_not_the_name(tmp_path: Path, real: ImageData) -> None:
    folder = tmp_path / "data"
    write_set(folder, real)
    # A raw IDX file named .gz, gzip data named without .gz, bzip2 named .gz.
    raw = folder / FILES["train_images"]
    raw.rename(folder / (FILES["train_images"] + ".gz"))
    labels = folder / FILES["train_labels"]
    labels.write_bytes(gzip.compress(labels.read_bytes()))
    tests = folder / FILES["test_images"]
    (folder / (FILES["test_images"] + ".gz")).write_bytes(bz2.compress(tests.read_bytes()))
    tests.unlink()
    data = load_fashion_mnist(folder, download=False)
    np.testing.assert_array_equal(data.train.images, real.train.images)
    np.testing.assert_array_equal(data.train.labels, real.train.labels)
    np.testing.assert_array_equal(data.test.images, real.test.images)


def test_compression_by_magic_bytes_through_the_cli(
    tmp_path: Path, real: ImageData, capsys
) -> None:
    folder = tmp_path / "data"
    write_set(folder, real, "{}.gz")  # gzip written under .gz names...
    for key in ("train_images", "test_labels"):  # ...and two raw files under .gz names too
        path = folder / (FILES[key] + ".gz")
        path.write_bytes(gzip.decompress(path.read_bytes()))
    code, started, err = train(tmp_path, capsys, "--data-dir", str(folder))
    assert code == 0, err
    assert read_sizes(started)[0] == N_TRAIN


def test_predict_without_images_reads_only_the_runs_test_files(
    tmp_path: Path, real: ImageData, capsys
) -> None:
    # `predict RUN` classifies the run's own test split, loaded alone as Inspect loads it:
    # the training files may be gone.
    folder = tmp_path / "data"
    write_set(folder, real)
    code, started, err = train(tmp_path, capsys, "--data-dir", str(folder))
    assert code == 0, err
    for key in ("train_images", "train_labels"):
        (folder / FILES[key]).unlink()
    argv = ["predict", started["run_id"], "--runs-dir", str(tmp_path / "runs"), "--count", "3"]
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["true_class"] for line in lines] == real.test.labels[:3].tolist()
    pixels = [hashlib.sha256(image.tobytes()).hexdigest() for image in real.test.images[:3]]
    assert [line["pixels_sha256"] for line in lines] == pixels


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            lambda f: (f / FILES["train_images"]).write_bytes(b"PK\x03\x04" + b"\0" * 60),
            "{f}/train-images-idx3-ubyte: a zip archive, not an IDX file; unzip it",
        ),
        (
            lambda f: (f / FILES["train_images"]).write_bytes(b"<!DOCTYPE html><html>"),
            "{f}/train-images-idx3-ubyte: holds text (an HTML page?), not IDX data; a "
            "download went wrong: download the file again",
        ),
        (
            lambda f: (f / FILES["test_labels"]).write_bytes(
                gzip.compress((f / FILES["test_labels"]).read_bytes())[:40]
            ),
            "{f}/t10k-labels-idx1-ubyte: not a complete gzip file",
        ),
    ],
    ids=["zip", "html", "cut-gzip"],
)
def test_found_but_unusable_files_are_named_with_what_to_do(
    tmp_path: Path, real: ImageData, capsys, damage, expected: str
) -> None:
    folder = tmp_path / "data"
    write_set(folder, real)
    damage(folder)
    code, _, err = train(tmp_path, capsys, "--data-dir", str(folder))
    assert code == 2
    assert expected.format(f=folder) in one_error_line(err)


def test_torchvision_processed_files_without_raw_say_what_to_do(tmp_path: Path, capsys) -> None:
    root = tmp_path / "root"
    (root / "FashionMNIST" / "processed").mkdir(parents=True)
    (root / "FashionMNIST" / "processed" / "training.pt").write_bytes(b"\x80\x02")
    code, _, err = train(tmp_path, capsys, "--data-dir", str(root))
    assert code == 2
    line = one_error_line(err)
    assert "torchvision's processed files" in line and "reads only the raw files" in line


def test_kaggle_csv_in_a_data_dir_points_to_csv_pixels(tmp_path: Path, capsys) -> None:
    (tmp_path / "fashion-mnist_train.csv").write_text("label,pixel1\n")
    code, _, err = train(tmp_path, capsys, "--data-dir", str(tmp_path))
    assert code == 2
    assert (
        f"train on it with --data csv-pixels --custom-csv {tmp_path}/fashion-mnist_train.csv"
        in one_error_line(err)
    )


def test_torchvision_layout_in_the_app(tmp_path: Path, real: ImageData) -> None:
    from tui.app import FmnistApp

    write_set(tmp_path / "FashionMNIST" / "raw", real, "{}.gz")

    async def run() -> str:
        app = FmnistApp(data_dir=str(tmp_path / "FashionMNIST"), runs_dir=str(tmp_path / "runs"))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.data is not None)
            assert app.data is not None
            return str(app.data.source.path)

    import asyncio

    assert asyncio.run(run()) == str(tmp_path / "FashionMNIST")


# --- 7: Kaggle's pixel CSV -----------------------------------------------------------


def pixel_csv(path: Path, images: np.ndarray, labels: np.ndarray, header: bool = True) -> Path:
    flat = images.reshape(len(images), -1).astype(np.int64)
    rows = np.concatenate([labels[:, None], flat], axis=1)
    lines = [",".join(map(str, row)) for row in rows.tolist()]
    head = ["label," + ",".join(f"pixel{i}" for i in range(1, flat.shape[1] + 1))]
    path.write_text("\n".join((head if header else []) + lines) + "\n")
    return path


def test_csv_pixels_with_a_test_csv(tmp_path: Path, real: ImageData, capsys) -> None:
    train_csv = pixel_csv(tmp_path / "train.csv", real.train.images, real.train.labels)
    test_csv = pixel_csv(tmp_path / "test.csv", real.test.images, real.test.labels, header=False)
    flags = ["--data", "csv-pixels", "--custom-csv", str(train_csv)]
    code, started, err = train(tmp_path, capsys, *flags, "--custom-test-csv", str(test_csv))
    assert code == 0, err
    assert read_sizes(started) == (N_TRAIN, N_TEST)
    # The images themselves, byte for byte, and torch never imported on the way.
    probe = (
        "import sys, numpy as np; from engine.pixel_csv import load_csv_pixels; "
        f"d = load_csv_pixels({str(train_csv)!r}, test_csv={str(test_csv)!r}); "
        "assert 'torch' not in sys.modules; "
        "np.save(sys.argv[1], np.concatenate([d.train.images, d.test.images]))"
    )
    subprocess.run([sys.executable, "-c", probe, str(tmp_path / "got.npy")], check=True, cwd=ROOT)
    got = np.load(tmp_path / "got.npy")
    np.testing.assert_array_equal(got, np.concatenate([real.train.images, real.test.images]))


def test_csv_pixels_split_by_test_fraction(tmp_path: Path, real: ImageData, capsys) -> None:
    train_csv = pixel_csv(tmp_path / "train.csv", real.train.images, real.train.labels)
    flags = ["--data", "csv-pixels", "--custom-csv", str(train_csv), "--test-fraction", "0.25"]
    code, started, err = train(tmp_path, capsys, *flags)
    assert code == 0, err
    assert read_sizes(started) == (90, 30)


def test_custom_csv_with_a_pixel_header_is_read_as_csv_pixels(
    tmp_path: Path, real: ImageData, capsys
) -> None:
    train_csv = pixel_csv(tmp_path / "train.csv", real.train.images, real.train.labels)
    code, started, err = train(tmp_path, capsys, "--data", "custom", "--custom-csv", str(train_csv))
    assert code == 0, err
    assert sum(read_sizes(started)) == N_TRAIN
    assert any(
        note.startswith("train.csv has the header label,pixel1..pixel784: read as csv-pixels")
        for note in started["notes"]
    ), started["notes"]


def test_csv_pixels_problems_are_listed_with_rows(tmp_path: Path, real: ImageData, capsys) -> None:
    path = pixel_csv(tmp_path / "train.csv", real.train.images[:10], real.train.labels[:10])
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",0,", ",300,", 1)  # row 3: a pixel out of range
    lines[4] = lines[4] + ",7"  # row 5: a column too many
    lines[6] = "x" + lines[6][1:]  # row 7: a label that is no number
    path.write_text("\n".join(lines) + "\n")
    code, _, err = train(tmp_path, capsys, "--data", "csv-pixels", "--custom-csv", str(path))
    assert code == 2
    head, *problems = err.strip().splitlines()
    assert head == f"fmnist-tui: error: custom dataset {path}: 3 problems:"
    assert problems[0].startswith("  - train.csv row 3: column ")
    assert problems[0].endswith("is '300'; expected a whole number 0 to 255")
    assert (
        problems[1] == "  - train.csv row 5: expected 785 columns (label + 784 pixels), found 786"
    )
    assert problems[2] == "  - train.csv row 7: label is 'x'; expected a whole number 0 to 999"


def test_csv_pixels_of_another_size_say_which_image_size(
    tmp_path: Path, real: ImageData, capsys
) -> None:
    path = pixel_csv(
        tmp_path / "small.csv", real.train.images[:20, :14, :14], real.train.labels[:20]
    )
    code, _, err = train(tmp_path, capsys, "--data", "csv-pixels", "--custom-csv", str(path))
    assert code == 2
    assert "small.csv holds 14x14 images (196 pixel columns) but image_size is 28" in err
    assert "give --image-size 14" in err


# --- 8: a folder per class ----------------------------------------------------------


def class_folders(root: Path, split: ImageData | None, images, labels, names) -> None:
    for i, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        png(root / names[int(label)] / f"{i}.png", pixels)


def test_image_folder_with_train_and_test(tmp_path: Path, real: ImageData, capsys) -> None:
    root = tmp_path / "garments"
    names = [c.replace("/", "-") for c in CLASSES]
    class_folders(root / "train", None, real.train.images, real.train.labels, names)
    class_folders(root / "test", None, real.test.images, real.test.labels, names)
    (root / "train" / names[0] / "notes.txt").write_text("not an image")
    code, started, err = train(
        tmp_path, capsys, "--data", "image-folder", "--custom-images", str(root)
    )
    assert code == 0, err
    assert read_sizes(started) == (N_TRAIN, N_TEST)
    assert started["classes"] == sorted(names)
    from engine.custom import load_image_folder  # new in issue 11

    data = load_image_folder(root)
    # Class numbers follow the sorted folder names, and the pixels are the real images.
    order = {name: i for i, name in enumerate(sorted(names))}
    first = real.train.images[0]
    hits = [i for i, image in enumerate(data.train.images) if np.array_equal(image, first)]
    assert hits and data.train.labels[hits[0]] == order[names[int(real.train.labels[0])]]
    assert any("1 files that are not images skipped (.txt: 1)" in n for n in data.notes)


def test_image_folder_without_a_split_uses_test_fraction(
    tmp_path: Path, real: ImageData, capsys
) -> None:
    root = tmp_path / "garments"
    class_folders(root, None, real.train.images, real.train.labels, [f"c{k}" for k in range(10)])
    flags = ["--data", "image-folder", "--custom-images", str(root), "--test-fraction", "0.25"]
    code, started, err = train(tmp_path, capsys, *flags)
    assert code == 0, err
    assert read_sizes(started) == (90, 30)


def test_image_folder_without_class_folders_says_the_layout(tmp_path: Path, capsys) -> None:
    (tmp_path / "flat").mkdir()
    code, _, err = train(
        tmp_path, capsys, "--data", "image-folder", "--custom-images", str(tmp_path / "flat")
    )
    assert code == 2
    assert "holds no class folders; image-folder wants ROOT/<class>/ or ROOT/train/<class>/" in err


# --- 9: labels given as class names ---------------------------------------------------


def named_csv(tmp_path: Path, real: ImageData, sep: str = "/") -> Path:
    images = tmp_path / "images"
    rows = []
    for i, (pixels, label) in enumerate(zip(real.train.images, real.train.labels, strict=True)):
        png(images / "shirts" / f"{i}.png", pixels)
        rows.append(f"shirts{sep}{i}.png,{CLASSES[int(label)]}")
    path = tmp_path / "labels.csv"
    path.write_text("filename,label\n" + "\n".join(rows) + "\n")
    return path


def test_class_name_labels_derive_sorted_classes(tmp_path: Path, real: ImageData, capsys) -> None:
    path = named_csv(tmp_path, real)
    flags = [
        "--data",
        "custom",
        "--custom-csv",
        str(path),
        "--custom-images",
        str(tmp_path / "images"),
    ]
    code, started, err = train(tmp_path, capsys, *flags)
    assert code == 0, err
    assert started["classes"] == sorted(CLASSES)
    assert any(
        n.startswith("labels are class names, numbered in sorted order (0=Ankle boot, 1=Bag")
        for n in started["notes"]
    )


def test_class_name_labels_map_through_the_classes_file(
    tmp_path: Path, real: ImageData, capsys
) -> None:
    path = named_csv(tmp_path, real)
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    data = load_custom(path, tmp_path / "images", classes_file=classes, test_fraction=0.25)
    assert data.classes == CLASSES
    assert "labels are class names, numbered as in classes.txt" in data.notes
    every = np.concatenate([data.train.labels, data.test.labels])
    assert sorted(every.tolist()) == sorted(real.train.labels.tolist())
    flags = [
        "--data",
        "custom",
        "--custom-csv",
        str(path),
        "--custom-images",
        str(tmp_path / "images"),
    ]
    code, started, err = train(tmp_path, capsys, *flags, "--classes-file", str(classes))
    assert code == 0, err
    assert started["classes"] == list(CLASSES)


def test_a_class_name_the_classes_file_lacks_is_named(tmp_path: Path, real: ImageData) -> None:
    path = named_csv(tmp_path, real)
    path.write_text(path.read_text().replace(",Trouser\n", ",Trousers\n", 1))
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    with pytest.raises(DataError) as error:
        load_custom(path, tmp_path / "images", classes_file=classes)
    assert "class 'Trousers' is not in classes.txt (did you mean 'Trouser'?)" in str(error.value)


# --- 10: CSV paths written on Windows ----------------------------------------------------


def test_windows_separators_are_accepted(tmp_path: Path, real: ImageData, capsys) -> None:
    path = named_csv(tmp_path, real, sep="\\")
    flags = [
        "--data",
        "custom",
        "--custom-csv",
        str(path),
        "--custom-images",
        str(tmp_path / "images"),
    ]
    code, started, err = train(tmp_path, capsys, *flags)
    assert code == 0, err
    assert sum(read_sizes(started)) == N_TRAIN


def test_windows_paths_stay_inside_the_image_folder(
    tmp_path: Path, real: ImageData, capsys
) -> None:
    png(tmp_path / "outside.png", real.train.images[0])
    images = tmp_path / "images"
    png(images / "shirts" / "0.png", real.train.images[0])
    png(images / "shirts" / "1.png", real.train.images[1])
    path = tmp_path / "labels.csv"
    path.write_text("shirts\\0.png,0\nshirts\\1.png,1\n..\\..\\outside.png,0\nC:\\data\\x.png,1\n")
    flags = ["--data", "custom", "--custom-csv", str(path), "--custom-images", str(images)]
    code, _, err = train(tmp_path, capsys, *flags, "--test-fraction", "0.5")
    assert code == 2
    head, *problems = err.strip().splitlines()
    assert head == f"fmnist-tui: error: custom dataset {path}: 2 problems:"
    assert (
        "labels.csv row 3: image '..\\\\..\\\\outside.png' is outside the image folder"
        in problems[0]
    )
    assert "labels.csv row 4: image 'C:\\\\data\\\\x.png' is an absolute path" in problems[1]
