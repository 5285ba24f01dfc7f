"""The Search pane's dialogs: ``SearchPrompt`` (start a search), ``StudyPicker`` and
``TrainBestPrompt`` (train a study's best for how many epochs).

``SearchPrompt`` asks what ``fmnist-tui search`` takes as flags (trials, study name,
sampler, pruner, workers, epochs per trial) for the form's settings and search space,
which it lists, and checks them as it is typed: a grid sampler over a range, a study
name that could not be a file name. A name that is an existing study's carries that
study on with its own settings: the prompt reads them in a thread worker and shows its
space and epochs instead of the form's. It returns a ``SearchChoice``; the pane builds
the engine's options from it in a worker (``engine.search`` imports Optuna).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from engine.errors import ConfigError
from engine.fields import epochs_text
from engine.search_space import SearchSpace
from tui.plain import plain

if TYPE_CHECKING:
    from engine.search import StudySettings

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
DEFAULT_TRIALS = 20


@dataclass(frozen=True)
class SearchChoice:
    """What the prompt was given: ``epochs`` None for the config's own; ``settings`` the
    existing study's own (base config, space, epochs) when it carries one on, else None."""

    study: str
    trials: int
    sampler: str
    pruner: str
    workers: int
    epochs: int | None
    settings: StudySettings | None = None


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


def _space_text(space: SearchSpace) -> Text:
    return Text("\n").join(plain("  " + line) for line in space.lines())


def _select(values: Sequence[str]) -> Select[str]:
    return Select([(v, v) for v in values], value=values[0], allow_blank=False, compact=True)


class SearchPrompt(ModalScreen[SearchChoice | None]):
    """Returns the search to start (enter in a field), or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    TITLE = "Search over (mark fields in the Hyperparameters pane, ctrl+t):"

    @dataclass
    class SettingsRead(Message):
        """An existing study's settings, read in the worker (None and why when unread)."""

        bubble: ClassVar[bool] = False
        study: str
        settings: StudySettings | None
        problem: str

    def __init__(
        self,
        space: SearchSpace,
        *,
        study: str,
        epochs: int,
        existing: Sequence[str] = (),
        runs_dir: str = "runs",
    ) -> None:
        """``epochs``: the config's, each trial's length unless the prompt sets one;
        ``existing``: the studies there are in ``runs_dir`` (a name among them carries
        that study on, with its own settings)."""
        super().__init__()
        self.space = space
        self.default_study = study
        self.config_epochs = epochs
        self.existing = set(existing)
        self.runs_dir = runs_dir
        self._settings: dict[str, StudySettings] = {}
        self._problems: dict[str, str] = {}
        self._asked: set[str] = set()

    def compose(self) -> ComposeResult:
        with Vertical(id="search-prompt", classes="dialog"):
            yield Static(self.TITLE, id="search-prompt-title")
            yield Static(_space_text(self.space), id="search-prompt-space")
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

    def _show_settings(self, study: str, settings: StudySettings | None) -> None:
        """The existing study's space and epochs (``settings``), or the form's (None)."""
        title = self.query_one("#search-prompt-title", Static)
        epochs = self.query_one("#search-epochs", Input)
        if settings is None:
            title.update(self.TITLE)
            self.query_one("#search-prompt-space", Static).update(_space_text(self.space))
            epochs.disabled = False
            epochs.placeholder = f"{self.config_epochs} (the config's)"
            return
        title.update(plain(f"Study {study} searches over (its own settings, not the form's):"))
        self.query_one("#search-prompt-space", Static).update(_space_text(settings.space))
        epochs.disabled = True
        epochs.placeholder = f"{settings.epochs} (the study's)"

    def _check(self) -> SearchChoice | None:
        texts = self.texts()
        study = texts["study"].strip()
        carry = study in self.existing
        settings = self._settings.get(study) if carry else None
        self._show_settings(study, settings)
        note = self.query_one("#search-prompt-note", Static)
        if carry and settings is None:
            if study not in self._asked:
                self._asked.add(study)
                self._read_settings(study)
            problem = self._problems.get(study)
            note.update(
                plain(f"✗ study {study}: {problem}", "bold red")
                if problem
                else plain(f"Reading study {study}'s settings…", "dim")
            )
            return None
        if settings is not None:
            texts["epochs"] = ""  # the study's own epochs
        space = settings.space if settings is not None else self.space
        choice, problems = check_choice(texts, space, os.cpu_count() or 1)
        if problems:
            note.update(Text("\n").join(plain("✗ " + p, "bold red") for p in problems))
            return None
        assert choice is not None
        if settings is not None:
            choice = replace(choice, epochs=settings.epochs, settings=settings)
            note.update(
                plain(
                    f"Study {study} exists: the search carries it on to {choice.trials} "
                    f"finished trials with its own settings (its base config, the space "
                    f"above, {epochs_text(settings.epochs)} a trial), not the form's.",
                    "dim",
                )
            )
        else:
            note.update(plain(f"A new study, {study}: {choice.trials} trials.", "dim"))
        return choice

    @work(thread=True, exit_on_error=False, group="study-settings")
    def _read_settings(self, study: str) -> None:
        from engine import search
        from engine.errors import EngineError

        settings: StudySettings | None = None
        try:
            settings = search.study_settings(self.runs_dir, study)
            problem = "" if settings is not None else "no such study (any more)"
        except (EngineError, OSError) as exc:
            problem = str(exc)
        except Exception as exc:  # never a traceback from a read: say what went wrong
            problem = f"{type(exc).__name__}: {exc}"
        if not get_current_worker().is_cancelled:
            self.post_message(self.SettingsRead(study, settings, problem))

    @on(SettingsRead)
    def _settings_read(self, message: SettingsRead) -> None:
        if message.settings is not None:
            self._settings[message.study] = message.settings
        else:
            self._problems[message.study] = message.problem
        self._check()

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
    """Returns the chosen study's name (enter), or None (escape). Each study's finished
    trials (complete and pruned) and best validation accuracy are read in a thread worker
    once the list shows, and added beside it as they come."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    @dataclass
    class Summary(Message):
        bubble: ClassVar[bool] = False
        study: str
        text: str

    def __init__(
        self,
        studies: Sequence[tuple[str, str]],
        current: str | None = None,
        runs_dir: str | None = None,
    ) -> None:
        """``studies``: (name, what to show beside it), newest first; ``runs_dir``: where
        their journals are, to read their trials (None: not read)."""
        super().__init__()
        self.studies = list(studies)
        self.current = current
        self.runs_dir = runs_dir
        self.summaries: dict[str, str] = {}

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
        if self.runs_dir is not None:
            self._summarise(self.runs_dir, names)

    @work(thread=True, exit_on_error=False, group="study-summaries")
    def _summarise(self, runs_dir: str, names: list[str]) -> None:
        from engine import search

        for name in names:
            if get_current_worker().is_cancelled:
                return
            try:
                rows = search.study_rows(runs_dir, name)
            except Exception as exc:  # one study's problem is said beside it, no traceback
                text = f"not read: {exc}"
            else:
                finished = sum(r.state in ("complete", "pruned") for r in rows)
                values = [r.value for r in rows if r.state == "complete" and r.value is not None]
                best = f"best val {max(values):.1%}" if values else "no complete trial"
                text = f"{finished} finished trial{'s' * (finished != 1)}, {best}"
            self.post_message(self.Summary(name, text))

    @on(Summary)
    def _summary(self, message: Summary) -> None:
        self.summaries[message.study] = message.text
        about = dict(self.studies).get(message.study, "")
        prompt = plain(f"{message.study}  {message.text}" + (f" · {about}" if about else ""))
        self.query_one(OptionList).replace_option_prompt(message.study, prompt)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def check_epochs(text: str) -> tuple[int | None, str]:
    """``text`` as a number of epochs (1 to 10,000, as the prompt's epochs field takes),
    or None and what is wrong."""
    return _whole(text, "epochs", 1, 10_000)


class TrainBestPrompt(ModalScreen[int | None]):
    """Asks whether to train a study's best configuration, and for how many epochs
    (``epochs`` at first: the base config's). Returns the epochs (enter) or None (escape)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, epochs: int) -> None:
        super().__init__()
        self.question = question
        self.epochs = epochs

    def compose(self) -> ComposeResult:
        with Vertical(id="train-best-prompt", classes="dialog"):
            # One line at a time: plain() shows a control character, a newline too, as ?.
            lines = (plain(line) for line in self.question.split("\n"))
            yield Static(Text("\n").join(lines), id="train-best-question")
            with Horizontal(classes="search-prompt-row"):
                yield Label("epochs", classes="search-prompt-label")
                yield Input(str(self.epochs), restrict=r"[0-9]*", compact=True, id="best-epochs")
            yield Static("", id="train-best-note")
            yield Static("enter: train it as a new run · escape: not now", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#best-epochs", Input).focus()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        _, problem = check_epochs(event.value)
        self.query_one("#train-best-note", Static).update(
            plain("✗ " + problem, "bold red") if problem else ""
        )

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        epochs, _ = check_epochs(event.value)
        if epochs is not None:
            self.dismiss(epochs)

    def action_cancel(self) -> None:
        self.dismiss(None)
