"""``ExtendScreen``: train a finished run for more epochs, after seeing the new LR schedule.

Extending recomputes the learning-rate schedule over the new total (a cosine schedule
warms back up from where it ended), so the screen draws the schedule the run had and
the one it will have, and asks before anything starts.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static
from textual_plotext import PlotextPlot

from engine.config import TrainConfig
from engine.fields import epochs_text
from engine.optim import schedule_curve
from engine.runs import RunInfo
from tui.plain import markup

# The schedule's shape in epochs does not depend on the data's size: plot it at this
# many steps per epoch.
PLOT_STEPS_PER_EPOCH = 50


class ExtendScreen(ModalScreen[int | None]):
    """Returns the new total of epochs (enter), or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, info: RunInfo) -> None:
        super().__init__()
        self.info = info
        self.done = info.epochs_completed

    def compose(self) -> ComposeResult:
        with Vertical(id="extend-box", classes="dialog"):
            yield Static(
                markup(
                    "Run $id finished $done epochs. Train it to a new total of epochs (the "
                    "learning-rate schedule is recomputed over it):",
                    id=self.info.id,
                    done=self.done,
                ),
                id="extend-title",
            )
            yield Input(str(self.done + 5), id="extend-epochs", restrict=r"[0-9]*")
            yield Static("", id="extend-problem")
            yield PlotextPlot(id="extend-schedule")
            yield Static("enter: extend and train here · escape: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self._show(self.query_one(Input).value)

    def _epochs(self, text: str) -> int | None:
        problem = ""
        epochs = int(text) if text.isdigit() else None
        if epochs is None:
            problem = "type the new total number of epochs"
        elif epochs <= self.done:
            problem = (
                f"the run has trained {epochs_text(self.done)} already: give more than {self.done}"
            )
        else:
            try:
                self._config(epochs)
            except ValueError as exc:
                problem = str(exc)
        self.query_one("#extend-problem", Static).update(problem)
        return None if problem else epochs

    def _config(self, epochs: int) -> TrainConfig:
        base = self.info.config or TrainConfig()
        return TrainConfig.from_dict({"epochs": epochs}, base=base)

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._show(event.value)

    def _show(self, text: str) -> None:
        epochs = self._epochs(text)
        chart = self.query_one(PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        old = schedule_curve(self._config(max(self.done, 1)), PLOT_STEPS_PER_EPOCH)
        plt.plot([x for x, _ in old], [y for _, y in old], label="so far", marker="braille")
        if epochs is not None:
            new = schedule_curve(self._config(epochs), PLOT_STEPS_PER_EPOCH)
            plt.plot([x for x, _ in new], [y for _, y in new], label="extended", marker="braille")
        plt.title("learning rate by epoch")
        chart.refresh()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        epochs = self._epochs(event.value)
        if epochs is not None:
            self.dismiss(epochs)

    def action_cancel(self) -> None:
        self.dismiss(None)
