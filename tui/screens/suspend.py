"""``SuspendScreen``: ctrl+z while a run trains here (the app pauses the run while it
asks): suspend with the run paused, detach it and suspend, or stay (the run resumed)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

CHOICES = (
    ("suspend", "Pause, suspend (s)", "primary"),
    ("detach", "Detach, suspend (d)", "warning"),
    ("cancel", "Stay (esc)", "default"),
)

QUESTION = (
    "A run is training in this app; it is paused while you choose. Suspend the app as a "
    "shell does (ctrl+z; `fg` brings it back), the run paused until your return; detach "
    "the run (it saves a checkpoint and trains on in a process of its own) and suspend; "
    "or stay here (the run carries on)?"
)


class SuspendScreen(ModalScreen[str | None]):
    """Returns "suspend" (``s``, or ctrl+z again), "detach" (``d``) or None (stay:
    escape, ``n`` or ``c``)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s,ctrl+z", "choose('suspend')", "Pause and suspend"),
        Binding("d", "choose('detach')", "Detach and suspend"),
        Binding("escape,n,c", "choose('cancel')", "Stay"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="suspend-box", classes="dialog"):
            yield Static(QUESTION, id="suspend-question", markup=False)
            with Horizontal(classes="dialog-buttons"):
                for choice, label, variant in CHOICES:
                    yield Button(label, variant=variant, id=choice, compact=True)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query_one("#suspend", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(None if choice == "cancel" else choice)
