"""The app shows and trains on the data its config names, and Inspect reads only a run's
test split (issue 11, item 1 and "Inspect loads only the run's test split").

Every dataset here is built in tmp_path from real Fashion-MNIST test images: 60 train and
20 test images as a CSV + folder of PNGs (custom), Kaggle's pixel CSV (csv-pixels), a
folder per class (image-folder) and the four IDX files (fashion-mnist).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pane_helpers import wait_for
from PIL import Image
from textual.pilot import Pilot
from textual.widgets import Input, Select, Static

from engine.config import TrainConfig
from engine.custom import load_custom
from engine.data import ImageData, write_idx
from engine.runs import Run, list_runs
from engine.state import RunState
from tui.app import FmnistApp
from tui.cli import build_parser, config_from_args, main
from tui.screens.data import DataPane
from tui.screens.inspect import InspectPane
from tui.widgets.config_form import ConfigForm

TRAIN, TEST = 60, 20  # real test images 0..59 train, 60..79 test
QUICK = ["--epochs", "1", "--hidden-sizes", "16", "--batch-size", "32", "--device", "cpu"]
QUICK_TOML = 'epochs = 1\nhidden_sizes = [16]\nbatch_size = 32\ndevice = "cpu"\n'
TIMEOUT = 60


# --- The datasets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sets:
    """One folder holding the same 80 real images as every kind of data."""

    root: Path
    images: np.ndarray  # uint8 80 x 28 x 28
    labels: np.ndarray  # int64 80

    def flags(self, kind: str) -> list[str]:
        """The CLI flags that name the ``kind`` dataset (custom: one CSV, split 0.2)."""
        r = self.root
        return {
            "custom": ["--custom-csv", f"{r}/labels.csv", "--custom-images", f"{r}/pics"],
            "custom-test-csv": [
                *("--custom-csv", f"{r}/train.csv", "--custom-test-csv", f"{r}/test.csv"),
                *("--custom-images", f"{r}/pics"),
            ],
            "csv-pixels": [
                *("--custom-csv", f"{r}/pixels/train.csv"),
                *("--custom-test-csv", f"{r}/pixels/test.csv"),
            ],
            "image-folder": ["--custom-images", f"{r}/folders"],
            "fashion-mnist": ["--data-dir", f"{r}/idx"],
        }[kind]

    def data_flags(self, kind: str) -> list[str]:
        data = "custom" if kind.startswith("custom") else kind
        return ["--data", data, *self.flags(kind)]

    def remove_train_files(self, kind: str) -> list[Path]:
        """Delete what only the train split reads; returns what was deleted."""
        r = self.root
        if kind == "fashion-mnist":
            gone = sorted((r / "idx").glob("train-*"))
        elif kind == "custom-test-csv":
            gone = [r / "pics" / f"{i}.png" for i in range(TRAIN)]
        elif kind == "csv-pixels":
            gone = [r / "pixels" / "train.csv"]
        else:
            gone = sorted((r / "folders" / "train").glob("*/*.png"))
        for path in gone:
            path.unlink()
        return gone


def build_sets(root: Path, fashion: ImageData) -> Sets:
    images = fashion.test.images[: TRAIN + TEST]
    labels = fashion.test.labels[: TRAIN + TEST].astype(np.int64)
    pics = root / "pics"
    pics.mkdir(parents=True)
    rows = []
    for i, (image, label) in enumerate(zip(images, labels.tolist(), strict=True)):
        Image.fromarray(image).save(pics / f"{i}.png")
        rows.append(f"{i}.png,{label}")
        side = "train" if i < TRAIN else "test"
        folder = root / "folders" / side / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    (root / "labels.csv").write_text("filename,label\n" + "\n".join(rows) + "\n")
    (root / "train.csv").write_text("filename,label\n" + "\n".join(rows[:TRAIN]) + "\n")
    (root / "test.csv").write_text("filename,label\n" + "\n".join(rows[TRAIN:]) + "\n")
    (root / "pixels").mkdir()
    head = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    for name, part in (("train.csv", slice(0, TRAIN)), ("test.csv", slice(TRAIN, None))):
        body = [
            ",".join(map(str, [label, *image.reshape(-1).tolist()]))
            for image, label in zip(images[part], labels[part].tolist(), strict=True)
        ]
        (root / "pixels" / name).write_text("\n".join([head, *body]) + "\n")
    (root / "idx").mkdir()
    write_idx(root / "idx" / "train-images-idx3-ubyte.gz", images[:TRAIN])
    write_idx(root / "idx" / "train-labels-idx1-ubyte.gz", labels[:TRAIN])
    write_idx(root / "idx" / "t10k-images-idx3-ubyte.gz", images[TRAIN:])
    write_idx(root / "idx" / "t10k-labels-idx1-ubyte.gz", labels[TRAIN:])
    return Sets(root, images, labels)


@contextlib.contextmanager
def own_cache(folder: Path) -> Iterator[None]:
    """A private decode cache, never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("xdg")
    with own_cache(folder):
        yield folder


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory, fashion: ImageData) -> Sets:
    return build_sets(tmp_path_factory.mktemp("sets"), fashion)


# --- Helpers --------------------------------------------------------------------------


def app_from_argv(argv: list[str]) -> FmnistApp:
    """The app as ``fmnist-tui ARGV`` (no subcommand) builds it."""
    config = config_from_args(build_parser().parse_args(argv))
    app = FmnistApp(config=config, data_dir=config.data_dir or None, runs_dir=config.runs_dir)
    app.image_mode = "blocks"
    return app


def started_event(run: Run) -> dict[str, object]:
    """The run_started line of the run's metrics log."""
    for line in (run.path / "metrics.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "run_started":
            return dict(event)
    raise AssertionError(f"no run_started event in {run.path}/metrics.jsonl")


def only_run(runs: Path) -> Run:
    [info] = list_runs(runs)
    return Run(info.path)


def finished(runs: Path) -> bool:
    infos = list_runs(runs) if runs.is_dir() else []
    return bool(infos) and all(i.state == RunState.FINISHED for i in infos)


async def trained(pilot: Pilot[None], app: FmnistApp, runs: Path) -> None:
    """Wait until the run the app started has finished, and the app knows it."""
    await wait_for(pilot, lambda: finished(runs) and app.run_state == RunState.IDLE, TIMEOUT)
    await app.workers.wait_for_complete()
    await pilot.pause()


def text_of(app: FmnistApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def expected_test(sets: Sets, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The test images and labels a kind's data holds (custom: split 0.2 by the loader)."""
    if kind == "custom":
        data = load_custom(sets.root / "labels.csv", sets.root / "pics")
        return data.test.images, data.test.labels
    if kind == "image-folder":  # the folder per class lists files in name order: 60, 61, ...
        order = sorted(range(TRAIN, TRAIN + TEST), key=lambda i: (sets.labels[i], str(i)))
        return sets.images[order], sets.labels[order]
    return sets.images[TRAIN:], sets.labels[TRAIN:]


async def data_shown(pilot: Pilot[None], app: FmnistApp, source: Path) -> DataPane:
    """The Data pane, once it shows the data from ``source`` (or fails the test: it shows
    other data, or none)."""
    pane = app.query_one(DataPane)

    def settled() -> bool:
        return pane.data is not None or "No data" in text_of(app, "#data-source")

    await wait_for(pilot, settled, TIMEOUT)
    assert pane.data is not None, text_of(app, "#data-source")
    assert pane.data.source.path == source, (pane.data.source, source)
    return pane


# --- Item 1: the app shows and trains on the configured dataset --------------------------


async def type_into(pilot: Pilot[None], form: ConfigForm, name: str, text: str) -> None:
    """Type ``text`` into the field ``name``, key by key, and wait until the app's config
    has it."""
    form.editor(name).focus()
    await pilot.press("ctrl+u", *text)
    await wait_for(pilot, lambda: str(getattr(form.app.config, name)) == text)


async def put(pilot: Pilot[None], form: ConfigForm, **texts: str) -> None:
    """Put each text in its field at once (as a paste would: one change each; typing
    every key costs a form check each), and wait until the app's config has them."""
    for name, text in texts.items():
        editor = form.editor(name)
        if isinstance(editor, Select):
            editor.value = text
        else:
            assert isinstance(editor, Input)
            editor.value = text
    await wait_for(
        pilot, lambda: all(str(getattr(form.app.config, n)) == t for n, t in texts.items())
    )


async def test_the_app_trains_on_the_configured_dataset_and_the_form_switches_it(
    sets: Sets, cache: Path, tmp_path: Path, monkeypatch, capfd
) -> None:
    # `fmnist-tui --config c.toml`, the TOML naming a CSV + folder (the same flags on the
    # command line give the same settings): the Data pane shows that data, and `s` trains
    # on it. Then, in the form, the data becomes a pixel CSV, a folder per class and the
    # CSV + folder again (the folder typed key by key: short relative paths): the Data
    # pane follows each, a missing folder and a damaged image are said inline, and `s`
    # trains on what the form names. One app session, as a person would go.
    monkeypatch.chdir(sets.root)
    (sets.root / "cut.png").write_bytes((sets.root / "pics" / "0.png").read_bytes()[:60])
    (sets.root / "bad.csv").write_text("cut.png,0\n1.png,1\n2.png,2\n3.png,3\n4.png,4\n")
    toml = tmp_path / "c.toml"
    toml.write_text(
        f'data = "custom"\ncustom_csv = "{sets.root}/labels.csv"\n'
        f'custom_images = "{sets.root}/pics"\n{QUICK_TOML}'
    )
    runs = tmp_path / "runs"
    app = app_from_argv(["--config", str(toml), "--runs-dir", str(runs)])
    flags = [*sets.data_flags("custom"), *QUICK, "--runs-dir", str(runs)]
    assert config_from_args(build_parser().parse_args(flags)) == app.config
    images, labels = expected_test(sets, "custom")
    source = sets.root / "labels.csv"
    async with app.run_test(size=(120, 40)) as pilot:
        pane = await data_shown(pilot, app, source)
        assert pane.data is not None
        assert (len(pane.data.train), len(pane.data.test)) == (64, 16)
        np.testing.assert_array_equal(pane.data.test.images, images)
        np.testing.assert_array_equal(pane.data.test.labels, labels)
        assert str(source) in text_of(app, "#data-source")
        assert "test  16" in text_of(app, "#data-sizes")
        await pilot.press("s")
        await trained(pilot, app, runs)
        first = only_run(runs)

        await pilot.press("2")
        form = app.query_one(ConfigForm)
        await put(
            pilot,
            form,
            data="csv-pixels",
            custom_csv="pixels/train.csv",
            custom_test_csv="pixels/test.csv",
        )
        pane = await data_shown(pilot, app, Path("pixels/train.csv"))
        assert pane.data is not None
        np.testing.assert_array_equal(pane.data.test.images, sets.images[TRAIN:])
        assert "Data: 60 train and 20 test images" in text_of(app, "#hp-data")

        await put(pilot, form, data="image-folder", custom_images="folders")
        pane = await data_shown(pilot, app, Path("folders"))
        assert pane.data is not None
        images, labels = expected_test(sets, "image-folder")
        np.testing.assert_array_equal(pane.data.test.images, images)
        np.testing.assert_array_equal(pane.data.test.labels, labels)

        await put(pilot, form, data="custom", custom_test_csv="", custom_csv="labels.csv")
        await type_into(pilot, form, "custom_images", "pics")
        pane = await data_shown(pilot, app, Path("labels.csv"))
        assert pane.data is not None and (len(pane.data.train), len(pane.data.test)) == (64, 16)
        assert "Data: 64 train and 16 test images" in text_of(app, "#hp-data")

        # A folder that is not there, then a CSV naming a damaged PNG: said in the Data
        # pane and under the form; the app carries on, and takes the good settings back.
        await put(pilot, form, custom_images="nope")
        await wait_for(pilot, lambda: "No data" in text_of(app, "#data-source"))
        assert "image folder nope does not exist" in text_of(app, "#data-source")
        assert "Data: cannot load it" in text_of(app, "#hp-data")
        await put(pilot, form, custom_images="pics")
        pane = await data_shown(pilot, app, Path("labels.csv"))
        await put(pilot, form, custom_csv="bad.csv")
        await wait_for(pilot, lambda: "No data" in text_of(app, "#data-source"))
        shown = text_of(app, "#data-source")
        assert "bad.csv row 1: image 'cut.png'" in shown, shown
        assert "Traceback" not in shown and ".cpp" not in shown
        await put(pilot, form, custom_csv="labels.csv")
        await pilot.press("escape")
        pane = await data_shown(pilot, app, Path("labels.csv"))
        assert app.config.data == "custom"

        await pilot.press("s")
        await trained(pilot, app, runs)
    assert first.config().data == "custom"
    started = started_event(first)
    # 80 rows, 0.2 held out: 16 test images, from the CSV; not Fashion-MNIST's 10,000.
    assert started["test_size"] == 16 and str(source) in str(started["data_source"]), started
    [second] = [Run(info.path) for info in list_runs(runs) if info.path != first.path]
    # Typed relative to the app's folder; recorded absolutely, so the run resumes anywhere.
    recorded = second.config()
    assert (Path(recorded.custom_csv).name, Path(recorded.custom_images).name) == (
        "labels.csv",
        "pics",
    )
    assert Path(recorded.custom_csv).is_absolute() and Path(recorded.custom_csv).is_file()
    started = started_event(second)
    assert started["test_size"] == 16 and "labels.csv" in str(started["data_source"]), started
    assert capfd.readouterr().err == ""  # nothing on fd 2, where Textual draws


# --- Inspect reads only the run's test split ---------------------------------------------

INSPECTED = ("fashion-mnist", "custom-test-csv", "csv-pixels", "image-folder")


async def test_inspect_reads_only_the_runs_test_split(
    cache: Path, fashion: ImageData, tmp_path: Path
) -> None:
    # A run of each kind of data, trained through the CLI; then every file only the train
    # splits need is deleted. Inspect (in an app on other data) still shows each run's own
    # test images, loaded by the loader its training used.
    sets = build_sets(tmp_path / "data", fashion)
    runs = {kind: tmp_path / "runs" / kind for kind in INSPECTED}
    expected = {}
    for kind in INSPECTED:
        with contextlib.redirect_stdout(io.StringIO()):
            argv = ["train", "--json", "--runs-dir", str(runs[kind]), *sets.data_flags(kind)]
            assert main([*argv, *QUICK]) == 0
        expected[kind] = expected_test(sets, kind)
    for kind in INSPECTED:
        assert sets.remove_train_files(kind)

    config = TrainConfig.from_dict({"epochs": 1, "hidden_sizes": (16,), "device": "cpu"})
    app = FmnistApp(config, runs_dir=str(tmp_path / "runs"), data=fashion.subset(100, 50))
    app.image_mode = "blocks"
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("5")
        pane = app.query_one(InspectPane)
        for kind in INSPECTED:
            run = only_run(runs[kind])
            pane.choose(run.path)

            def shown(run: Run = run) -> bool:
                result = pane.result
                header = text_of(app, "#inspect-header")
                return (result is not None and result.run.path == run.path) or "Cannot" in header

            await wait_for(pilot, shown, TIMEOUT)
            assert pane.result is not None, text_of(app, "#inspect-header")
            assert pane.result.run.path == run.path, text_of(app, "#inspect-header")
            images, labels = expected[kind]
            assert pane.result.images.tobytes() == images.tobytes(), kind
            np.testing.assert_array_equal(pane.result.labels, labels)
            assert f"{len(labels)} test images" in text_of(app, "#inspect-header")
