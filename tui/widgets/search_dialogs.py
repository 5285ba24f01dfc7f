"""The Search pane's dialogs: ``SearchPrompt`` (start a search) and ``StudyPicker``.

``SearchPrompt`` asks what ``fmnist-tui search`` takes as flags (trials, study name,
sampler, pruner, workers, epochs per trial) for the form's settings and search space,
which it lists, and checks them as it is typed: a grid sampler over a range, a study
name that could not be a file name. It returns a ``SearchChoice``; the pane builds
the engine's options from it in a worker (``engine.search`` imports Optuna).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from engine.errors import ConfigError
from engine.search_space import SearchSpace
from tui.plain import plain

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
DEFAULT_TRIALS = 20


@dataclass(frozen=True)
class SearchChoice:
    """What the prompt was given: ``epochs`` None for the config's own."""

    study: str
    trials: int
    sampler: str
    pruner: str
    workers: int
    epochs: int | None


def _whole(text: str, what: str, low: int, high: int) -> tuple[int | None, str]:
    text = text.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        return None, f"{what}: give a whole number from {low} to {high}"
    return int(text), ""


def check_choice(
    texts: dict[str, str], space: SearchSpace, cores: int
) -> tuple[SearchChoice | None, list[str]]:
    """``texts`` (the prompt's fields by name) as a ``SearchChoice``, or None and one line
    per problem, each naming the field and what it takes."""
    problems: list[str] = []
    study = texts["study"].strip()
    if not STUDY_NAME.match(study):
        problems.append(
            "study: letters, digits, '.', '_' and '-' (up to 50, starting with a letter or digit)"
        )
    trials, problem = _whole(texts["trials"], "trials", 1, 100_000)
    problems += [problem] if problem else []
    workers, problem = _whole(texts["workers"], "workers", 1, max(cores, 1) * 4)
    problems += [problem] if problem else []
    epochs: int | None = None
    if texts["epochs"].strip():
        epochs, problem = _whole(texts["epochs"], "epochs per trial", 1, 10_000)
        problems += [problem] if problem else []
    sampler, pruner = texts["sampler"], texts["pruner"]
    if sampler == "grid":
        try:
            space.grid()
        except ConfigError as exc:
            problems += [f"sampler: {p}" for p in exc.problems]
    if problems or trials is None or workers is None:
        return None, problems
    return SearchChoice(study, trials, sampler, pruner, workers, epochs), []


def _select(values: Sequence[str]) -> Select[str]:
    return Select([(v, v) for v in values], value=values[0], allow_blank=False, compact=True)


class SearchPrompt(ModalScreen[SearchChoice | None]):
    """Returns the search to start (enter in a field), or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        space: SearchSpace,
        *,
        study: str,
        epochs: int,
        existing: Sequence[str] = (),
    ) -> None:
        """``epochs``: the config's, each trial's length unless the prompt sets one;
        ``existing``: the studies there are (a name among them carries that study on)."""
        super().__init__()
        self.space = space
        self.default_study = study
        self.config_epochs = epochs
        self.existing = set(existing)

    def compose(self) -> ComposeResult:
        with Vertical(id="search-prompt", classes="dialog"):
            yield Static(
                "Search over (mark fields in the Hyperparameters pane, ctrl+t):",
                id="search-prompt-title",
            )
            yield Static(
                Text("\n").join(plain("  " + line) for line in self.space.lines()),
                id="search-prompt-space",
            )
            digits = r"[0-9]*"
            for name, label, widget in (
                ("trials", "trials", Input(str(DEFAULT_TRIALS), restrict=digits, compact=True)),
                ("study", "study name", Input(self.default_study, compact=True)),
                ("sampler", "sampler", _select(SAMPLERS)),
                ("pruner", "pruner", _select(PRUNERS)),
                ("workers", "workers", Input("1", restrict=digits, compact=True)),
                ("epochs", "epochs a trial", Input("", restrict=digits, compact=True)),
            ):
                widget.id = f"search-{name}"
                with Horizontal(classes="search-prompt-row"):
                    yield Label(label, classes="search-prompt-label")
                    yield widget
            yield Static("", id="search-prompt-note")
            yield Static(
                "enter: start it in the background · tab: next · escape: cancel",
                classes="dialog-hint",
            )

    def on_mount(self) -> None:
        self.query_one("#search-epochs", Input).placeholder = f"{self.config_epochs} (the config's)"
        self.query_one("#search-trials", Input).focus()
        self._check()

    def texts(self) -> dict[str, str]:
        out = {}
        for name in ("trials", "study", "workers", "epochs"):
            out[name] = self.query_one(f"#search-{name}", Input).value
        for name in ("sampler", "pruner"):
            select = self.query_one(f"#search-{name}", Select)
            out[name] = "" if select.is_blank() else str(select.value)
        return out

    def _check(self) -> SearchChoice | None:
        choice, problems = check_choice(self.texts(), self.space, os.cpu_count() or 1)
        note = self.query_one("#search-prompt-note", Static)
        if problems:
            note.update(Text("\n").join(plain("✗ " + p, "bold red") for p in problems))
        else:
            assert choice is not None
            carry = choice.study in self.existing
            note.update(
                plain(
                    f"Study {choice.study} exists: the search carries it on to "
                    f"{choice.trials} finished trials."
                    if carry
                    else f"A new study, {choice.study}: {choice.trials} trials.",
                    "dim",
                )
            )
        return choice

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self._check()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        choice = self._check()
        if choice is not None:
            self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)


class StudyPicker(ModalScreen[str | None]):
    """Returns the chosen study's name (enter), or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, studies: Sequence[tuple[str, str]], current: str | None = None) -> None:
        """``studies``: (name, what to show beside it), newest first."""
        super().__init__()
        self.studies = list(studies)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="study-picker", classes="dialog"):
            yield Static("Watch which study?")
            yield OptionList(
                *(Option(plain(f"{name}  {about}"), id=name) for name, about in self.studies),
                id="study-list",
            )
            yield Static("enter: watch it · escape: cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        names = [name for name, _ in self.studies]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
