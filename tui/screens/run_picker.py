"""``RunPicker``: choose one run from a list (the Inspect pane's other runs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.runs import RunInfo
from tui.plain import plain


def run_label(info: RunInfo) -> str:
    best = f"best {info.best_accuracy:.1%}" if info.best_accuracy is not None else "no epoch yet"
    return f"{info.id}  {info.state} · {best}"


class RunPicker(ModalScreen[Path | None]):
    """Returns the chosen run's folder (enter), or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, runs: Sequence[RunInfo], current: Path | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.runs = list(runs)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="run-picker-box", classes="dialog"):
            yield Static(self.title_text, id="run-picker-title")
            yield OptionList(
                *(Option(plain(run_label(info)), id=str(info.path)) for info in self.runs),
                id="run-picker-list",
            )
            yield Static("enter: choose · escape: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        paths = [info.path for info in self.runs]
        if self.current in paths:
            options.highlighted = paths.index(self.current)
        options.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(event.option.id) if event.option.id else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
