"""``QuitScreen``: quitting while a run trains here: stop it, detach it, or keep training."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

CHOICES = (
    ("stop", "Stop and quit (s)", "error"),
    ("detach", "Detach and quit (d)", "warning"),
    ("keep", "Keep training (k/esc)", "primary"),
)


class QuitScreen(ModalScreen[str | None]):
    """Returns "stop", "detach" or None (keep training: ``k`` or escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "choose('stop')", "Stop and quit"),
        Binding("d", "choose('detach')", "Detach and quit"),
        Binding("k,n,escape", "choose('keep')", "Keep training"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="dialog"):
            yield Static(
                "Training is running. Stop it at the next batch with a resumable "
                "checkpoint and quit; or detach it (it saves a checkpoint and trains on "
                "in a process of its own; `fmnist-tui attach` watches it) and quit?",
                id="confirm-question",
            )
            with Horizontal(classes="dialog-buttons"):
                for choice, label, variant in CHOICES:
                    yield Button(label, variant=variant, id=choice, compact=True)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "keep")

    def action_choose(self, choice: str) -> None:
        self.dismiss(None if choice == "keep" else choice)
