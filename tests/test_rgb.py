"""Colour (issue 11, item 13): ``color = "rgb"`` keeps custom colour images as three
channels, through the data, the models, the model summary, ``predict`` and export.

The images are real Fashion-MNIST test images tinted into colour PNGs in tmp_path (each
class its own tint). Grey runs on the same files are unchanged: one channel, luminance.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from pane_helpers import wait_for
from PIL import Image

from engine.config import TrainConfig
from engine.data import ImageData
from engine.inference import Predictor
from engine.models import summary
from engine.runs import Run, list_runs
from tui.app import FmnistApp
from tui.cli import build_parser, config_from_args, main
from tui.screens.data import DataPane

TRAIN, TEST = 80, 20  # real test images 0..79 train, 80..99 test
QUICK = ["--epochs", "1", "--hidden-sizes", "16", "--batch-size", "32", "--device", "cpu"]
# A tint per class (R, G, B gains): colour tells the classes apart as much as shape does.
TINTS = np.array(
    [
        [1.0, 0.2, 0.2],
        [0.2, 1.0, 0.2],
        [0.2, 0.2, 1.0],
        [1.0, 1.0, 0.2],
        [0.2, 1.0, 1.0],
        [1.0, 0.2, 1.0],
        [1.0, 0.6, 0.2],
        [0.6, 0.2, 1.0],
        [0.5, 0.8, 0.3],
        [0.9, 0.9, 0.9],
    ]
)


@dataclass(frozen=True)
class ColourSet:
    root: Path
    pixels: np.ndarray  # uint8 100 x 28 x 28 x 3, as written to the PNGs

    def flags(self) -> list[str]:
        return [
            "--data",
            "custom",
            "--custom-csv",
            str(self.root / "train.csv"),
            "--custom-test-csv",
            str(self.root / "test.csv"),
            "--custom-images",
            str(self.root / "pics"),
        ]

    def file(self, i: int) -> str:
        return str(self.root / "pics" / f"{i}.png")


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601, rounded: what the decoder makes of colour under color=grayscale."""
    wide = rgb.astype(np.int64)
    return ((wide[..., 0] * 299 + wide[..., 1] * 587 + wide[..., 2] * 114 + 500) // 1000).astype(
        np.uint8
    )


def build_set(root: Path, fashion: ImageData) -> ColourSet:
    pics = root / "pics"
    pics.mkdir(parents=True)
    grey = fashion.test.images[: TRAIN + TEST].astype(np.float64)
    labels = fashion.test.labels[: TRAIN + TEST]
    pixels = np.clip(np.rint(grey[..., None] * TINTS[labels][:, None, None, :]), 0, 255)
    pixels = pixels.astype(np.uint8)
    rows = []
    for i in range(TRAIN + TEST):
        Image.fromarray(pixels[i], "RGB").save(pics / f"{i}.png")
        rows.append(f"{i}.png,{int(labels[i])}")
    (root / "train.csv").write_text("filename,label\n" + "\n".join(rows[:TRAIN]) + "\n")
    (root / "test.csv").write_text("filename,label\n" + "\n".join(rows[TRAIN:]) + "\n")
    return ColourSet(root, pixels)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private decode cache, never the user's."""
    folder = tmp_path_factory.mktemp("xdg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory, fashion: ImageData) -> ColourSet:
    return build_set(tmp_path_factory.mktemp("colour"), fashion)


def train(runs: Path, *flags: str) -> Run:
    """A one-epoch run through the CLI; returns the run."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--json", "--runs-dir", str(runs), *QUICK, *flags]) == 0
    [info] = list_runs(runs)
    return Run(info.path)


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory: pytest.TempPathFactory, colours: ColourSet, cache: Path) -> Run:
    return train(tmp_path_factory.mktemp("rgb-runs"), *colours.flags(), "--color", "rgb")


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory: pytest.TempPathFactory, colours: ColourSet, cache: Path) -> Run:
    return train(tmp_path_factory.mktemp("grey-runs"), *colours.flags())


def predict_json(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    capsys.readouterr()
    code = main(["predict", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [json.loads(line) for line in captured.out.splitlines()]


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith("fmnist-tui: error: "), lines[0]
    return lines[0]


def test_an_rgb_run_trains_a_three_channel_model(rgb_run: Run) -> None:
    config = rgb_run.config()
    assert config.color == "rgb"
    state = rgb_run.load_checkpoint("best")
    assert state["config"]["color"] == "rgb"
    # The MLP's first layer sees 3 x 28 x 28 inputs, not 28 x 28.
    assert tuple(state["model"]["linear_relu_stack.0.weight"].shape) == (16, 3 * 28 * 28)
    assert Predictor.from_run(rgb_run).channels == 3
    # The summary of its model, and of a CNN under the same policy, take 3 channels.
    named = dict(summary(config, (28, 28), 10).named_parameters)
    assert named["linear_relu_stack.0.weight"] == (16, 3 * 28 * 28)
    cnn = dataclasses.replace(config, model="cnn", conv_channels=(4,))
    assert dict(summary(cnn, (28, 28), 10).named_parameters)["features.0.weight"] == (4, 3, 3, 3)
    grey_cnn = dataclasses.replace(cnn, color="grayscale")
    assert dict(summary(grey_cnn, (28, 28), 10).named_parameters)["features.0.weight"] == (
        4,
        1,
        3,
        3,
    )


def test_predict_json_on_colour_files_matches_the_predictor(
    rgb_run: Run, colours: ColourSet, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [colours.file(TRAIN), colours.file(TRAIN + 1)]
    lines = predict_json(capsys, str(rgb_run.path), "--json", *files)
    predictor = Predictor.from_run(rgb_run)
    prediction = predictor.predict_files(files)
    assert prediction.images is not None
    # The colour is kept, pixel for pixel: N x 28 x 28 x 3.
    np.testing.assert_array_equal(prediction.images, colours.pixels[TRAIN : TRAIN + 2])
    assert prediction.notes == ()
    for line, probs, pixels in zip(lines, prediction.probabilities, prediction.images, strict=True):
        np.testing.assert_allclose(line["probabilities"], probs, atol=1e-6)
        assert line["pixels_sha256"] == hashlib.sha256(pixels.tobytes()).hexdigest()
    # Predictor.predict takes the colour array; a grey one is refused with the shape wanted.
    again = predictor.predict(colours.pixels[TRAIN : TRAIN + 2])
    np.testing.assert_allclose(again.probabilities, prediction.probabilities, atol=1e-6)
    with pytest.raises(ValueError, match="N x 28 x 28 x 3"):
        predictor.predict(luminance(colours.pixels[:2]))
    # Without files, predict classifies the run's own (colour) test split.
    own = predict_json(capsys, str(rgb_run.path), "--json")
    assert own and all(
        line["pixels_sha256"] == hashlib.sha256(colours.pixels[TRAIN + k].tobytes()).hexdigest()
        for k, line in enumerate(own)
    )


def test_export_traces_three_channels(rgb_run: Run, tmp_path: Path, colours: ColourSet) -> None:
    out = tmp_path / "export"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["export", str(rgb_run.path), "--out", str(out), "--format", "pt2"]) == 0
    info = json.loads((out / "preprocessing.json").read_text())
    assert info["input"]["shape"] == ["batch", 3, 28, 28]
    assert info["input"]["channels"] == ["R", "G", "B"]
    assert info["decode"]["color"] == "rgb"
    exported = torch.export.load(str(out / "model.pt2")).module()
    pixels = torch.from_numpy(colours.pixels[TRAIN : TRAIN + 3]).permute(0, 3, 1, 2).float()
    pixels = pixels * info["scale"]["multiply"] - info["scale"]["subtract"]
    with torch.inference_mode():
        probs = torch.softmax(exported(pixels), dim=1).numpy()
    expected = Predictor.from_run(rgb_run).predict(colours.pixels[TRAIN : TRAIN + 3])
    # The export computes in fp32; the run's own predictions in the precision it trained
    # in (bf16 where auto chose it: about 3 significant digits).
    fp32 = rgb_run.config().precision == "fp32"
    np.testing.assert_allclose(probs, expected.probabilities, atol=1e-5 if fp32 else 2e-3)


def test_grey_runs_on_the_same_files_are_unchanged(
    grey_run: Run, rgb_run: Run, colours: ColourSet, tmp_path: Path
) -> None:
    state = grey_run.load_checkpoint("best")
    assert state["config"]["color"] == "grayscale"
    assert tuple(state["model"]["linear_relu_stack.0.weight"].shape) == (16, 28 * 28)
    grey = Predictor.from_run(grey_run).predict_files([colours.file(TRAIN)])
    assert grey.images is not None
    np.testing.assert_array_equal(grey.images, luminance(colours.pixels[TRAIN : TRAIN + 1]))
    assert grey.notes == ("1 image in colour converted to grayscale",)
    with contextlib.redirect_stdout(io.StringIO()):
        grey_out = str(tmp_path / "grey")
        assert (
            main(["export", str(grey_run.path), "--out", grey_out, "--format", "state_dict"]) == 0
        )
    info = json.loads((tmp_path / "grey" / "preprocessing.json").read_text())
    assert info["input"]["shape"] == ["batch", 1, 28, 28]
    # The same files under rgb: three channels.
    colour = Predictor.from_run(rgb_run).predict_files([colours.file(TRAIN)])
    assert colour.images is not None and colour.images.shape == (1, 28, 28, 3)


def test_rgb_is_refused_for_grey_data_in_one_line(
    colours: ColourSet, tmp_path: Path, fashion: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = ["--runs-dir", str(tmp_path / "runs")]
    line = one_line_error(capsys, ["train", *runs, "--color", "rgb", *QUICK])
    assert "rgb keeps the colour of image files, and fashion-mnist data is grey" in line
    assert "use rgb with data custom or image-folder, or color grayscale" in line
    pixel_csv = tmp_path / "pixels.csv"
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    rows = [
        f"{int(fashion.test.labels[i])}," + ",".join(map(str, fashion.test.images[i].ravel()))
        for i in range(20)
    ]
    pixel_csv.write_text(header + "\n" + "\n".join(rows) + "\n")
    argv = ["check-data", "--data", "csv-pixels", "--custom-csv", str(pixel_csv), "--color", "rgb"]
    assert "csv-pixels data is grey" in one_line_error(capsys, argv)
    assert not (tmp_path / "runs").exists()


async def test_the_data_pane_shows_colour_images_as_their_luminance(
    colours: ColourSet, cache: Path, tmp_path: Path
) -> None:
    argv = [*colours.flags(), "--color", "rgb", *QUICK, "--runs-dir", str(tmp_path / "runs")]
    config = config_from_args(build_parser().parse_args(argv))
    assert isinstance(config, TrainConfig) and config.color == "rgb"
    app = FmnistApp(config=config, runs_dir=config.runs_dir)
    app.image_mode = "blocks"
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(DataPane)
        await wait_for(pilot, lambda: pane.data is not None and pane.grid.tiles, 60)
        assert pane.data is not None
        assert pane.data.channels == 3
        np.testing.assert_array_equal(pane.data.test.images, colours.pixels[TRAIN:])
        for tile in pane.grid.tiles:
            index = int(tile.label.split()[0].removeprefix("#").replace(",", ""))  # "#50 name"
            np.testing.assert_array_equal(tile.pixels, luminance(colours.pixels[index]))
