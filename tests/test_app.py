"""The app driven by keys through Textual's Pilot, on a small subset of the real data.

Each test checks what a person would see (text on screen, widget state) and what is
left on disk, never mocks. Runs are one epoch on 2,000 images.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pane_helpers import Notifications, press_now, shown, wait_for
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

from engine.config import TrainConfig
from engine.data import ImageData
from engine.runs import Run
from tui import messages
from tui.app import FmnistApp
from tui.screens.help import HelpScreen
from tui.screens.hyperparams import HyperparamsPane
from tui.screens.path_prompt import PathPrompt
from tui.screens.quit import QuitScreen
from tui.screens.zoom import ZoomScreen
from tui.widgets.charts import EpochChart, LossChart
from tui.widgets.confusion import ConfusionTable
from tui.widgets.image_grid import ImageGrid
from tui.widgets.model_summary import ModelSummaryView


def make_app(tmp_path: Path, data: ImageData, **overrides: object) -> FmnistApp:
    settings: dict[str, object] = {
        "epochs": 1,
        "batch_size": 16,
        "log_every": 5,
        "device": "cpu",
        **overrides,
    }
    app = FmnistApp(TrainConfig.from_dict(settings), runs_dir=str(tmp_path / "runs"), data=data)
    app.image_mode = "blocks"
    return app


def text_of(app: FmnistApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def the_run(tmp_path: Path) -> Run:
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 1, runs
    return Run(runs[0])


async def start_paused(pilot: Pilot) -> None:
    """Start a run and pause it at once, once torch is loaded (the model summary shows)."""
    app = pilot.app
    assert isinstance(app, FmnistApp)
    await wait_for(pilot, lambda: app.query_one(ModelSummaryView).summary is not None)
    await press_now(pilot, "s", "p")
    await wait_for(pilot, lambda: app.monitor.progress.state == "paused")


def highlighted_command(app: FmnistApp) -> str | None:
    """The command the open command palette would run on enter (its search is gathered
    in the background, a batch at a time)."""
    if not isinstance(app.screen, CommandPalette):
        return None
    option = app.screen.query_one(CommandList).highlighted_option
    return None if option is None else str(option.prompt).split("\n")[0]


async def focus_field(pilot: Pilot, name: str, *, by_keys: bool = False) -> None:
    """Put the focus on a field: by tabbing through the form, as a person would, when
    ``by_keys`` (slow: each tab redraws the form), else directly."""
    if not by_keys:
        pilot.app.query_one(f"#field-{name}", Input).focus()
        await pilot.pause()
        return
    for _ in range(60):
        if pilot.app.focused is not None and pilot.app.focused.id == f"field-{name}":
            return
        await pilot.press("tab")
    raise AssertionError(f"could not tab to {name}")


async def test_data_pane_first_and_browsing_by_keys(tmp_path: Path, small: ImageData) -> None:
    app = make_app(tmp_path, small)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.current_pane == "data"
        grid = app.query_one(ImageGrid)
        assert len(grid.tiles) >= 15  # 5x3 at 120x40
        assert "Debian dataset-fashion-mnist" in text_of(app, "#data-source")
        first = [tile.label for tile in grid.tiles]
        assert all(label.split(" ", 1)[1] in small.classes for label in first)

        await pilot.press("r")
        assert [tile.label for tile in grid.tiles] != first

        await pilot.press("n")
        assert "page 2/" in text_of(app, "#data-status")

        await pilot.press("f", "f")  # all -> T-shirt/top -> Trouser
        assert {tile.label.split(" ", 1)[1] for tile in grid.tiles} == {"Trouser"}
        assert "Trouser" in text_of(app, "#data-status")

        plain = [tile.pixels.copy() for tile in grid.tiles]
        await pilot.press("a")
        assert "augmentation on" in text_of(app, "#data-status")
        assert any((a != b.pixels).any() for a, b in zip(plain, grid.tiles, strict=True))

        await pilot.press("t")  # the test split is never augmented: the preview goes off
        assert text_of(app, "#data-status").startswith("test")
        assert "never augmented" in text_of(app, "#data-status")
        numbers = [int(t.label.split()[0][1:].replace(",", "")) for t in grid.tiles]
        assert all(n < len(small.test) for n in numbers)

        await pilot.press("right", "z")
        assert isinstance(app.screen, ZoomScreen)
        assert app.screen.label == "Trouser"
        await pilot.press("escape")
        assert not isinstance(app.screen, ZoomScreen)

        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("3")
        assert app.current_pane == "monitor"
        await pilot.press("1")
        assert app.current_pane == "data"


async def test_bad_value_blocks_start_then_a_run_trains_and_lands_on_disk(
    tmp_path: Path, fashion: ImageData
) -> None:
    # 20,000 images: an epoch of 1,250 batches outlasts the resume-then-pause below even
    # when a loaded machine delays the key presses.
    data = fashion.subset(20000, 500, seed=0)
    seen: list[type] = []
    app = make_app(tmp_path, data)
    async with app.run_test(size=(120, 40), message_hook=lambda m: seen.append(type(m))) as pilot:
        await pilot.press("2")
        assert app.current_pane == "hyperparams"
        await wait_for(pilot, lambda: "401,920" in shown(app.query_one(ModelSummaryView)))

        await focus_field(pilot, "lr", by_keys=True)
        await pilot.press("minus", "1")
        reason = text_of(app, "#error-lr")
        assert "got -1" in reason and "greater than 0" in reason
        assert app.query_one("#start", Button).disabled
        await pilot.press("escape", "s")  # Start is unavailable: nothing happens
        assert app.run_state == "idle" and app.current_pane == "hyperparams"
        assert not (tmp_path / "runs").exists()

        await focus_field(pilot, "lr")
        await pilot.press("ctrl+u", *"0.002")
        assert text_of(app, "#error-lr") == ""
        assert not app.query_one("#start", Button).disabled
        assert app.config.lr == 0.002

        # The model summary follows the form.
        await focus_field(pilot, "hidden_sizes")
        await pilot.press("ctrl+u", *"64")
        await wait_for(pilot, lambda: "50,890" in shown(app.query_one(ModelSummaryView)))

        loss_chart, epoch_chart = app.query_one(LossChart), app.query_one(EpochChart)
        blank_chart = shown(loss_chart)
        await pilot.press("escape")
        await start_paused(pilot)  # start, and pause before the first batch
        assert app.current_pane == "monitor" and app.run_state == "paused"
        await wait_for(pilot, lambda: "Paused" in shown(app.query_one("#event-log")), 2)

        await press_now(pilot, "p")  # resume...
        await wait_for(pilot, lambda: loss_chart.losses)
        await press_now(pilot, "p")  # ...and pause again, mid-epoch
        await wait_for(pilot, lambda: app.monitor.progress.state == "paused")
        assert 0 < app.monitor.progress.batch_done < app.monitor.progress.batches
        assert app.monitor.stats.samples_per_second > 0
        assert "samples/s" in shown(app.monitor.stats)
        await wait_for(pilot, lambda: shown(loss_chart) != blank_chart)  # its next redraw

        await press_now(pilot, "p")  # resume to the end of the epoch
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert messages.BatchProgress in seen and messages.EpochFinished in seen
        assert app.monitor.progress.state == "finished"
        assert len(loss_chart.losses) >= 2 and len(epoch_chart.epochs) == 1
        confusion = app.query_one(ConfusionTable)
        assert sum(map(sum, confusion.matrix)) == len(data.test)

    run = the_run(tmp_path)
    assert run.read_status()["state"] == "finished"
    assert run.config().lr == 0.002 and run.config().hidden_sizes == (64,)
    assert len(run.read_metrics().epochs) == 1
    assert run.best_path.exists()


async def test_stop_mid_run_saves_a_resumable_checkpoint(tmp_path: Path, small: ImageData) -> None:
    app = make_app(tmp_path, small)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_paused(pilot)
        await pilot.press("x")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.run_state == "idle"
        assert app.monitor.progress.state == "stopped"
        assert app.check_action("start", ()) is True  # ready for another run
    run = the_run(tmp_path)
    assert run.read_status()["state"] == "interrupted"
    assert run.has_checkpoint()
    state = run.load_checkpoint("last")
    assert state["epoch"] == 0 and 0 <= state["batch"] < len(small.train) // 16  # mid-epoch


async def test_quit_mid_run_asks_then_stops_and_saves(tmp_path: Path, small: ImageData) -> None:
    app = make_app(tmp_path, small)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_paused(pilot)
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("k")  # keep training
        assert not isinstance(app.screen, QuitScreen) and app.run_state == "paused"
        await pilot.press("q", "s")  # stop and quit
        await wait_for(pilot, lambda: not app.is_running)
        # It quit by itself, cleanly, and only once the run was saved: at that moment
        # the run's status and checkpoint are already on disk.
        assert app.return_code == 0
        run = the_run(tmp_path)
        status = run.read_status()
        assert status == status | {"state": "interrupted", "reason": "quit"}
        assert run.has_checkpoint()


async def test_sighup_stops_and_saves_without_asking(tmp_path: Path, small: ImageData) -> None:
    app = make_app(tmp_path, small)
    async with app.run_test(size=(80, 24)) as pilot:
        await start_paused(pilot)
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(pilot, lambda: not app.is_running)
    run = the_run(tmp_path)
    assert run.read_status()["state"] == "interrupted"
    assert run.has_checkpoint()


async def test_engine_failure_is_a_notification_and_a_failed_run(
    tmp_path: Path, small: ImageData
) -> None:
    # SGD at a learning rate of 9 diverges within the first epoch in fp32: the engine
    # stops with a TrainingError naming the cause. (Under bf16, which auto picks on a CPU
    # with native bf16, the loss can stay finite.)
    app = make_app(
        tmp_path,
        small,
        optimizer="sgd",
        lr=9.0,
        momentum=0.9,
        normalize=False,
        schedule="none",
        precision="fp32",
    )
    notes = Notifications()
    async with app.run_test(size=(120, 40), message_hook=notes) as pilot:
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        assert app.monitor.progress.state == "failed"
        assert any("lower the learning rate" in n for n in notes), list(notes)
        assert app.run_state == "idle"
    status = json.loads(the_run(tmp_path).status_path.read_text())
    assert status["state"] == "failed" and "nan" in status["reason"]


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_sizes_show_as_many_samples_as_fit(
    tmp_path: Path, small: ImageData, size: tuple[int, int]
) -> None:
    app = make_app(tmp_path, small)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        grid = app.query_one(ImageGrid)
        if size == (80, 24):
            assert len(grid.tiles) == 6
        else:
            assert grid.columns >= 3 and grid.rows >= 3
            assert len(grid.tiles) == grid.capacity


async def test_attach_watches_and_stops_a_run_training_in_another_process(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    code = (
        "from engine.config import TrainConfig; from engine.data import load_fashion_mnist; "
        "from engine.trainer import Trainer; "
        "data = load_fashion_mnist(download=False).subset(2000, 200); "
        f"Trainer(TrainConfig(epochs=500, batch_size=32, device='cpu', runs_dir={str(runs)!r}),"
        " data=data).fit()"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        # The folder is made first, its config.json written into it after.
        while not (runs.exists() and any((p / "config.json").exists() for p in runs.iterdir())):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        run = the_run(tmp_path)
        app = FmnistApp(run.config(), runs_dir=str(runs), attach=run.path)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.monitor.progress.state == "running", 60)
            assert app.current_pane == "monitor"
            await wait_for(pilot, lambda: app.query_one(EpochChart).epochs, 60)
            # One run at a time; while attached, the footer shows only keys acting on it.
            assert app.check_action("start", ()) is False
            await press_now(pilot, "p")
            await wait_for(pilot, lambda: app.monitor.progress.state == "paused", 60)
            await press_now(pilot, "x")
            await wait_for(pilot, lambda: app.run_state == "idle", 60)
            assert app.monitor.progress.state == "stopped"
        assert process.wait(timeout=60) == 0
        assert run.read_status()["state"] == "interrupted" and run.has_checkpoint()
    finally:
        if process.poll() is None:
            process.kill()


async def test_command_palette_reaches_panes_and_presets(tmp_path: Path, small: ImageData) -> None:
    app = make_app(tmp_path, small)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+p", *"Show Monitor")
        await wait_for(pilot, lambda: highlighted_command(app) == "Show Monitor")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_pane == "monitor")
        await pilot.press("ctrl+p", *"Preset: tutorial")
        await wait_for(pilot, lambda: highlighted_command(app) == "Preset: tutorial")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.config.optimizer == "sgd")
        assert (app.config.lr, app.config.batch_size, app.config.epochs) == (1e-3, 64, 5)
        assert app.config.runs_dir == str(tmp_path / "runs")  # where to train is kept


async def test_save_and_load_settings_by_keys(
    tmp_path: Path, small: ImageData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Paths typed relative to the working folder, as a person would: short to type.
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "settings.toml"
    app = make_app(tmp_path, small)
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("2")
        await wait_for(
            pilot,
            lambda: (
                app.focused is not None
                and any(isinstance(a, HyperparamsPane) for a in app.focused.ancestors)
            ),
        )
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PathPrompt) or app.config_problems)
        assert not app.config_problems, app.config_problems
        await pilot.press("ctrl+u", *path.name, "enter")
        await wait_for(pilot, path.exists)
        assert TrainConfig.load(path).batch_size == 16

        await focus_field(pilot, "batch_size")
        await pilot.press("ctrl+u", "3", "2", "escape")
        assert app.config.batch_size == 32
        await pilot.press("ctrl+o", "ctrl+u", *path.name, "enter")
        assert app.config.batch_size == 16
        assert app.query_one("#field-batch_size", Input).value == "16"

        await pilot.press("ctrl+o", "ctrl+u", *"missing.toml", "enter")
        assert any("cannot read" in n for n in notes)
        assert app.config.batch_size == 16
