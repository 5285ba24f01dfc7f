"""The Hyperparameters form by keyboard at 80x24, with NO_COLOR: going to a field by name,
tab carrying on from the field left, marks that read without colour, settings that do not
apply, what ``s`` says about a bad field, the preset shown, the defaults key, and keys
that arrive together.

One app session walks through them all (a session costs seconds; the checks do not).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pane_helpers import Notifications, shown, wait_for
from textual import events
from textual.binding import Binding
from textual.widgets import Input, Label, Select

from engine.config import TrainConfig
from engine.data import ImageData
from tui.app import FmnistApp
from tui.last_settings import RESTORED_NOTE, settings_path
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import SECTION_BINDINGS, HelpScreen, key_display
from tui.screens.hyperparams import RESTORED_STATE, FieldFinder, HyperparamsPane
from tui.widgets.config_form import fields_matching

SIZE = (80, 24)


def focused_id(app: FmnistApp) -> str:
    return (app.focused.id or "") if app.focused is not None else ""


def label(app: FmnistApp, name: str) -> str:
    return shown(app.query_one(f"#label-{name}", Label)).strip()


def words(app: FmnistApp, selector: str) -> str:
    """The words a widget shows, on one line."""
    return " ".join(shown(app.query_one(selector)).split())


def row_unused(app: FmnistApp, name: str) -> bool:
    return app.query_one(f"#row-{name}").has_class("-unused")


def test_fields_matching_finds_keys_and_labels() -> None:
    assert fields_matching("epo")[0] == "epochs"
    assert fields_matching("learning")[0] == "lr"  # by its label, "Learning rate"
    assert fields_matching("smooth") == ["label_smoothing"]
    assert fields_matching("decay") == ["weight_decay"]
    assert fields_matching("zzz") == []


async def test_form_by_keyboard(
    tmp_path: Path, small: ImageData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    config = TrainConfig(epochs=1, batch_size=64, device="cpu", runs_dir=str(tmp_path / "runs"))
    app = FmnistApp(config, data=small, notes=[RESTORED_NOTE])
    app.image_mode = "blocks"
    notes = Notifications()
    async with app.run_test(size=SIZE, message_hook=notes) as pilot:
        pane = app.query_one(HyperparamsPane)
        # Settings restored at launch are announced, and named beside the presets.
        assert [n.severity for n in notes.shown if n.message == RESTORED_NOTE] == ["information"]
        await pilot.press("2")
        await wait_for(pilot, lambda: focused_id(app) == "config-form")
        assert shown(app.query_one("#preset-state")).strip() == RESTORED_STATE

        # / opens the finder; part of a name and enter go to that field.
        await pilot.press("slash")
        await wait_for(pilot, lambda: isinstance(app.screen, FieldFinder))
        await pilot.press("e", "p", "o", "enter")
        await wait_for(pilot, lambda: focused_id(app) == "field-epochs")
        assert label(app, "epochs") == "▶ Epochs"  # the focus mark, in text
        help_text = shown(app.query_one("#field-help"))
        assert "Epochs (epochs)" in help_text  # the label in words, the key in the help

        # Escape hands the keys to the pane; tab carries on after the field left, and
        # so it does after another pane and back; enter goes back into it.
        await pilot.press("escape")
        assert focused_id(app) == "config-form" and label(app, "epochs") == "▶ Epochs"
        await pilot.press("tab")
        assert focused_id(app) == "field-batch_size"
        await pilot.press("escape", "1", "2")
        await wait_for(pilot, lambda: focused_id(app) == "config-form")
        await pilot.press("shift+tab")
        assert focused_id(app) == "field-epochs"
        await pilot.press("escape", "enter")
        assert focused_id(app) == "field-epochs"

        # In a field / types itself: the footer names ctrl+g for going to a field.
        footer = {b.binding.key for b in app.screen.active_bindings.values() if b.binding.show}
        assert "ctrl+g" in footer and "slash" not in footer
        await pilot.press("escape")
        footer = {b.binding.key for b in app.screen.active_bindings.values() if b.binding.show}
        assert "slash" in footer and "ctrl+g" not in footer
        await pilot.press("enter")

        # A flag's state is text: it reads without colour.
        assert shown(app.query_one("#field-augment")).strip() == "[ ] off"
        app.query_one("#field-augment").focus()
        await pilot.press("space")
        assert shown(app.query_one("#field-augment")).strip() == "[x] on"
        assert label(app, "augment").startswith("▶") and not label(app, "epochs").startswith("▶")

        # Settings the others make pointless are marked, and say why when focused.
        assert row_unused(app, "momentum") and row_unused(app, "nesterov")  # adamw
        assert row_unused(app, "conv_channels")  # mlp
        assert row_unused(app, "step_size") and row_unused(app, "gamma")  # cosine
        assert not row_unused(app, "label_smoothing")
        # ... in text too (NO_COLOR): "·" where a used field has nothing.
        assert label(app, "momentum") == "· Momentum" and label(app, "loss") == "Loss"
        app.query_one("#field-momentum").focus()
        await pilot.pause()
        assert "Not used now: adamw does not use momentum" in words(app, "#field-help")
        app.query_one("#field-optimizer", Select).value = "sgd"
        app.query_one("#field-loss", Select).value = "nll"
        app.query_one("#field-schedule", Select).value = "step"
        await wait_for(pilot, lambda: not row_unused(app, "momentum"))
        assert "Not used now" not in words(app, "#field-help")  # help follows
        assert row_unused(app, "label_smoothing") and not row_unused(app, "step_size")
        assert row_unused(app, "beta1")
        assert label(app, "label_smoothing").startswith("·")
        assert not label(app, "step_size").startswith("·")

        # A bad value the model does not depend on leaves the model summary up.
        await wait_for(pilot, lambda: pane.summary_view.summary is not None)
        lr = app.query_one("#field-lr", Input)
        lr.focus()
        await pilot.press("ctrl+u")
        # Keys that arrive together (a paste, fast typing over SSH) are all kept.
        for key in "abc":
            app.post_message(events.Key(key, key))
        await wait_for(pilot, lambda: lr.value == "abc")
        await wait_for(pilot, lambda: pane.form.problems)
        await pilot.pause()
        assert pane.summary_view.summary is not None

        # s names the bad field and why, and puts the cursor there.
        await pilot.press("escape", "s")
        await wait_for(pilot, lambda: any("Cannot start" in n for n in notes))
        said = next(n for n in notes if "Cannot start" in n)
        assert "Learning rate (lr)" in said and "'abc'" in said
        assert focused_id(app) == "field-lr"

        # The preset applied stays named, until a field is changed; the model summary
        # follows the preset's model (a cnn's, then the mlp's).
        app.query_one("#field-model", Select).value = "cnn"
        await wait_for(
            pilot,
            lambda: pane.summary_view.summary is not None and "Conv2d" in shown(pane.summary_view),
        )
        cnn_parameters = pane.summary_view.summary.total_parameters
        app.query_one("#preset", Select).value = "fast"
        await wait_for(pilot, lambda: pane.form.config is not None)
        assert pane.form.config.model == "mlp"
        await wait_for(
            pilot,
            lambda: (
                pane.summary_view.summary is not None
                and pane.summary_view.summary.total_parameters != cnn_parameters
            ),
        )
        assert "Conv2d" not in shown(pane.summary_view)
        assert app.query_one("#preset", Select).value == "fast"
        assert lr.value != "abc"
        app.query_one("#field-epochs").focus()
        await pilot.pause()
        for key in ("backspace", "2"):
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await wait_for(pilot, lambda: app.query_one("#field-epochs", Input).value == "2")
        await wait_for(pilot, lambda: "fast (changed)" in shown(app.query_one("#preset-state")))
        assert app.query_one("#preset", Select).is_blank()

        # Editing keys keep their order with the characters around them when they
        # arrive in one burst (as a terminal delivers "backspace 8"), in a field and in
        # the finder.
        epochs = app.query_one("#field-epochs", Input)
        epochs.value = "67"
        await pilot.press("end")
        for key in ("backspace", "8", "backspace", "backspace", "9", "left", "1"):
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        await wait_for(pilot, lambda: epochs.value == "19")

        # The go-to box finds the preset selector too.
        await pilot.press("escape", "slash")
        await wait_for(pilot, lambda: isinstance(app.screen, FieldFinder))
        for key in ("p", "r", "e", "x", "backspace", "s"):
            app.post_message(events.Key(key, key if len(key) == 1 else None))
        finder = app.screen.query_one("#finder-input", Input)
        await wait_for(pilot, lambda: finder.value == "pres")
        await pilot.press("enter")
        await wait_for(pilot, lambda: focused_id(app) == "preset")

        # ctrl+r asks first; n keeps the form as it is, y brings back the defaults
        # (the training settings; where things are stays).
        app.query_one("#field-epochs").focus()
        await pilot.press("escape", "ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert epochs.value == "19"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: app.config.epochs == TrainConfig().epochs)
        assert app.config.runs_dir == str(tmp_path / "runs")
        assert not shown(app.query_one("#preset-state")).strip()

        # A run that starts keeps its settings for the next launch.
        assert not settings_path().exists()
        app.query_one("#field-epochs", Input).value = "1"
        await wait_for(pilot, lambda: app.config.epochs == 1)
        await pilot.press("escape", "s")
        await wait_for(pilot, settings_path().exists)
        saved = json.loads(settings_path().read_text())["settings"]
        assert saved["epochs"] == 1 and saved["runs_dir"] == str(tmp_path / "runs")

        # An edit not started as a run is kept too: the form's settings at quit.
        app.query_one("#field-dropout", Input).value = "0.2"
        await wait_for(pilot, lambda: app.config.dropout == 0.2)

        # ? lists every key the panes bind, the Monitor's v among them.
        await wait_for(pilot, lambda: app.screen is app.screen_stack[0])
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = shown(app.screen.query_one("#help-text"))
        for title, classes in SECTION_BINDINGS.items():
            section = text.split(f"\n{title}", 1)[1]
            for cls in classes:
                for binding in cls.BINDINGS:
                    assert isinstance(binding, Binding)
                    for key in binding.key.split(","):
                        assert key_display(key) in section, (title, key)
        for written in ("v ", "/, ctrl+g", "ctrl+r", "<, >", "preset"):
            assert written in text
    assert json.loads(settings_path().read_text())["settings"]["dropout"] == 0.2
