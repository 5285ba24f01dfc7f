"""``HelpScreen``: every key of the app, by pane."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = "Look at the data, set the hyperparameters, train and watch, all by keyboard."

SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Everywhere",
        [
            ("s", "start training with the form's settings"),
            ("S", "start detached: a process that outlives the terminal"),
            ("p", "pause or resume the run"),
            ("x", "stop the run (saves a resumable checkpoint)"),
            ("?", "this help (escape closes it)"),
            ("ctrl+p", "command palette: every action by name"),
            ("q, ctrl+q", "quit (asks first while training)"),
            ("ctrl+z", "suspend (fg returns); asks first while training"),
        ],
    ),
    (
        "Data",
        [
            ("arrows", "select an image"),
            ("z, enter", "zoom the selected image"),
            ("r", "reshuffle the samples"),
            ("n, b", "next, previous page"),
            ("f, F", "filter by the next, previous class"),
            ("t", "switch between the train and test split"),
            ("a", "preview the training augmentation (flip and crop)"),
            ("c", "the dataset check's findings in full, or in one line"),
        ],
    ),
    (
        "Hyperparameters",
        [
            ("tab, shift+tab", "move between fields"),
            ("escape", "leave a field, so the keys above work again"),
            ("ctrl+t", "search this field: a range (1e-4..0.1 log) or values (64, 128)"),
            ("ctrl+s, ctrl+o", "save, load the settings and the search (JSON, or TOML)"),
        ],
    ),
    (
        "Runs",
        [
            ("enter, o", "the highlighted run's curves"),
            ("space, c", "mark runs, compare their curves"),
            ("r, R", "resume an interrupted run here, or detached"),
            ("a", "watch a run training in another process (attach)"),
            ("i", "inspect the run's predictions"),
            ("d", "delete the run (asks first; not while it trains)"),
            ("e", "export its best model (state_dict, ONNX, pt2, TorchScript) or metrics.csv"),
        ],
    ),
    (
        "Inspect",
        [
            ("n, b (→, ←)", "next, previous test image"),
            ("m", "mistakes only, or every image"),
            ("c", "confusion matrix: arrows pick a cell, enter browses it"),
            ("r", "inspect another run"),
        ],
    ),
    (
        "Search",
        [
            ("n", "start a search over the form's settings and space, in the background"),
            ("enter, o", "open the highlighted trial's run (the Monitor while it trains)"),
            ("b", "train the best configuration for the base config's epochs"),
            ("v, V", "next, previous chart: best so far, each parameter, importance"),
            ("l", "watch another study"),
            ("r", "read the study again now"),
            ("X", "stop the study's search (its trials can be carried on)"),
        ],
    ),
]

NOTES = (
    "A bad value shows the reason under its field; Start waits until it is fixed. "
    "The model summary follows the form. The Monitor shows the run's progress, "
    "charts, per-class accuracy, the confusion matrix (true class down, predicted "
    "across) and its events; runs are saved under the runs folder, and a stopped "
    "run can be resumed."
)


def help_text(panes: list[tuple[str, str]]) -> Group:
    """The help, with ``panes`` (key, title) listed first."""
    parts: list[Text | Table] = [Text("fmnist-tui", style="bold"), Text(INTRO), Text()]
    pane_keys = [(key, f"the {title} pane") for key, title in panes]
    for title, keys in SECTIONS:
        if title == "Everywhere":
            keys = pane_keys + keys
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, does in keys:
            table.add_row(key, does)
        parts += [Text(title, style="bold underline"), table, Text()]
    parts.append(Text(NOTES, style="dim"))
    return Group(*parts)


class HelpScreen(ModalScreen[None]):
    """Every key; ``panes`` are the app's panes as (key, title)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]

    def __init__(self, panes: list[tuple[str, str]]) -> None:
        super().__init__()
        self.panes = panes

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(help_text(self.panes), id="help-text")
