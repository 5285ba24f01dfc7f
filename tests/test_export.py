"""Exports: every format round-trips to the checkpoint's predictions (batch 1 and 1000),
preprocessing.json rebuilds the engine's input with numpy and Pillow alone, the CSV
tables read back, a missing [export] extra is refused, and the Runs pane's dialog.

One run is trained once per module on 2,000 real training images (1,000 test images),
with flip test-time augmentation so the exported graphs must carry it. No test here
skips: a missing onnx, onnxscript or onnxruntime fails it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pane_helpers import Notifications, make_app, wait_for

from engine.config import TrainConfig
from engine.data import ImageData, model_input
from engine.export import FILE_NAMES, export_model, preprocessing_info
from engine.inference import Predictor
from engine.models import build_model
from engine.runs import Run
from tui.cli import main
from tui.screens.export import ExportScreen
from tui.widgets.runs_table import RunsTable

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data(fashion: ImageData) -> ImageData:
    return fashion.subset(2000, 1000, seed=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data: ImageData) -> Run:
    from engine.trainer import Trainer

    config = TrainConfig(
        epochs=2,
        batch_size=64,
        hidden_sizes=(64,),
        tta=True,
        precision="fp32",  # the ONNX probabilities are held to fp32's 1e-4
        device="cpu",
        runs_dir=str(tmp_path_factory.mktemp("export") / "runs"),
    )
    return Run(Trainer(config, data=data).fit().run_dir)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_every_format_round_trips_at_batch_1_and_1000(
    run: Run, data: ImageData, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import onnxruntime

    out = tmp_path / "out"
    argv = ["export", str(run.path), "--out", str(out), "--format", "onnx,pt2"]
    assert main([*argv, "--format", "torchscript,state_dict"]) == 0
    printed = capfd.readouterr()
    names = [*FILE_NAMES.values(), "preprocessing.json"]
    # Only our lines: the exporters' progress and warnings are kept quiet.
    assert (printed.out, printed.err) == ("".join(f"{out / n}\n" for n in names), "")
    info = json.loads((out / "preprocessing.json").read_text())
    assert info["files"] == FILE_NAMES
    assert info["input"]["shape"] == ["batch", 1, 28, 28]
    assert (info["output"]["name"], info["classes"]) == ("logits", list(data.classes))

    images = data.test.images[:1000]
    expected = Predictor.from_run(run).predict(images)
    assert len(set(expected.classes.tolist())) > 5  # a trained model, not a constant
    x = model_input(torch.as_tensor(images), normalize=True)

    session = onnxruntime.InferenceSession(
        str(out / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    program = torch.export.load(str(out / "model.pt2")).module()
    scripted = torch.jit.load(str(out / "model.torchscript.pt"))
    model = build_model(run.config(), (28, 28), 10)
    model.load_state_dict(torch.load(out / "model_state_dict.pt", weights_only=True))
    model.eval()

    def state_dict_model(batch: torch.Tensor) -> torch.Tensor:
        # The state dict is the bare network: the flip TTA is the caller's, as
        # preprocessing.json says.
        assert info["test_time_augmentation"]
        return (model(batch) + model(batch.flip(-1))) / 2

    for n in (1, 1000):
        batch = x[:n]
        with torch.inference_mode():
            outputs = {
                "onnx": session.run(["logits"], {"images": batch.numpy()})[0],
                "pt2": program(batch).numpy(),
                "torchscript": scripted(batch).numpy(),
                "state_dict": state_dict_model(batch).numpy(),
            }
        for fmt, logits in outputs.items():
            assert logits.shape == (n, 10), fmt
            probabilities = softmax(logits.astype(np.float64))
            assert np.array_equal(probabilities.argmax(1), expected.classes[:n]), (fmt, n)
            np.testing.assert_allclose(
                probabilities, expected.probabilities[:n], rtol=0, atol=1e-4, err_msg=fmt
            )


# --- preprocessing.json, rebuilt with numpy and Pillow alone ---------------------------


def rebuild_input(path: Path, info: dict[str, Any]) -> np.ndarray:
    """The model's float32 1 x C x H x W input for the image file at ``path``, made by
    following ``info`` (a preprocessing.json) with numpy and Pillow: no engine code."""
    from PIL import Image, ImageOps

    decode, scale = info["decode"], info["scale"]
    image = ImageOps.exif_transpose(Image.open(path))  # a copy when there is no orientation
    rgb = grey = alpha = None
    mode = image.mode
    if mode.startswith("I"):
        grey = (np.clip(np.asarray(image).astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
    else:
        if "transparency" in image.info and mode in ("P", "RGB"):
            image = image.convert("RGBA")
        elif "transparency" in image.info and mode in ("L", "1"):
            image = image.convert("LA")
        if image.mode in ("1", "L"):
            grey = np.asarray(image.convert("L"))
        elif image.mode in ("LA", "La"):
            la = np.asarray(image.convert("LA"))
            grey, alpha = la[..., 0], la[..., 1]
        elif image.mode in ("RGBA", "RGBa", "PA"):
            rgba = np.asarray(image.convert("RGBA"))
            rgb, alpha = rgba[..., :3], rgba[..., 3]
        else:
            rgb = np.asarray(image.convert("RGB"))
    pixels = rgb if rgb is not None else grey
    assert pixels is not None
    if alpha is not None and alpha.min() < 255:
        rule = decode["alpha"]
        if rule == "auto":
            flat = pixels.reshape(len(alpha.ravel()), -1)
            silhouette = (flat == flat[0]).all() and alpha.max() != alpha.min()
            rule = "alpha-as-grey" if silhouette else "over-black"
        a = alpha.astype(np.int32)[..., None] if pixels.ndim == 3 else alpha.astype(np.int32)
        if rule == "alpha-as-grey":
            pixels = alpha
        elif rule == "over-black":
            pixels = ((pixels.astype(np.int32) * a + 127) // 255).astype(np.uint8)
        elif rule == "over-white":
            c = pixels.astype(np.int32) * a + 255 * (255 - a)
            pixels = ((c + 127) // 255).astype(np.uint8)
    if pixels.ndim == 3:
        r, g, b = (pixels[..., k].astype(np.int32) for k in range(3))
        if decode["color"] == "rgb":
            pass
        elif (r == g).all() and (g == b).all():
            pixels = pixels[..., 0]
        else:
            pixels = ((299 * r + 587 * g + 114 * b + 500) // 1000).astype(np.uint8)
    elif decode["color"] == "rgb":
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    height, width = decode["size"]
    if pixels.shape[:2] != (height, width):
        if decode["resize"] == "resize":
            resized = Image.fromarray(pixels).resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(resized)
        else:  # pad: centred on black, cropped
            canvas = np.zeros((height, width, *pixels.shape[2:]), dtype=np.uint8)
            h, w = pixels.shape[:2]
            sy, dy = max(0, (h - height) // 2), max(0, (height - h) // 2)
            sx, dx = max(0, (w - width) // 2), max(0, (width - w) // 2)
            ch, cw = min(h, height), min(w, width)
            canvas[dy : dy + ch, dx : dx + cw] = pixels[sy : sy + ch, sx : sx + cw]
            pixels = canvas
    chw = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    x = chw[None].astype(np.float32) * np.float32(scale["multiply"])
    return x - np.float32(scale["subtract"])


def image_files(folder: Path) -> list[Path]:
    """Files that take each branch of the decode: alpha composited and as grey, colour,
    16-bit, a palette with transparency, EXIF rotation, other sizes."""
    from PIL import Image

    rng = np.random.default_rng(3)
    folder.mkdir()
    paths = []

    def save(name: str, image: Image.Image, **options: Any) -> None:
        paths.append(folder / name)
        image.save(paths[-1], **options)

    rgba = rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)
    save("colour-alpha.png", Image.fromarray(rgba, "RGBA"))
    silhouette = np.zeros((28, 28, 4), dtype=np.uint8)
    silhouette[..., :3] = 90
    silhouette[..., 3] = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    save("silhouette.png", Image.fromarray(silhouette, "RGBA"))
    wide = rng.integers(0, 65536, (28, 28), dtype=np.uint16)
    save("sixteen.png", Image.fromarray(wide))
    palette = Image.fromarray(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)).quantize(16)
    save("palette.gif", palette, transparency=3)
    rotated = Image.fromarray(rng.integers(0, 256, (20, 36, 3), dtype=np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    save("rotated.jpg", rotated, exif=exif)
    save("grey-big.png", Image.fromarray(rng.integers(0, 256, (50, 33), dtype=np.uint8)))
    grey_alpha = rng.integers(0, 256, (28, 28, 2), dtype=np.uint8)
    save("grey-alpha.png", Image.fromarray(grey_alpha, "LA"))
    return paths


def test_preprocessing_json_rebuilds_the_engines_input_exactly(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "out"
    export_model(run, out_dir=out, formats=["state_dict"])
    paths = image_files(tmp_path / "images")
    own = Predictor.from_run(run)
    # The run's own policies (grayscale, auto, resize, normalised), from the file; then
    # colour kept, composited over white, padded, not normalised; and over black, resized.
    cases = [(own, json.loads((out / "preprocessing.json").read_text()))]
    for settings in (
        {"color": "rgb", "alpha": "over-white", "resize": "pad", "normalize": False},
        {"alpha": "over-black", "image_size": 20},
        {"alpha": "ignore", "resize": "pad", "image_size": 32},
    ):
        config = TrainConfig(data="image-folder", custom_images="x", **settings)  # type: ignore[arg-type]
        shape = (config.image_size, config.image_size)
        model = build_model(config, shape, 3)
        predictor = Predictor(model, config, ("a", "b", "c"), torch.device("cpu"), shape)
        cases.append((predictor, json.loads(json.dumps(preprocessing_info(predictor, "x")))))
    for predictor, info in cases:
        images, _notes = predictor.decode_files(paths)
        engine_input = model_input(torch.as_tensor(images), predictor.config.normalize).numpy()
        assert engine_input.shape[1:] == tuple(info["input"]["shape"][1:])
        for k, path in enumerate(paths):
            rebuilt = rebuild_input(path, info)
            assert rebuilt.dtype == np.float32 == engine_input.dtype
            assert np.array_equal(rebuilt[0], engine_input[k]), (path.name, info["decode"])


# --- one export in a folder at a time -----------------------------------------------------


def test_an_export_replaces_the_models_of_the_previous_one(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["export", str(run.path), "--out", str(out)]
    assert main([*argv, "--format", "state_dict,torchscript"]) == 0
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*argv, "--which", "last", "--format", "pt2", "--metrics", "csv"]) == 0
    printed = capsys.readouterr()
    names = ["model.pt2", "preprocessing.json", "metrics.csv"]
    assert printed.out == "".join(f"{out / n}\n" for n in names)
    assert printed.err == (
        f"note: removed model_state_dict.pt, model.torchscript.pt of an earlier export from {out}\n"
    )
    # Only our own model names go; every model file left is the one preprocessing.json names.
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "notes.txt"])
    info = json.loads((out / "preprocessing.json").read_text())
    assert (info["files"], info["checkpoint"]) == ({"pt2": "model.pt2"}, "last")
    # The metrics alone leave the model files as they are.
    (out / "metrics.csv").unlink()
    assert main([*argv, "--metrics", "csv"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "notes.txt"])


def test_a_run_stopped_before_its_first_batch_is_refused_and_one_in_epoch_1_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.events import BatchEnd
    from engine.trainer import Trainer
    from helpers import cfg, synthetic

    data = synthetic(256, 64)
    untrained = Trainer(cfg(tmp_path, name="untrained"), data=data)
    untrained.stop()  # stopped before the first batch: last.pt at epoch 0, batch 0
    first = Run(untrained.fit().run_dir)
    assert main(["export", str(first.path), "--format", "state_dict"]) == 2
    assert capsys.readouterr().err == (
        f"fmnist-tui: error: run {first.id} has not trained yet (its only checkpoint is "
        f"from before the first batch); resume it first: fmnist-tui train --resume {first.id}\n"
    )
    assert not (first.path / "export").exists()

    some = Trainer(cfg(tmp_path, name="some"), data=data)
    some.add_listener(lambda e: isinstance(e, BatchEnd) and e.batch == 4 and some.stop())
    second = Run(some.fit().run_dir)
    assert main(["export", str(second.path), "--format", "state_dict"]) == 0
    printed = capsys.readouterr()
    folder = second.path / "export"
    assert printed.out == f"{folder / 'model_state_dict.pt'}\n{folder / 'preprocessing.json'}\n"
    assert printed.err == "note: best.pt is missing; using last.pt (epoch 0, batch 4)\n"


# --- CSV ---------------------------------------------------------------------------------


def test_metrics_csv_alone_and_the_runs_table_as_csv(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["export", str(run.path), "--metrics", "csv", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"{out / 'metrics.csv'}\n"
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv"]
    with (out / "metrics.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = reader.fieldnames
    assert header is not None
    assert header[:10] == [
        "epoch",
        "epochs",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
        "lr",
        "epoch_seconds",
    ]
    assert header[-1] == "time"
    assert "per_class_accuracy" not in header and "confusion_matrix" not in header
    epochs = run.read_metrics().epochs
    assert [int(r["epoch"]) for r in rows] == [e.epoch for e in epochs] == [1, 2]
    for row, event in zip(rows, epochs, strict=True):
        for name in ("train_loss", "val_accuracy", "test_accuracy", "lr", "epoch_seconds"):
            assert float(row[name]) == getattr(event, name), name
    # Booleans as JSON writes them (and the config's values), not Python's True/False.
    assert [r["is_best"] for r in rows] == [str(e.is_best).lower() for e in epochs]

    # runs --csv: the runs --json figures, one row each, config fields as columns.
    runs_dir = run.path.parent
    empty = Run.create(TrainConfig(epochs=3, runs_dir=str(runs_dir), name="empty"))
    try:
        assert main(["runs", "--json", "--runs-dir", str(runs_dir)]) == 0
        listed = {r["id"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
        assert main(["runs", "--csv", "--runs-dir", str(runs_dir)]) == 0
        table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    finally:
        empty.delete()
    assert sorted(r["id"] for r in table) == sorted(listed) == sorted([run.id, empty.id])
    for row in table:
        record = listed[row["id"]]
        assert row["state"] == record["state"]
        assert int(row["epochs"]) == record["epochs"]
        best = record["best_accuracy"]
        assert row["best_accuracy"] == ("" if best is None else repr(best))
        assert row["config.lr"] == repr(record["config"]["lr"])
        assert json.loads(row["config.hidden_sizes"]) == record["config"]["hidden_sizes"]
    own = table[[r["id"] for r in table].index(run.id)]
    assert (own["resumable"], own["config.tta"], own["config.normalize"]) == ("true",) * 3
    assert own["config.augment"] == "false"


# --- refusals -----------------------------------------------------------------------------


def test_onnx_without_the_export_extra_exits_2_with_the_pip_command(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A Python whose onnxscript cannot be imported (sys.modules[name] = None is Python's
    # own way to hide a module), through the public CLI.
    hide = "import sys; sys.modules['onnxscript'] = None; from tui.cli import main; "
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            hide + "sys.exit(main(sys.argv[1:]))",
            *("export", str(run.path), "--format", "pt2,onnx", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, ""), done
    assert done.stderr == (
        "fmnist-tui: error: --format onnx needs onnxscript (the [export] extra), not "
        "installed here: pip install 'fmnist-tui[export]'\n"
    )
    assert not out.exists()

    assert main(["export", str(run.path), "--format", "onnx,tflite", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (
        "fmnist-tui: error: unknown export format 'tflite': choose from state_dict, onnx, "
        "pt2, torchscript (several comma-separated, e.g. --format onnx,pt2)\n"
    )
    for given in ("onnx,,pt2", "", "pt2,"):
        assert main(["export", str(run.path), "--format", given, "--out", str(out)]) == 2
        assert capsys.readouterr().err == (
            f"fmnist-tui: error: --format: an empty name in {given!r}; give state_dict, "
            "onnx, pt2 or torchscript\n"
        )
    assert not out.exists()

    # --out naming a file, or a folder inside one: said before the model loads.
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for given, what in ((afile, "is a file"), (afile / "sub", f"is inside {afile}, a file")):
        assert main(["export", str(run.path), "--out", str(given)]) == 2
        assert capsys.readouterr().err == (
            f"fmnist-tui: error: --out {given} {what}; give a folder (it is made if missing)\n"
        )
    assert afile.read_text() == "mine"


# --- the Runs pane ------------------------------------------------------------------------


async def test_runs_pane_export_dialog_offers_the_formats(
    run: Run, data: ImageData, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = run.path / "export"
    # An earlier export there: the dialog's export replaces it.
    assert main(["export", str(run.path), "--format", "torchscript"]) == 0
    app = make_app(run.path.parent, data)
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        # escape: nothing is exported.
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, ExportScreen)

        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, ExportScreen)
        choice = dialog.choice()
        assert (choice.formats, choice.metrics) == (("state_dict", "onnx"), False)
        # Each line says whether it is ticked in its text, not only in its colour.
        listed = dialog.query_one("#export-choices")

        def lines() -> list[str]:
            return [listed.render_line(y).text for y in range(5)]

        marks = ["[x] state_dict", "[x] onnx", "[ ] pt2", "[ ] torchscript", "[ ] metrics"]
        assert [line[:4] + line[4:].split()[0] for line in lines()] == marks
        # Without onnxscript the dialog says why, with the pip command, and stays.
        with monkeypatch.context() as hidden:
            hidden.setitem(sys.modules, "onnxscript", None)
            await pilot.press("enter")
        problem = str(dialog.query_one("#export-problem").render())
        assert "pip install 'fmnist-tui[export]'" in problem
        assert app.screen is dialog
        # Untick onnx, tick pt2 and the metrics, export.
        await pilot.press("down", "space", "down", "space", "down", "down", "space")
        choice = dialog.choice()
        assert (choice.formats, choice.metrics) == (("state_dict", "pt2"), True)
        marks = [line[:4] for line in lines()]
        assert marks == ["[x] ", "[ ] ", "[x] ", "[ ] ", "[x] "]
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(f"to {folder}" in n for n in notes))
    files = "model_state_dict.pt, model.pt2, preprocessing.json, metrics.csv"
    assert (
        f"Exported run {run.id}'s best model to {folder}: {files}; "
        f"removed model.torchscript.pt of an earlier export from {folder}"
    ) in list(notes)
    assert sorted(p.name for p in folder.iterdir()) == sorted(files.split(", "))


async def test_runs_pane_says_at_once_why_a_run_of_your_own_model_cannot_export(
    run: Run, data: ImageData, tmp_path: Path
) -> None:
    import shutil

    # A run whose config.json names a factory of the user's code (never imported here).
    runs = tmp_path / "runs"
    own = runs / run.id
    shutil.copytree(run.path, own, ignore=shutil.ignore_patterns("export"))
    config = json.loads((own / "config.json").read_text())
    reference = f"{tmp_path / 'nets.py'}:factory"
    (own / "config.json").write_text(json.dumps({**config, "model": reference}))
    app = make_app(runs, data)
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        await pilot.press("e")
        await wait_for(pilot, lambda: any("your code" in n for n in notes))
        assert not isinstance(app.screen, ExportScreen)
        assert list(notes) == [
            f"Run {run.id} trains a model from your code ({reference}); to export it, "
            f"start the app with fmnist-tui --model {reference}"
        ]
        # Given that factory (fmnist-tui --model REF), the dialog opens.
        app.model_factory = reference
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("escape")
