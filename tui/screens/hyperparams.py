"""The Hyperparameters pane: the config form, presets, the model summary, Start, and the
fields marked for a hyperparameter search (ctrl+t) with the space they make.

``/`` (or ctrl+g) goes to a field, or to the preset selector, by part of its name; ``s``
with a bad field names it and puts the cursor there; a run's start saves the settings
the next launch restores (``tui.last_settings``; so does quitting, the form valid), and
the side column says when the form holds them; ctrl+r brings back the defaults, after
asking."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from engine.config import PRESET_HELP, PRESETS, TrainConfig
from engine.fields import field_label
from engine.search_space import SEARCHABLE, SearchSpace, search_text
from tui.last_settings import save_last_settings, settings_path, with_preset
from tui.screens.confirm import ConfirmScreen
from tui.screens.pane import Pane
from tui.widgets.config_form import (
    SEARCH_SYNTAX,
    ConfigForm,
    OrderedInput,
    field_of,
    fields_matching,
)
from tui.widgets.model_summary import ModelSummaryView

__all__ = ["PRESET_ENTRY", "FieldFinder", "HyperparamsPane", "finder_matches", "with_preset"]

# Matches the field finder lists at most.
FINDER_ROWS = 8
# The finder's entry for the preset selector (not a setting, but reached the same way).
PRESET_ENTRY = "preset"
# What the side column says while the form holds the settings restored at launch.
RESTORED_STATE = "Settings of the last run"


def finder_matches(text: str) -> list[str]:
    """What the field finder offers for ``text``: the settings ``fields_matching`` finds,
    and ``PRESET_ENTRY`` when "preset" holds the text (first when it starts with it)."""
    found = fields_matching(text)
    wanted = text.strip().lower()
    if wanted and PRESET_ENTRY.startswith(wanted):
        return [PRESET_ENTRY, *found]
    return [*found, PRESET_ENTRY] if wanted in PRESET_ENTRY else found


def finder_label(name: str) -> str:
    """An entry's name in words, as the finder lists it."""
    return "Preset" if name == PRESET_ENTRY else field_label(name)


class FieldFinder(ModalScreen[str | None]):
    """Type part of a field's name or label; enter goes to the first match (up and down
    choose another); escape goes nowhere. Returns the field's key, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", show=False),
        Binding("down", "move(1)", "Next match", show=False),
        Binding("up", "move(-1)", "Previous match", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.matches: list[str] = finder_matches("")
        self.chosen = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="finder"):
            yield Label("Go to field: type part of a name (enter: go, esc: stay)")
            yield OrderedInput(
                placeholder="e.g. epo, decay, smooth", id="finder-input", compact=True
            )
            yield Static("", id="finder-matches", markup=False)

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        shown = self.matches[:FINDER_ROWS]
        lines = [
            f"{'▶' if i == self.chosen else ' '} {finder_label(name):<17}{name}"
            for i, name in enumerate(shown)
        ]
        more = len(self.matches) - len(shown)
        if more > 0:
            lines.append(f"  … and {more} more")
        self.query_one("#finder-matches", Static).update(
            "\n".join(lines) or "No field has that in its name."
        )

    @on(Input.Changed, "#finder-input")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.matches, self.chosen = finder_matches(event.value), 0
        self._show()

    @on(Input.Submitted, "#finder-input")
    def _go(self, event: Input.Submitted) -> None:
        event.stop()
        if self.matches:
            self.dismiss(self.matches[self.chosen])

    def action_move(self, step: int) -> None:
        count = min(len(self.matches), FINDER_ROWS)
        if count:
            self.chosen = (self.chosen + step) % count
            self._show()


class HyperparamsPane(Pane):
    """Edit the config; see what model it builds; start training with it."""

    DEFAULT_FOCUS = "#config-form"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "start", "Start"),
        Binding("S", "start(True)", "Start detached", show=False),
        # In a field / types itself: the footer then shows ctrl+g (check_action).
        Binding("slash", "find_field('slash')", "Go to field"),
        Binding("ctrl+g", "find_field('ctrl+g')", "Go to field"),
        Binding("ctrl+g", "find_field", "Go to field", show=False),
        Binding("ctrl+s", "app.save_config", "Save"),
        Binding("ctrl+o", "app.load_config", "Load"),
        Binding("ctrl+r", "defaults", "Defaults"),
    ]

    def __init__(self, config: TrainConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.config = config
        self.preset: str | None = None  # the preset applied last, if any
        self.restored = False  # the form holds the last run's settings, unchanged
        self._restored_texts: dict[str, str] = {}  # those settings, as the form shows them

    def compose(self) -> ComposeResult:
        with Horizontal(id="hp-body"):
            yield ConfigForm(self.config, id="config-form")
            with VerticalScroll(id="hp-side"):
                yield Select(
                    [(f"{name}: {PRESET_HELP.get(name, '')}", name) for name in PRESETS],
                    prompt="Preset…",
                    compact=True,
                    id="preset",
                )
                yield Static("", id="preset-state", markup=False)
                with Horizontal(id="hp-buttons"):
                    yield Button("Start (s)", id="start", variant="success", compact=True)
                    yield Button("Save", id="save", compact=True)
                    yield Button("Load", id="load", compact=True)
                yield Static("", id="hp-problems")
                yield Static("", id="hp-data")
                yield ModelSummaryView(id="model-summary")
                yield Static(
                    "[dim]tab: next field · escape: leave a field · /: go to a field · "
                    "ctrl+t: search a field · ctrl+r: defaults[/]",
                    id="field-help",
                )
                yield Static("", id="hp-search", markup=False)

    @property
    def form(self) -> ConfigForm:
        return self.query_one(ConfigForm)

    @property
    def summary_view(self) -> ModelSummaryView:
        return self.query_one(ModelSummaryView)

    # --- attributes down ------------------------------------------------------------

    def set_startable(self, startable: bool) -> None:
        self.query_one("#start", Button).disabled = not startable

    def load_config(self, config: TrainConfig) -> None:
        """Show ``config`` (a loaded file, the defaults): no preset is named any more."""
        self.form.load(config)
        self._show_preset(None)

    def apply_preset(self, name: str) -> None:
        """Fill the form with preset ``name``, keeping the system and data fields; the
        preset selector names it until a field is changed."""
        current = self.form.config or self.config
        self.form.load(with_preset(name, current))
        self._show_preset(name)
        self.notify(f"Preset {name} applied", timeout=3)

    def show_restored(self) -> None:
        """Say in the side column that the form holds the settings restored from the
        last run, until a field, a preset or the defaults change them."""
        self._show_preset(None)
        self.restored, self._restored_texts = True, self.form.texts()
        state = self.query_one("#preset-state", Static)
        state.update(RESTORED_STATE)
        state.set_class(True, "-shown")

    def _show_preset(self, name: str | None, *, changed: bool = False) -> None:
        self.preset, self.restored = name, False
        select = self.query_one("#preset", Select)
        with self.prevent(Select.Changed):
            if name is None or changed:
                select.clear()
            else:
                select.value = name
        state = self.query_one("#preset-state", Static)
        state.update(f"{name} (changed)" if name is not None and changed else "")
        state.set_class(name is not None and changed, "-shown")

    def search_space(self) -> SearchSpace:
        """The space a search from this form explores: the fields marked with ctrl+t, or
        the default space (``SearchSpace.default``) when none is marked. ``ConfigError``
        lists the problems when a marked field's entry is bad."""
        return self.form.marked_space() or SearchSpace.default()

    def marked_space(self) -> SearchSpace | None:
        """The marked fields alone (None when none is marked): what ctrl+s saves as the
        ``[search]`` table. ``ConfigError`` when an entry is bad."""
        return self.form.marked_space()

    def search_problems(self) -> list[str]:
        """What is wrong with the marked fields' entries (empty when nothing is)."""
        return self.form.search_problems()

    def load_search(self, space: SearchSpace | None) -> None:
        """Mark exactly ``space``'s fields with its entries (None: unmark every field),
        as ctrl+o does from a file's ``[search]`` table."""
        self.form.load_search(space)

    def show_data(self, text: str | Content, *, problem: bool = False) -> None:
        """What became of the data the form's data fields name (loading, loaded, or why
        not); "" hides it."""
        line = self.query_one("#hp-data", Static)
        line.update(text)
        line.set_class(bool(text), "-shown")
        line.set_class(problem, "-problem")

    # --- events up ------------------------------------------------------------------

    @on(ConfigForm.Changed)
    def _form_changed(self, event: ConfigForm.Changed) -> None:
        if event.edited and self.preset is not None:
            self._show_preset(self.preset, changed=True)
        elif event.edited and self.restored and self.form.texts() != self._restored_texts:
            self._show_preset(None)
        problems = self.query_one("#hp-problems", Static)
        if event.problems:
            count = len(event.problems)
            problems.update(
                f"[b $error]{count} problem{'s' * (count != 1)}: fix to start[/]\n"
                + "\n".join(f"• {p}" for p in event.problems)
            )
        else:
            problems.update("")
        problems.set_class(bool(event.problems), "-shown")

    @on(ConfigForm.SearchChanged)
    def _search_changed(self, event: ConfigForm.SearchChanged) -> None:
        view = self.query_one("#hp-search", Static)
        if event.problems:
            names = ", ".join(dict.fromkeys(p.split(":")[0].split()[-1] for p in event.problems))
            view.update(f"Search space: fix the entry of {names} (under the field)")
        else:
            space = event.space or SearchSpace.default()
            count = len(space.params)
            head = (
                f"Search space: {count} field{'s' * (count != 1)} marked (~)"
                if event.space is not None
                else "Search space: the default (ctrl+t on a field marks it)"
            )
            # As the entries are typed: short enough for the narrow side column.
            width = max(len(name) for name in space.params) + 2
            view.update(
                "\n".join(
                    [head] + [f"{n:<{width}}{search_text(n, p)}" for n, p in space.params.items()]
                )
            )
        view.set_class(bool(event.problems), "-problem")

    @on(ConfigForm.FieldFocused)
    def _field_focused(self, event: ConfigForm.FieldFocused) -> None:
        spec = event.spec
        # Text, not markup: a help line may hold brackets ("the [tensorboard] extra").
        title = Text.assemble((field_label(spec.name), "bold"), f" ({spec.name})")
        if event.search:
            help_text = Text.assemble(
                "search ",
                title,
                f": {SEARCH_SYNTAX}\n",
                (f"{spec.allowed()}; ctrl+t: stop searching it", "dim"),
            )
        else:
            search = "ctrl+t: search it" if spec.name in SEARCHABLE else "not searchable"
            default = spec.default if not isinstance(spec.default, tuple) else list(spec.default)
            help_text = Text.assemble(
                title,
                f": {spec.help}\n",
                (f"{spec.allowed()}; default {default} · {search}", "dim"),
            )
        if event.unused:
            help_text.append(f"\nNot used now: {event.unused}", style="italic")
        self.query_one("#field-help", Static).update(help_text)

    @on(Select.Changed, "#preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.is_blank():
            return
        self.apply_preset(str(event.value))

    def action_find_field(self, key: str = "") -> None:
        """Ask for part of a field's name, then put the cursor in that field (``key``:
        the key bound, which only decides where the footer shows it)."""

        def go(name: str | None) -> None:
            if name == PRESET_ENTRY:
                self.query_one("#preset", Select).focus()
            elif name is not None:
                self.form.focus_field(name)

        self.app.push_screen(FieldFinder(), go)

    def action_defaults(self) -> None:
        """Ask, then put every training setting back to its default; the system and data
        fields (where the data and runs are) stay."""

        def answered(yes: bool | None) -> None:
            if yes:
                self.load_config(with_preset("default", self.form.config or self.config))
                self.notify("Defaults restored (the system and data fields kept)", timeout=4)

        self.app.push_screen(
            ConfirmScreen(
                "Put every training setting back to its default? The system and data "
                "fields stay; the form's other values are lost.",
                "Defaults",
                "Keep",
            ),
            answered,
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "find_field" and parameters:
            # The footer names the go-to key that works where the cursor is.
            in_field = isinstance(self.app.focused, Input)
            return in_field if parameters[0] == "ctrl+g" else not in_field
        if action == "start":
            app_says = self.app.check_action(
                "start_detached" if parameters and parameters[0] else "start", ()
            )
            # Enabled while a field is bad, so that s says which; otherwise as the app says.
            return True if app_says is None and self.form.problems else app_says
        return True

    async def action_start(self, detached: bool = False) -> None:
        """Start a run with the form's settings (``detached``: in a process of its own).
        With a bad field, say which and why, and put the cursor there. A run that starts
        saves the settings for the next launch."""
        if self.form.problems:
            problem = self.form.problems[0]
            name = field_of(problem)
            count = len(self.form.problems)
            more = f" ({count - 1} more problem{'s' * (count != 2)} listed)" if count > 1 else ""
            if name is None:
                self.notify(f"Cannot start: {problem}{more}", severity="warning", timeout=8)
                return
            reason = problem.split(":", 1)[1].strip()
            self.notify(
                f"Cannot start: fix {field_label(name)} ({name}): {reason}{more}",
                severity="warning",
                timeout=8,
            )
            self.form.focus_field(name)
            return
        action = "start_detached" if detached else "start"
        config = self.form.config
        if config is not None and self.app.check_action(action, ()):
            try:
                save_last_settings(config)
            except OSError as exc:
                self.notify(
                    f"Cannot keep the settings for the next launch in {settings_path()}: "
                    f"{exc.strerror or exc}",
                    severity="warning",
                    timeout=6,
                )
        await self.app.run_action(f"app.{action}")

    @on(Button.Pressed)
    async def _button(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            await self.action_start()
            return
        actions = {"save": "app.save_config", "load": "app.load_config"}
        if event.button.id in actions:
            await self.run_action(actions[event.button.id])
