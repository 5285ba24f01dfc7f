"""The Hyperparameters pane: the config form, presets, the model summary, Start, and the
fields marked for a hyperparameter search (ctrl+t) with the space they make."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Button, Select, Static

from engine.config import FIELDS, PRESET_HELP, PRESETS, TrainConfig
from engine.search_space import SEARCHABLE, SearchSpace, search_text
from tui.screens.pane import Pane
from tui.widgets.config_form import SEARCH_SYNTAX, ConfigForm
from tui.widgets.model_summary import ModelSummaryView

# A preset sets how to train, never where: these groups keep the values already set.
KEPT_BY_PRESETS = ("system", "data")


def with_preset(name: str, current: TrainConfig) -> TrainConfig:
    """Preset ``name`` applied to defaults, keeping ``current``'s system and data fields."""
    kept = {k: v for k, v in current.to_dict().items() if FIELDS[k].group in KEPT_BY_PRESETS}
    return TrainConfig.from_dict({**PRESETS[name], **kept})


class HyperparamsPane(Pane):
    """Edit the config; see what model it builds; start training with it."""

    DEFAULT_FOCUS = "#config-form"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "app.save_config", "Save"),
        Binding("ctrl+o", "app.load_config", "Load"),
    ]

    def __init__(self, config: TrainConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.config = config

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
                with Horizontal(id="hp-buttons"):
                    yield Button("Start (s)", id="start", variant="success", compact=True)
                    yield Button("Save", id="save", compact=True)
                    yield Button("Load", id="load", compact=True)
                yield Static("", id="hp-problems")
                yield Static("", id="hp-data")
                yield ModelSummaryView(id="model-summary")
                yield Static(
                    "[dim]tab: next field · escape: leave a field · ctrl+t: search a field[/]",
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
        self.form.load(config)

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
        if event.search:
            self.query_one("#field-help", Static).update(
                f"[b]search {spec.name}[/]: {SEARCH_SYNTAX}\n"
                f"[dim]{spec.allowed()}; ctrl+t: stop searching it[/]"
            )
            return
        search = "ctrl+t: search it" if spec.name in SEARCHABLE else "not searchable"
        self.query_one("#field-help", Static).update(
            f"[b]{spec.name}[/]: {spec.help}\n[dim]{spec.allowed()}; default "
            f"{spec.default if not isinstance(spec.default, tuple) else list(spec.default)}"
            f" · {search}[/]"
        )

    @on(Select.Changed, "#preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if event.select.is_blank():
            return
        current = self.form.config or self.config
        self.form.load(with_preset(str(event.value), current))
        self.notify(f"Preset {event.value} applied", timeout=3)

    @on(Button.Pressed)
    async def _button(self, event: Button.Pressed) -> None:
        actions = {"start": "app.start", "save": "app.save_config", "load": "app.load_config"}
        if event.button.id in actions:
            await self.run_action(actions[event.button.id])
