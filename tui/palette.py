"""The command palette's entries for the app: panes, training, presets, settings, data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import SystemCommand

from engine.config import PRESETS
from tui.screens.data import DataPane

if TYPE_CHECKING:
    from tui.app import FmnistApp

TRAINING = [
    ("start", "Start training", "Train with the Hyperparameters pane's settings (s)"),
    (
        "start_detached",
        "Start training detached",
        "Train in a process of its own that outlives this app and terminal (S)",
    ),
    ("pause", "Pause training", "Pause at the next batch (p)"),
    ("resume", "Resume training", "Carry on training (p)"),
    ("stop", "Stop training", "Stop at the next batch, saving a checkpoint (x)"),
]


def app_commands(app: FmnistApp) -> Iterable[SystemCommand]:
    """The app's own commands; only training actions that apply now are offered."""
    from tui.app import PANES

    for spec in PANES:
        yield SystemCommand(
            f"Show {spec.title}",
            f"Switch to the {spec.title} pane (key {spec.key})",
            lambda p=spec.id: app.action_show_pane(p),
        )
    for action, title, help_text in TRAINING:
        if app.check_action(action, ()):
            yield SystemCommand(title, help_text, getattr(app, f"action_{action}"))
    for name in PRESETS:
        yield SystemCommand(
            f"Preset: {name}", "Fill the form with this preset", lambda n=name: app.apply_preset(n)
        )
    yield SystemCommand(
        "Save settings", "Save the form to a JSON or TOML file (ctrl+s)", app.action_save_config
    )
    yield SystemCommand(
        "Load settings", "Fill the form from a JSON or TOML file (ctrl+o)", app.action_load_config
    )
    data = app.query_one(DataPane)
    for title, help_text, callback in (
        ("Data: reshuffle samples", "Draw new samples (r)", data.action_shuffle),
        ("Data: switch train/test", "Show the other split (t)", data.action_switch_split),
        ("Data: preview augmentation", "Flip and crop as training would (a)", data.action_augment),
    ):
        yield SystemCommand(title, help_text, callback)
    yield SystemCommand("Help", "Every key, by pane (?)", app.action_help)
