"""Marking fields of the Hyperparameters form for a search, by keys, at 80x24.

The pane's ``search_space()`` is what a search started from the app explores; ctrl+s saves
the marked fields as the file's ``[search]`` table and ctrl+o brings them back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pane_helpers import Notifications, shown, wait_for
from textual import events
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, Label, Static

from engine.config import TrainConfig
from engine.data import ImageData
from engine.errors import ConfigError
from engine.search_space import Choices, Range, SearchSpace, read_search_table
from tui.app import FmnistApp
from tui.screens.hyperparams import HyperparamsPane
from tui.screens.path_prompt import PathPrompt

SIZE = (80, 24)


def make_app(tmp_path: Path, data: ImageData) -> FmnistApp:
    config = TrainConfig(epochs=1, batch_size=64, device="cpu", runs_dir=str(tmp_path / "runs"))
    app = FmnistApp(config, data=data)
    app.image_mode = "blocks"
    return app


def pane(app: FmnistApp) -> HyperparamsPane:
    return app.query_one(HyperparamsPane)


def focused_id(app: FmnistApp) -> str:
    return (app.focused.id or "") if app.focused is not None else ""


def has_row(app: FmnistApp, name: str) -> bool:
    return bool(app.query(f"#search-{name}"))


def words(widget: Widget) -> str:
    """The words a ``Static`` shows, on one line."""
    assert isinstance(widget, Static)
    return " ".join(str(widget.render()).split())


def label(app: FmnistApp, name: str) -> str:
    # Without the mark of the current row (▶): the label in words, and ~ when searched.
    return shown(app.query_one(f"#label-{name}", Label)).strip().removeprefix("▶").strip()


async def open_form(pilot: Pilot) -> None:
    """The Hyperparameters pane shown, the keys in it."""
    app = pilot.app
    await pilot.press("2")
    await wait_for(
        pilot,
        lambda: (
            app.focused is not None
            and any(isinstance(a, HyperparamsPane) for a in app.focused.ancestors)
        ),
    )


async def type_in(pilot: Pilot, text: str) -> None:
    """Replace the focused input's text: ctrl+u, then ``text`` pasted (a terminal paste,
    one event: typing it a key at a time costs a redraw a key)."""
    await pilot.press("ctrl+u")
    focused = pilot.app.focused
    assert isinstance(focused, Input)
    focused.post_message(events.Paste(text))
    await wait_for(pilot, lambda: focused.value == text)


async def mark(pilot: Pilot, name: str) -> None:
    """Focus field ``name`` and press ctrl+t; wait for its search row to take the cursor."""
    pilot.app.query_one(f"#field-{name}").focus()
    await pilot.pause()
    await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: focused_id(pilot.app) == f"search-{name}")


async def save_as(pilot: Pilot, name: str) -> None:
    """ctrl+s, and the file's name typed into the prompt."""
    await pilot.press("escape", "ctrl+s")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PathPrompt))
    await type_in(pilot, name)
    await pilot.press("enter")


async def load_from(pilot: Pilot, name: str) -> None:
    """ctrl+o, and the file's name typed into the prompt."""
    await pilot.press("escape", "ctrl+o")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, PathPrompt))
    await type_in(pilot, name)
    await pilot.press("enter")
    await wait_for(pilot, lambda: not isinstance(pilot.app.screen, PathPrompt))


async def test_search_fields_marked_by_keys_saved_and_loaded(
    tmp_path: Path, small: ImageData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # paths typed short, as a person would
    monkeypatch.setenv("NO_COLOR", "1")  # the marks must read without colour
    path = tmp_path / "space.toml"
    plain = tmp_path / "plain.json"
    app = make_app(tmp_path, small)
    notes = Notifications()
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        await open_form(pilot)
        # Nothing marked: a search explores the default space, and the side says so.
        assert pane(app).search_space() == SearchSpace.default()
        assert pane(app).marked_space() is None
        side = app.query_one("#hp-search")
        assert "Search space: the default" in words(side)

        await mark(pilot, "lr")
        # The first guess is the default space's range; the mark is text, not colour.
        assert app.query_one("#search-lr", Input).value == "0.0001..0.1 log"
        assert label(app, "lr") == "Learning rate ~"
        assert shown(app.query_one("#search-row-lr .search-label", Label)).strip() == "~ search"
        assert pane(app).search_space() == SearchSpace({"lr": Range(1e-4, 0.1, log=True)})
        await wait_for(pilot, lambda: "1 field marked" in words(side))

        # A bad range: the reason under the row, and no space until it is fixed.
        await pilot.press("ctrl+u", *"0..1")  # typed, as a person would
        error = app.query_one("#search-error-lr")
        await wait_for(
            pilot, lambda: "✗ low 0 is refused; expected a number greater" in words(error)
        )
        assert pane(app).search_problems() == [
            "search lr: low 0 is refused; expected a number greater than 0 and at most 10"
        ]
        with pytest.raises(ConfigError, match="low 0 is refused"):
            pane(app).search_space()
        assert "fix the entry of lr" in words(side)

        await type_in(pilot, "1e-3..1 log")
        await wait_for(pilot, lambda: not words(error))
        assert pane(app).search_space() == SearchSpace({"lr": Range(1e-3, 1.0, log=True)})

        # A list, a choice field's every value, a list field's lists.
        await mark(pilot, "batch_size")
        assert app.query_one("#search-batch_size", Input).value == "64, 128, 256"
        await type_in(pilot, "32, 64")
        await mark(pilot, "hidden_sizes")
        assert app.query_one("#search-hidden_sizes", Input).value == "512, 512"
        await type_in(pilot, "64 | 128, 128")
        await wait_for(pilot, lambda: len(pane(app).search_space().params) == 3)
        assert pane(app).search_space() == SearchSpace(
            {
                "hidden_sizes": Choices(((64,), (128, 128))),
                "lr": Range(1e-3, 1.0, log=True),
                "batch_size": Choices((32, 64)),
            }
        )
        await wait_for(pilot, lambda: "3 fields marked" in words(side))

        # ctrl+t in a search row unmarks its field and goes back to the field.
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: not has_row(app, "hidden_sizes"))
        assert focused_id(app) == "field-hidden_sizes"
        assert label(app, "hidden_sizes") == "Hidden sizes"
        # ctrl+t on a marked field unmarks it too.
        app.query_one("#field-lr").focus()
        await pilot.pause()
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: not has_row(app, "lr"))
        assert list(pane(app).search_space().params) == ["batch_size"]

        # The form's own value is not the search's: Start trains the config as it is.
        assert app.config.batch_size == 64

        # A field that cannot be searched says why, and is not marked.
        app.query_one("#field-seed").focus()
        await pilot.pause()
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: any("seed: cannot be searched" in n for n in notes))
        assert not has_row(app, "seed") and label(app, "seed") == "Seed"
        # Off any field, ctrl+t says what to do.
        app.query_one("#config-form").focus()
        await pilot.pause()
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: any("ctrl+t marks it" in n for n in notes))
        assert list(pane(app).search_space().params) == ["batch_size"]

        # --- ctrl+s saves the marked fields as a [search] table, ctrl+o reads it back.
        await pilot.press("escape")
        wanted = SearchSpace.from_table(
            {"dropout": {"low": 0, "high": 0.3}, "optimizer": ["sgd", "adamw"]}
        )
        pane(app).load_search(wanted)
        await wait_for(pilot, lambda: has_row(app, "optimizer"))
        assert app.query_one("#search-dropout", Input).value == "0..0.3"
        await mark(pilot, "hidden_sizes")
        await type_in(pilot, "64 | 128, 128")
        wanted = SearchSpace({**wanted.params, "hidden_sizes": Choices(((64,), (128, 128)))})
        assert pane(app).search_space() == wanted

        # A bad entry stops the save, as a bad value does.
        await mark(pilot, "momentum")
        await type_in(pilot, "0.5..2")
        await pilot.press("escape", "ctrl+s")
        await wait_for(pilot, lambda: any("Fix the form's problems" in n for n in notes))
        assert not isinstance(app.screen, PathPrompt)
        app.query_one("#search-momentum").focus()
        await pilot.pause()
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: not has_row(app, "momentum"))

        await save_as(pilot, path.name)
        await wait_for(pilot, path.exists)
        assert "[search]\n" in path.read_text()
        assert read_search_table(path) == wanted
        assert TrainConfig.load(path).batch_size == 64  # training reads the settings alone

        # Loading a file without a table unmarks every field ...
        await pilot.press("escape")
        pane(app).load_search(None)
        await wait_for(pilot, lambda: not has_row(app, "dropout"))
        await save_as(pilot, plain.name)
        await wait_for(pilot, plain.exists)
        assert read_search_table(plain) is None
        # ... and loading the first file marks its fields again, with their entries.
        await load_from(pilot, path.name)
        await wait_for(pilot, lambda: has_row(app, "hidden_sizes"))
        assert pane(app).search_space() == wanted
        assert app.query_one("#search-hidden_sizes", Input).value == "64 | 128, 128"
        assert app.query_one("#search-dropout", Input).value == "0..0.3"
        assert [label(app, n) for n in ("dropout", "optimizer", "lr")] == [
            "Dropout ~",
            "Optimizer ~",
            "Learning rate",
        ]
        await load_from(pilot, plain.name)
        await wait_for(pilot, lambda: not app.query(".search-row"))
        assert pane(app).marked_space() is None

        # A file whose table is bad loads nothing and says why.
        path.write_text("[search]\nseeds = [1]\n")
        await load_from(pilot, path.name)
        await wait_for(pilot, lambda: any("did you mean 'seed'?" in n for n in notes))
        assert pane(app).marked_space() is None
