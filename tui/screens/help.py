"""``HelpScreen``: every key of the app, by pane.

Each pane's section is written out below (``SECTIONS``), and completed from the pane's
own ``BINDINGS`` (``SECTION_BINDINGS``): a key bound there but not described here is
listed with its binding's description, so the help cannot miss a key."""

from __future__ import annotations

import re
from typing import ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.screens.data import DataPane
from tui.screens.hyperparams import HyperparamsPane
from tui.screens.inspect import InspectPane
from tui.screens.monitor import MonitorPane
from tui.screens.runs import RunsPane
from tui.screens.search import SearchPane
from tui.widgets.config_form import ConfigForm

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
            ("n, b (pgdn, pgup)", "next, previous page"),
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
            ("enter", "back into the field left (tab and shift+tab carry on from it)"),
            ("/, ctrl+g", 'go to a field by part of its name; "preset": the presets'),
            ("ctrl+t", "search this field: a range (1e-4..0.1 log) or values (64, 128)"),
            ("ctrl+s, ctrl+o", "save, load the settings and the search (JSON, or TOML)"),
            ("ctrl+r", "every training setting back to its default (asks first)"),
        ],
    ),
    (
        "Monitor",
        [
            ("v", "the lower area's next view: confusion matrix, per-class, log, learning rate"),
            ("g", "GPUs (where NVML sees any): a short item each, or a line each with processes"),
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
            ("<, >", "sort by the previous, next column"),
            ("-", "reverse the sort"),
            ("/", "filter by words, or state:NAME"),
        ],
    ),
    (
        "Inspect",
        [
            ("n, b (→, ←)", "next, previous test image"),
            ("m", "mistakes only, or every image"),
            ("o", "dataset order, or the most confident answers first"),
            ("g", "the mistakes as a grid of thumbnails (enter opens one); again: back"),
            ("c", "confusion matrix: arrows pick a cell, enter browses it"),
            ("r", "inspect another run"),
            ("escape", "back from the grid or the matrix"),
        ],
    ),
    (
        "Search",
        [
            ("n", "start a search over the form's settings and space, in the background"),
            ("enter, o", "open the highlighted trial's run (the Monitor while it trains)"),
            ("b", "train the best configuration for the epochs you give (it asks)"),
            ("v, V", "next, previous chart: best so far, each parameter, importance"),
            ("l", "watch another study"),
            ("r", "read the study again now"),
            ("X", "stop the study's search (its trials can be carried on)"),
        ],
    ),
]

# The classes whose BINDINGS each section covers.
SECTION_BINDINGS: dict[str, tuple[type[DOMNode], ...]] = {
    "Data": (DataPane,),
    "Hyperparameters": (HyperparamsPane, ConfigForm),
    "Monitor": (MonitorPane,),
    "Runs": (RunsPane,),
    "Inspect": (InspectPane,),
    "Search": (SearchPane,),
}

# Textual's key names, as the help writes them.
KEY_DISPLAY = {
    "slash": "/",
    "question_mark": "?",
    "greater_than_sign": ">",
    "less_than_sign": "<",
    "minus": "-",
    "right": "→",
    "left": "←",
    "up": "↑",
    "down": "↓",
    "pagedown": "pgdn",
    "pageup": "pgup",
}


def key_display(key: str) -> str:
    """Textual's name of a key (``greater_than_sign``) as the help writes it (``>``)."""
    return KEY_DISPLAY.get(key, key)


def _keys_written(keys: str) -> set[str]:
    """The keys a help row's first column names ("n, b (→, ←)": n, b, →, ←)."""
    return {k for k in re.split(r"[,()\s]+", keys) if k}


def section_keys(title: str) -> list[tuple[str, str]]:
    """Section ``title``'s rows (keys, what they do): the written ones, then each key
    its classes bind (``SECTION_BINDINGS``) that no row names yet, with the binding's
    description. Keys written under "Everywhere" count as named."""
    written = dict(SECTIONS)
    rows = list(written.get(title, []))
    named = set().union(*(_keys_written(keys) for keys, _ in rows + written["Everywhere"]))
    extra: dict[str, list[str]] = {}  # description -> its keys not named
    for cls in SECTION_BINDINGS.get(title, ()):
        for key, bindings in BindingsMap(cls.BINDINGS).key_to_bindings.items():
            shown = key_display(key)
            if shown not in named and bindings[0].description:
                extra.setdefault(bindings[0].description.lower(), []).append(shown)
                named.add(shown)
    return rows + [(", ".join(keys), does) for does, keys in extra.items()]


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
    for title, _ in SECTIONS:
        keys = section_keys(title)
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
