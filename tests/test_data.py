"""Fashion-MNIST on disk and in memory: IDX parsing, finding the set, and device batches."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data import (
    FILES,
    MEAN,
    STD,
    SYSTEM_DIR,
    Augment,
    DataSource,
    DeviceData,
    ImageData,
    Split,
    load_fashion_mnist,
    load_idx_folder,
    locate_fashion_mnist,
    read_idx,
    write_idx,
)
from engine.errors import DataError


def fake_split(count: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    return Split(images, (np.arange(count) % 10).astype(np.int64))


def write_set(folder: Path, *, gz: bool = True, train: int = 30, test: int = 20) -> ImageData:
    """Write a small, valid Fashion-MNIST-shaped set as the four IDX files; return what it holds."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    train_split, test_split = fake_split(train, 1), fake_split(test, 2)
    write_idx(folder / (FILES["train_images"] + suffix), train_split.images)
    write_idx(folder / (FILES["train_labels"] + suffix), train_split.labels)
    write_idx(folder / (FILES["test_images"] + suffix), test_split.images)
    write_idx(folder / (FILES["test_labels"] + suffix), test_split.labels)
    return ImageData(train_split, test_split, (), DataSource("flag", folder))


# --- IDX files ----------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_written_idx_files_load_back(tmp_path: Path, gz: bool) -> None:
    expected = write_set(tmp_path, gz=gz)
    data = load_fashion_mnist(tmp_path, download=False)
    assert data.source.kind == "flag"
    assert not data.source.is_sample
    for got, want in ((data.train, expected.train), (data.test, expected.test)):
        assert got.images.dtype == np.uint8
        assert got.labels.dtype == np.int64
        np.testing.assert_array_equal(got.images, want.images)
        np.testing.assert_array_equal(got.labels, want.labels)


def test_torchvision_layout_is_found(tmp_path: Path) -> None:
    write_set(tmp_path / "FashionMNIST" / "raw")
    assert len(load_fashion_mnist(tmp_path, download=False).train) == 30


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-5])


def _truncate_gzip(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _trailing_bytes(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\x00\x00\x00")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    ("damage", "gz", "expected"),
    [
        (_truncate, False, "truncated"),
        (_truncate_gzip, True, "not a complete gzip file"),
        (_trailing_bytes, False, "trailing bytes"),
        (_empty, False, "empty"),
    ],
    ids=["truncated", "truncated-gzip", "trailing-bytes", "empty"],
)
def test_damaged_file_is_named(tmp_path: Path, damage, gz: bool, expected: str) -> None:
    write_set(tmp_path, gz=gz)
    victim = tmp_path / (FILES["train_images"] + (".gz" if gz else ""))
    damage(victim)
    with pytest.raises(DataError, match=expected) as info:
        load_fashion_mnist(tmp_path, download=False)
    assert str(victim) in str(info.value)


def test_labels_file_in_place_of_images_is_wrong_magic(tmp_path: Path) -> None:
    write_set(tmp_path)
    images = tmp_path / (FILES["test_images"] + ".gz")
    shutil.copy(tmp_path / (FILES["test_labels"] + ".gz"), images)
    with pytest.raises(DataError, match="wrong magic number 0x00000801") as info:
        load_fashion_mnist(tmp_path, download=False)
    assert str(images) in str(info.value)


def test_image_and_label_counts_must_match(tmp_path: Path) -> None:
    write_set(tmp_path)
    labels = tmp_path / (FILES["train_labels"] + ".gz")
    write_idx(labels, np.zeros(29, dtype=np.uint8))
    with pytest.raises(DataError, match=r"30 images but .* 29 labels") as info:
        load_fashion_mnist(tmp_path, download=False)
    assert str(labels) in str(info.value)


def test_images_must_be_28_by_28(tmp_path: Path) -> None:
    write_set(tmp_path)
    images = tmp_path / (FILES["test_images"] + ".gz")
    write_idx(images, np.zeros((20, 32, 32), dtype=np.uint8))
    with pytest.raises(DataError, match="32 x 32, expected 28 x 28") as info:
        load_fashion_mnist(tmp_path, download=False)
    assert str(images) in str(info.value)


def test_labels_must_be_in_range(tmp_path: Path) -> None:
    write_set(tmp_path)
    labels = tmp_path / (FILES["test_labels"] + ".gz")
    write_idx(labels, np.full(20, 10, dtype=np.uint8))
    with pytest.raises(DataError, match="label 10 is out of range 0-9") as info:
        load_fashion_mnist(tmp_path, download=False)
    assert str(labels) in str(info.value)


def test_explicit_folder_missing_a_file_names_it(tmp_path: Path) -> None:
    write_set(tmp_path)
    (tmp_path / (FILES["test_labels"] + ".gz")).unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as info:
        locate_fashion_mnist(tmp_path, download=False, system_dir=SYSTEM_DIR)
    assert str(tmp_path) in str(info.value)


def test_idx_header_and_shape_round_trip(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x.idx", array)
    raw = (tmp_path / "x.idx").read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 3])
    assert raw[4:16] == b"\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x04"
    np.testing.assert_array_equal(read_idx(tmp_path / "x.idx"), array)
    with gzip.open(tmp_path / "x.idx.gz", "wb") as f:
        f.write(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.idx.gz"), array)


# --- Finding the set ------------------------------------------------------------------


def test_sources_are_tried_in_design_order(tmp_path: Path, monkeypatch) -> None:
    flag, env, system, sample = (tmp_path / name for name in ("flag", "env", "system", "sample"))
    cache = tmp_path / "xdg" / "fmnist-tui"
    for folder in (flag, env, cache, system, sample):
        write_set(folder, train=10, test=10)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("FMNIST_DATA", str(env))

    def locate(data_dir: Path | None = None) -> DataSource:
        return locate_fashion_mnist(data_dir, download=False, system_dir=system, sample_dir=sample)

    assert locate(flag) == DataSource("flag", flag)
    assert locate() == DataSource("env", env)
    monkeypatch.delenv("FMNIST_DATA")
    assert locate() == DataSource("cache", cache)
    shutil.rmtree(cache)
    assert locate() == DataSource("system", system)
    shutil.rmtree(system)
    found = locate()
    assert found == DataSource("sample", sample, is_sample=True)
    shutil.rmtree(sample)
    with pytest.raises(DataError, match="not found"):
        locate()


def test_broken_env_folder_is_not_passed_over(tmp_path: Path, monkeypatch) -> None:
    system = tmp_path / "system"
    write_set(system, train=10, test=10)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("FMNIST_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="nowhere"):
        locate_fashion_mnist(download=False, system_dir=system, sample_dir=system)


def test_sample_says_it_is_the_sample(tmp_path: Path) -> None:
    write_set(tmp_path, train=10, test=10)
    source = DataSource("sample", tmp_path, is_sample=True)
    assert "SAMPLE" in source.describe()
    assert "SAMPLE" not in DataSource("system", tmp_path).describe()
    data = load_idx_folder(tmp_path, source)
    assert data.source.is_sample
    assert any("SAMPLE" in note for note in data.notes)


def test_bundled_sample_is_balanced_and_loads() -> None:
    sample_dir = Path(__file__).resolve().parent.parent / "assets" / "fashion-mnist-sample"
    data = load_idx_folder(sample_dir, DataSource("sample", sample_dir, is_sample=True))
    assert data.train.class_counts(10) == [200] * 10
    assert data.test.class_counts(10) == [50] * 10
    assert sum(p.stat().st_size for p in sample_dir.iterdir()) < 2_000_000
    assert "Zalando SE" in (sample_dir / "LICENSE").read_text(encoding="utf-8")


# --- The real set ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def real() -> ImageData:
    return load_idx_folder(SYSTEM_DIR, DataSource("system", SYSTEM_DIR))


def test_real_set_has_the_published_shape(real: ImageData) -> None:
    assert (len(real.train), len(real.test)) == (60_000, 10_000)
    for split, per_class in ((real.train, 6_000), (real.test, 1_000)):
        assert split.images.dtype == np.uint8
        assert split.images.shape[1:] == (28, 28)
        assert split.labels.min() == 0
        assert split.labels.max() == 9
        assert split.class_counts(10) == [per_class] * 10
    assert real.num_classes == 10
    assert real.image_shape == (28, 28)


def test_normalised_real_set_has_mean_0_and_std_1(real: ImageData) -> None:
    data = DeviceData(real.train, "cpu", num_classes=10)
    total = squares = 0.0
    count = 0
    for x, _ in data.batches(10_000):
        total += x.double().sum().item()
        squares += x.double().square().sum().item()
        count += x.numel()
    mean = total / count
    std = (squares / count - mean**2) ** 0.5
    assert abs(mean) < 0.01
    assert abs(std - 1.0) < 0.01


# --- Batches on the device ---------------------------------------------------------------


def indexed_data(count: int) -> DeviceData:
    """A split whose labels are the image indices, so batches show which images they hold."""
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    return DeviceData(Split(images, np.arange(count)), "cpu", num_classes=count, normalize=False)


def test_shuffled_epoch_covers_every_image_once() -> None:
    data = indexed_data(103)
    order = data.permutation(torch.Generator().manual_seed(0))
    batches = [y for _, y in data.batches(10, order=order)]
    assert [len(y) for y in batches] == [10] * 10 + [3]
    seen = torch.cat(batches)
    assert torch.equal(seen, order)
    assert torch.equal(seen.sort().values, torch.arange(103))
    assert not torch.equal(seen, torch.arange(103))


def test_unshuffled_batches_are_in_order_and_resume_from_start() -> None:
    data = indexed_data(25)
    assert torch.equal(torch.cat([y for _, y in data.batches(10)]), torch.arange(25))
    resumed = torch.cat([y for _, y in data.batches(10, start=1)])
    assert torch.equal(resumed, torch.arange(10, 25))


def test_seeded_order_is_reproducible() -> None:
    data = indexed_data(500)
    first = data.permutation(torch.Generator().manual_seed(7))
    again = data.permutation(torch.Generator().manual_seed(7))
    other = data.permutation(torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_one_hot_targets() -> None:
    split = fake_split(20, 3)
    data = DeviceData(split, "cpu", num_classes=10)
    x, y = next(data.batches(8, one_hot=True))
    assert x.shape == (8, 1, 28, 28)
    assert y.shape == (8, 10)
    assert y.dtype == torch.float32
    assert torch.equal(y.sum(dim=1), torch.ones(8))
    assert torch.equal(y.argmax(dim=1), torch.from_numpy(split.labels[:8]))


def crafted(image: np.ndarray, count: int) -> DeviceData:
    images = np.repeat(image[None], count, axis=0)
    return DeviceData(Split(images, np.zeros(count, dtype=np.int64)), "cpu", num_classes=10)


def test_augmentation_keeps_the_shape() -> None:
    data = DeviceData(fake_split(50, 4), "cpu", num_classes=10)
    generator = torch.Generator().manual_seed(0)
    for x, _ in data.batches(16, augment=Augment(), generator=generator):
        assert x.shape[1:] == (1, 28, 28)
        assert x.dtype == torch.float32


def test_flip_mirrors_some_images_and_leaves_the_rest() -> None:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[:, :3] = 255  # a bright stripe on the left edge
    image[5, 10] = 100  # and a mark that breaks any symmetry
    data = crafted(image, 64)
    original = data.prepare(torch.from_numpy(image)[None])[0]
    x, _ = next(
        data.batches(
            64,
            augment=Augment(flip=True, crop_padding=0),
            generator=torch.Generator().manual_seed(0),
        )
    )
    flipped = [bool(torch.equal(xi, original.flip(2))) for xi in x]
    kept = [bool(torch.equal(xi, original)) for xi in x]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 10 < sum(flipped) < 54


def test_crop_shifts_content_within_the_padding() -> None:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[14, 14] = 255
    data = crafted(image, 200)
    generator = torch.Generator().manual_seed(0)
    x, _ = next(data.batches(200, augment=Augment(flip=False, crop_padding=2), generator=generator))
    bright = x[:, 0] > 0
    assert torch.equal(bright.sum(dim=(1, 2)), torch.ones(200, dtype=torch.long))
    rows = bright.any(dim=2).float().argmax(dim=1) - 14
    cols = bright.any(dim=1).float().argmax(dim=1) - 14
    assert rows.abs().max() <= 2
    assert cols.abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) == 25


def test_crop_pads_with_black_after_normalising() -> None:
    data = crafted(np.zeros((28, 28), dtype=np.uint8), 32)
    generator = torch.Generator().manual_seed(0)
    x, _ = next(data.batches(32, augment=Augment(flip=True, crop_padding=4), generator=generator))
    black = (0.0 - MEAN) / STD
    assert torch.allclose(x, torch.full_like(x, black))


# --- Subsets ---------------------------------------------------------------------------


def test_subset_is_seeded_and_sized() -> None:
    data = ImageData(
        fake_split(300, 5), fake_split(100, 6), tuple("0123456789"), DataSource("flag", Path("."))
    )
    small = data.subset(train=50, test=20, seed=1)
    assert (len(small.train), len(small.test)) == (50, 20)
    again = data.subset(train=50, test=20, seed=1)
    other = data.subset(train=50, test=20, seed=2)
    np.testing.assert_array_equal(small.train.images, again.train.images)
    np.testing.assert_array_equal(small.test.labels, again.test.labels)
    assert not np.array_equal(small.train.images, other.train.images)
    whole = data.subset(train=0, test=0)
    assert (len(whole.train), len(whole.test)) == (300, 100)
    assert small.classes == data.classes
