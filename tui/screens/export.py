"""``ExportScreen``: choose what to export from a run (the Runs pane's ``e``).

A list of the export formats and the metrics table, state_dict and onnx ticked (each
line opens with ``[x]`` or ``[ ]``, readable without colour): space ticks or unticks the
highlighted one, enter exports, escape cancels. A choice that cannot
be made here (nothing ticked, onnx without the ``[export]`` extra) is said under the list
and the dialog stays open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widgets import OptionList, SelectionList, Static
from textual.widgets.selection_list import Selection

from engine.export import DEFAULT_FORMATS, FILE_NAMES, METRICS_NAME, missing_extra
from tui.plain import markup

# What the list says beside a format's file, if anything.
NOTES = {"torchscript": "deprecated"}
METRICS = "metrics"


# Each line's mark, ticked or not: the same width as SelectionList's own button ("▐X▌ "),
# which shows its state by colour alone.
TICKED, UNTICKED = "[x] ", "[ ] "


class MarkedSelectionList(SelectionList[str]):
    """A ``SelectionList`` whose lines open with ``[x]`` (ticked) or ``[ ]`` in place of
    the coloured button, so the state reads in every colour mode (``NO_COLOR`` too)."""

    def render_line(self, y: int) -> Strip:
        line = OptionList.render_line(self, y)
        index = self.scroll_offset.y + y
        if not 0 <= index < self.option_count:
            return line
        selection = self.get_option_at_index(index)
        ticked = selection.value in self.selected
        base = next(iter(line)).style if line.cell_length else None
        style = (base or Style()) + Style(bold=ticked, meta={"option": index})
        return Strip([Segment(TICKED if ticked else UNTICKED, style), *line])


@dataclass(frozen=True)
class ExportChoice:
    """What to export: ``formats`` in ``engine.export.FORMATS`` order, and whether to
    write ``metrics.csv``."""

    formats: tuple[str, ...]
    metrics: bool


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Returns the ``ExportChoice`` (enter), or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        # Before the list's own enter (which would tick): enter exports.
        Binding("enter", "export", "Export", priority=True),
    ]

    DEFAULT_CSS = """
    #export-problem {
        color: $error;
    }
    """

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        choices: list[Selection[str]] = [
            Selection(
                f"{fmt:<12}{name:<21}{NOTES.get(fmt, '')}".rstrip(), fmt, fmt in DEFAULT_FORMATS
            )
            for fmt, name in FILE_NAMES.items()
        ]
        choices.append(Selection(f"{'metrics':<12}{METRICS_NAME}", METRICS))
        with Vertical(id="export-box", classes="dialog"):
            yield Static(
                markup("Export run $id's best model to its export folder:", id=self.run_id),
                id="export-title",
            )
            yield MarkedSelectionList(*choices, id="export-choices")
            yield Static("", id="export-problem", markup=False)
            yield Static("space: tick · enter: export · escape: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def choice(self) -> ExportChoice:
        """What is ticked now."""
        ticked = set(self.query_one(SelectionList).selected)
        return ExportChoice(tuple(fmt for fmt in FILE_NAMES if fmt in ticked), METRICS in ticked)

    def action_export(self) -> None:
        choice = self.choice()
        problem = ""
        if not choice.formats and not choice.metrics:
            problem = "tick at least one (space)"
        else:
            problem = missing_extra(choice.formats) or ""
        self.query_one("#export-problem", Static).update(Content(problem))
        if not problem:
            self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
