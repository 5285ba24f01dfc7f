"""``ConfigForm``: a form generated from ``TrainConfig``'s field specs.

Inputs for numbers, lists and text, a select for each choice, a switch for each
flag. Every field is checked with the engine's own ``parse_text`` (the validator the
CLI flags use) and the whole form with ``parse_texts`` (what ``TrainConfig.with_text``
uses), so the cross-field rules and the messages are the engine's too. A problem is
shown under its field.

Each row's label says the setting in words (``field_label``); the row being edited (or
left last) is marked ``▶``, and a flag reads ``[x] on`` or ``[ ] off``, so focus and state
show in every colour mode. A setting the others make pointless (``unused_reason``:
momentum with adam, another schedule's fields) is dimmed and marked ``·`` (readable
without colour), and says why when focused.

The text editors are ``OrderedInput``: their editing keys (backspace, arrows, ctrl+k)
keep their order with the characters typed around them, even when a terminal delivers
them in one burst.
Escape leaves a field for the pane's keys; tab, shift+tab and enter then carry on from
the field left, and ``focus_field`` jumps to a field by name.

ctrl+t on a field marks it for a hyperparameter search: a row under it takes the range
(``1e-4..0.1 log``) or the values (``64, 128, 256``) to try, read by the engine's
``parse_search_text``; the field's name then ends in ``~`` and the row reads ``~ search``,
so the mark shows without colour. ``marked_space`` gives the marked fields as a
``SearchSpace``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.events import DescendantFocus, Key
from textual.geometry import Size
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from engine.config import FIELDS, MODELS, FieldSpec, TrainConfig, parse_text, parse_texts
from engine.errors import ConfigError
from engine.fields import field_label, unused_reason
from engine.gpu import GpuReading
from engine.search_space import (
    SEARCHABLE,
    Choices,
    Param,
    SearchSpace,
    parse_search_text,
    search_text,
)
from engine.tensorboard import tensorboard_problems
from tui.gpu_text import device_option

GROUP_TITLES = {
    "model": "Model",
    "optimiser": "Loss and optimiser",
    "schedule": "Schedule",
    "training": "Training",
    "system": "System",
    "data": "Data",
}


def field_text(spec: FieldSpec, value: Any) -> str:
    """A value as a person would type it, so that ``parse_text`` reads it back."""
    if spec.kind == "ints":
        return ", ".join(str(v) for v in value)
    if spec.kind == "float":
        return repr(float(value))
    if spec.kind == "bool":
        return "true" if value else "false"
    return str(value)


# The mark a searched field's name gets, and the label of the row under it.
SEARCH_MARK = " ~"
SEARCH_LABEL = "    ~ search"
# The mark of the row being edited, or left last (where tab carries on).
CURRENT_MARK = "▶ "
# The mark of a row that has no effect now (its reason shows in the help on focus).
UNUSED_MARK = "· "
SEARCH_SYNTAX = "low..high (log after it for a log scale), or values a, b, c"
SEARCH_SOURCE = "search"


def first_search_text(spec: FieldSpec, value: Any) -> str:
    """What a newly marked field's search row starts with: the default space's entry for
    the field, every choice of a choice field, both values of a flag, else the field's
    current value (a list of one, to widen)."""
    default = SearchSpace.default().params.get(spec.name)
    if default is not None:
        return search_text(spec.name, default)
    if spec.kind in ("choice", "model"):
        return ", ".join(spec.choices)
    if spec.kind == "bool":
        return "true, false"
    return search_text(spec.name, Choices((value,)))


def search_problem_text(name: str, problem: str) -> str:
    """A search problem without its ``search NAME:`` start, as shown under the field."""
    return problem.removeprefix(f"{SEARCH_SOURCE} {name}:").strip()


def field_of(problem: str) -> str | None:
    """The field a problem names (every engine problem starts ``name: ...``)."""
    name = problem.split(":", 1)[0].strip()
    return name if name in FIELDS else None


def fields_matching(text: str) -> list[str]:
    """The settings whose key or label holds ``text`` (any case, ``_`` or space alike),
    in form order; those starting with it first. Empty ``text``: every setting."""
    wanted = text.strip().lower().replace(" ", "_")
    if not wanted:
        return list(FIELDS)
    found = [
        name
        for name in FIELDS
        if wanted in name or wanted in field_label(name).lower().replace(" ", "_")
    ]
    first = [
        n for n in found if n.startswith(wanted) or field_label(n).lower().startswith(text.lower())
    ]
    return first + [n for n in found if n not in first]


class OrderedInput(Input):
    """An ``Input`` whose own keys (backspace, delete, arrows, home, ctrl+k, ...) act in
    the order they were typed.

    Textual's ``Input`` inserts a typed character as soon as the key reaches it, but
    runs a bound key only after the key has bubbled up to the app; so with keys that
    arrive together ("backspace 8" in one read from the terminal) the character went in
    first and the backspace then deleted it (Textual issue #6605). Here the input's
    own bindings run as the key reaches it, like the characters."""

    _OWN_KEYS: ClassVar[BindingsMap] = BindingsMap(Input.BINDINGS)

    async def on_key(self, event: Key) -> None:
        if event.is_printable:
            return  # Input's own handler inserts it
        bindings = self._OWN_KEYS.key_to_bindings.get(event.key)
        if not bindings:
            return  # not an editing key: it goes on to the form, the pane, the app
        event.stop()
        await self.run_action(bindings[0].action)


class FlagSwitch(Switch):
    """A ``Switch`` that reads ``[x] on`` or ``[ ] off``: its state shows without colour."""

    def render(self) -> RenderResult:
        return Content("[x] on" if self.value else "[ ] off")

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return 7


class FieldValidator(Validator):
    """The engine's ``parse_text`` as a Textual validator."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_text(self.name, value)
        except ConfigError as exc:
            return self.failure(exc.problems[0], value)
        return self.success()


class ConfigForm(VerticalScroll):
    """Edits a ``TrainConfig``; posts ``Changed`` after every edit."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_field", "Leave field", show=False),
        # From the form itself (after escape): carry on from the field left.
        Binding("tab", "next_field(1)", "Next field", show=False),
        Binding("shift+tab", "next_field(-1)", "Previous field", show=False),
        Binding("enter", "next_field(0)", "Edit field", show=False),
        Binding("ctrl+t", "toggle_search", "Search field"),
    ]

    @dataclass
    class Changed(Message):
        """The config the form now holds, or None and the problems that stop it."""

        form: ConfigForm
        config: TrainConfig | None
        problems: list[str]
        edited: bool = False  # typed or chosen in a field (not loaded: a preset, a file)

    @dataclass
    class FieldFocused(Message):
        """A field's editor got the focus (the screen shows its help); ``search``: its
        search row's editor did; ``unused``: why the field has no effect now, if so."""

        spec: FieldSpec
        search: bool = False
        unused: str | None = None

    @dataclass
    class SearchChanged(Message):
        """The marked fields changed: ``space`` holds them (None when none is marked or
        ``problems`` lists what is wrong with their entries)."""

        form: ConfigForm
        space: SearchSpace | None
        problems: list[str]

    def __init__(self, config: TrainConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = config
        self.config: TrainConfig | None = config
        self.problems: list[str] = []
        # The marked fields' search entries as typed, in the order marked: the truth that
        # ``marked_space`` reads, whether or not their rows are mounted yet.
        self._search: dict[str, str] = {}
        self._retyped: set[str] = set()  # entries set here, not typed in their row
        self._focus_wanted: str | None = None
        self._rows_lock = asyncio.Lock()
        self.current: str | None = None  # the field being edited, or left last
        self.unused: dict[str, str] = {}  # why a field has no effect now, by name
        self._checked: dict[str, str] | None = None  # the texts the last check read
        self._gpu_options: list[tuple[str, str]] = []  # the device field's GPUs offered

    def compose(self) -> ComposeResult:
        for group, title in GROUP_TITLES.items():
            yield Static(title, classes="form-group")
            for spec in FIELDS.values():
                if spec.group != group:
                    continue
                with Horizontal(classes="form-row", id=f"row-{spec.name}"):
                    yield Label(
                        self._label_text(spec.name),
                        classes="form-label",
                        id=f"label-{spec.name}",
                        markup=False,
                    )
                    yield self._editor(spec, getattr(self._initial, spec.name))
                    # Shown beside the field only where the screen has room for it.
                    yield Label(spec.help, classes="form-help", markup=False)
                # Plain text: a reason may hold brackets ("the [tensorboard] extra").
                yield Static("", id=f"error-{spec.name}", classes="form-error", markup=False)
                if spec.name == "device":
                    # The GPUs with their free memory, where there are any (``show_gpus``).
                    row = Horizontal(classes="form-row", id="row-device-gpus")
                    row.display = False
                    with row:
                        yield Label("    GPUs", classes="form-label")
                        yield Select(
                            [],
                            prompt="choose one",
                            compact=True,
                            id="device-gpus",
                            classes="form-editor",
                        )

    def _editor(self, spec: FieldSpec, value: Any) -> Widget:
        widget_id = f"field-{spec.name}"
        if spec.kind == "bool":
            return FlagSwitch(value=bool(value), id=widget_id, classes="form-editor")
        if spec.kind in ("choice", "model"):
            choices = self._model_choices(value) if spec.kind == "model" else spec.choices
            return Select(
                [(choice, choice) for choice in choices],
                value=value,
                allow_blank=False,
                compact=True,
                id=widget_id,
                classes="form-editor",
            )
        return OrderedInput(
            field_text(spec, value),
            validators=[FieldValidator(spec.name)],
            validate_on=["changed", "blur"],
            compact=True,
            id=widget_id,
            classes="form-editor",
        )

    def _label_text(self, name: str) -> str:
        if name == self.current:
            mark = CURRENT_MARK
        elif name in self.unused:
            mark = UNUSED_MARK
        else:
            mark = " " * len(CURRENT_MARK)
        return mark + field_label(name) + (SEARCH_MARK if name in self._search else "")

    def _show_label(self, name: str) -> None:
        for label in self.query(f"#label-{name}").results(Label):
            label.update(self._label_text(name))

    def _model_choices(self, value: str) -> tuple[str, ...]:
        """The model dropdown's entries: the registry's models, the factory the app was
        started with (``--model REF``), and ``value`` when it names another factory (a
        loaded file's: shown, and refused with the reason when a run starts)."""
        factory: str | None = getattr(self.app, "model_factory", None)
        extra = [name for name in (factory, value) if name and name not in MODELS]
        return (*MODELS, *dict.fromkeys(extra))

    def editor(self, name: str) -> Widget:
        """The editor of field ``name``: a ``Switch``, a ``Select`` or an ``Input``."""
        return self.query_one(f"#field-{name}")

    def texts(self) -> dict[str, str]:
        """Every field as text, the way ``parse_text`` reads it."""
        values = {}
        for spec in FIELDS.values():
            widget = self.editor(spec.name)
            if isinstance(widget, Switch):
                values[spec.name] = "true" if widget.value else "false"
            elif isinstance(widget, Select):
                values[spec.name] = "" if widget.is_blank() else str(widget.value)
            else:
                assert isinstance(widget, Input)
                values[spec.name] = widget.value
        return values

    def focus_field(self, name: str) -> None:
        """Put the cursor in field ``name``'s editor (shown, scrolled into view)."""
        editor = self.editor(name)
        editor.focus()
        self.call_after_refresh(editor.scroll_visible)

    def partial_config(self, names: tuple[str, ...], base: TrainConfig) -> TrainConfig | None:
        """``base`` with the fields ``names`` as typed, or None when they do not make a
        valid config with it: what the model summary needs while another field is bad."""
        texts = self.texts()
        config, _ = parse_texts({name: texts[name] for name in names}, base=base)
        return config

    def load(self, config: TrainConfig) -> None:
        """Show ``config`` in every field (a preset, a loaded file)."""
        with self.prevent(Input.Changed, Select.Changed, Switch.Changed):
            for spec in FIELDS.values():
                value = getattr(config, spec.name)
                widget = self.editor(spec.name)
                if isinstance(widget, Switch):
                    widget.value = bool(value)
                elif isinstance(widget, Select):
                    if spec.kind == "model":  # a file may name a factory not offered yet
                        widget.set_options((c, c) for c in self._model_choices(value))
                    widget.value = value
                else:
                    assert isinstance(widget, Input)
                    widget.value = field_text(spec, value)
        self.check()
        if self.current is not None:  # its help follows the new values
            name = self.current
            self.post_message(self.FieldFocused(FIELDS[name], False, self.unused.get(name)))

    def check(self, *, edited: bool = False) -> None:
        """Validate every field and the whole config; show problems and the fields that
        have no effect; post ``Changed`` (``edited``: after a change typed in a field)."""
        texts = self._checked = self.texts()
        config, problems = parse_texts(texts)
        if config is not None:  # the TensorBoard folder, as a run would find it
            problems = tensorboard_problems(config.tensorboard)
            config = None if problems else config
        by_field: dict[str, list[str]] = {}
        for problem in problems:
            by_field.setdefault(field_of(problem) or "", []).append(problem)
        for spec in FIELDS.values():
            own = by_field.get(spec.name, [])
            error = self.query_one(f"#error-{spec.name}", Static)
            error.update("\n".join("✗ " + p.split(":", 1)[1].strip() for p in own))
            error.set_class(bool(own), "-shown")
            self.editor(spec.name).set_class(bool(own), "-problem")
        unused = {n: why for n in FIELDS if (why := unused_reason(n, texts)) is not None}
        changed = set(unused) ^ set(self.unused)
        for name in changed:
            self.query_one(f"#row-{name}").set_class(name in unused, "-unused")
        if self.current is not None and unused.get(self.current) != self.unused.get(self.current):
            focused = self.app.focused
            if focused is not None and focused.id == f"field-{self.current}":
                self.post_message(
                    self.FieldFocused(FIELDS[self.current], unused=unused.get(self.current))
                )
        self.unused = unused
        for name in changed:  # the label's mark follows
            self._show_label(name)
        self.config, self.problems = config, problems
        # Made and posted from the form's own queue: a message made while another
        # widget's handler runs (the pane's, applying a preset) counts as that widget's,
        # and Textual stops it there, before the app (which recomputes the summary).
        self.call_later(lambda: self.post_message(self.Changed(self, config, problems, edited)))

    def on_mount(self) -> None:
        self.check()
        self._check_search()

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def _edited(self, event: Message) -> None:
        event.stop()
        if isinstance(event, Select.Changed) and event.select.id == "device-gpus":
            self._gpu_chosen(event.select)
            return
        if isinstance(event, Input.Changed) and (event.input.id or "").startswith("search-"):
            name = (event.input.id or "").removeprefix("search-")
            if name in self._search and name not in self._retyped:
                self._search[name] = event.value
                self._check_search()
            return
        # Each editor posts Changed for its first value as it mounts (41 at start-up), all
        # after the mount's own check: a check of the same texts would change nothing.
        if self.texts() != self._checked:
            self.check(edited=True)

    def show_gpus(self, gpus: Sequence[GpuReading]) -> None:
        """Offer the visible GPUs under the device field, each with its free memory
        (``cuda:0  H200  120.3 GiB free``); choosing one sets the field to ``cuda:N``.
        Without GPUs the row is hidden. An open list is left as it is."""
        options = [
            (device_option(gpu), f"cuda:{gpu.cuda}")
            for gpu in sorted(gpus, key=lambda gpu: gpu.cuda or 0)
            if gpu.cuda is not None
        ]
        self.query_one("#row-device-gpus").display = bool(options)
        select = self.query_one("#device-gpus", Select)
        if select.expanded or options == self._gpu_options:
            return
        self._gpu_options = options
        with self.prevent(Select.Changed):
            select.set_options(options)

    def _gpu_chosen(self, select: Select[Any]) -> None:
        if select.is_blank():
            return
        editor = self.editor("device")
        assert isinstance(editor, Input)
        editor.value = str(select.value)  # its Changed checks the form
        with self.prevent(Select.Changed):
            select.clear()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        widget_id = event.widget.id or ""
        name = widget_id.removeprefix("field-").removeprefix("search-")
        if name not in FIELDS:
            return
        self._make_current(name)
        search = widget_id.startswith("search-")
        self.post_message(self.FieldFocused(FIELDS[name], search, self.unused.get(name)))

    def _make_current(self, name: str) -> None:
        before, self.current = self.current, name
        for other in {before, name} - {None}:
            assert other is not None
            self._show_label(other)
            self.query_one(f"#row-{other}").set_class(other == name, "-current")

    def action_leave_field(self) -> None:
        """Hand the keys back to the pane, so 1-5, s and q work again; the field stays
        marked, and tab carries on from it."""
        self.focus()

    def action_next_field(self, direction: int) -> None:
        """tab (1), shift+tab (-1), enter (0): from the form itself, the field after,
        before or at the one left; from a field, the next or previous as usual."""
        if self.app.focused is not self or self.current is None:
            if direction > 0:
                self.screen.focus_next()
            elif direction < 0:
                self.screen.focus_previous()
            elif self.app.focused is self:
                self.focus_field(next(iter(FIELDS)))
            return
        chain = [w for w in self.screen.focus_chain if self in w.ancestors]
        left = self.editor(self.current)
        if left not in chain:
            left.focus()
            return
        index = (chain.index(left) + direction) % len(chain)
        chain[index].focus()
        self.call_after_refresh(chain[index].scroll_visible)

    # --- the fields marked for a search ------------------------------------------------
    #
    # ``_search`` is the state, changed at once by the methods below; the rows under the
    # fields follow it in ``_show_search`` (mounting is asynchronous), one pass at a time.

    @property
    def searched(self) -> list[str]:
        """The names of the marked fields, in ``FIELDS`` order."""
        return [name for name in FIELDS if name in self._search]

    def search_texts(self) -> dict[str, str]:
        """Each marked field's search entry as typed, in ``FIELDS`` order."""
        return {name: self._search[name] for name in self.searched}

    def search_problems(self) -> list[str]:
        """What is wrong with the marked fields' entries, one line each naming the field."""
        return self._parse_search()[1]

    def marked_space(self) -> SearchSpace | None:
        """The marked fields as a space; None when none is marked. ``ConfigError`` lists
        the problems when an entry is bad."""
        params, problems = self._parse_search()
        if problems:
            raise ConfigError(problems)
        return SearchSpace(params) if params else None

    def mark_search(self, name: str, text: str | None = None, *, focus: bool = True) -> None:
        """Mark field ``name`` for the search with the entry ``text`` (None: a first guess,
        ``first_search_text``) and show its row; ``focus``: put the cursor there once it
        shows. ``ConfigError`` when the field cannot be searched."""
        if name not in SEARCHABLE:
            parse_search_text(name, "", source=SEARCH_SOURCE)  # raises, saying why
        if text is None:
            current = self.config if self.config is not None else self._initial
            text = first_search_text(FIELDS[name], getattr(current, name))
        self._search[name] = text
        self._retyped.add(name)
        self._focus_wanted = name if focus else None
        self._search_changed()

    def unmark_search(self, name: str) -> None:
        """Stop searching field ``name``: its row goes, its name loses the mark."""
        if self._search.pop(name, None) is not None:
            self._search_changed()

    def load_search(self, space: SearchSpace | None) -> None:
        """Mark exactly ``space``'s fields, with its entries (None: unmark every field)."""
        params = space.params if space is not None else {}
        self._search = {name: search_text(name, param) for name, param in params.items()}
        self._retyped.update(self._search)
        self._focus_wanted = None
        self._search_changed()

    def _search_changed(self) -> None:
        self._check_search()
        self.call_later(self._show_search)

    def _parse_search(self) -> tuple[dict[str, Param], list[str]]:
        params: dict[str, Param] = {}
        problems: list[str] = []
        for name, text in self.search_texts().items():
            try:
                params[name] = parse_search_text(name, text, source=SEARCH_SOURCE)
            except ConfigError as exc:
                problems.extend(exc.problems)
        return params, problems

    async def _show_search(self) -> None:
        async with self._rows_lock:
            shown = {
                (row.id or "").removeprefix("search-row-") for row in self.query(".search-row")
            }
            for name in shown - set(self._search):
                await self.query(f"#search-row-{name}, #search-error-{name}").remove()
                self._show_label(name)
            for name in self.searched:
                text = self._search[name]
                if name not in shown:
                    await self.mount(*self._search_row(name, text), after=f"#error-{name}")
                    self._show_label(name)
                elif name in self._retyped:
                    editor = self.query_one(f"#search-{name}", Input)
                    if editor.value != text:
                        editor.value = text
                self._retyped.discard(name)
            self._check_search(post=False)
            wanted, self._focus_wanted = self._focus_wanted, None
            if wanted in self._search:
                self.query_one(f"#search-{wanted}", Input).focus()

    def _search_row(self, name: str, text: str) -> tuple[Widget, Widget]:
        row = Horizontal(
            Label(SEARCH_LABEL, classes="form-label search-label"),
            OrderedInput(
                text,
                placeholder="1e-4..0.1 log  or  64, 128",
                compact=True,
                id=f"search-{name}",
                classes="form-editor search-editor",
            ),
            Label(SEARCH_SYNTAX, classes="form-help", markup=False),
            classes="form-row search-row",
            id=f"search-row-{name}",
        )
        return row, Static("", id=f"search-error-{name}", classes="form-error")

    def _check_search(self, *, post: bool = True) -> None:
        """Show each marked field's problem under its row; post ``SearchChanged``."""
        params, problems = self._parse_search()
        for name in self.searched:
            start = f"{SEARCH_SOURCE} {name}:"
            own = [search_problem_text(name, p) for p in problems if p.startswith(start)]
            for error in self.query(f"#search-error-{name}").results(Static):
                error.update("\n".join("✗ " + p for p in own))
                error.set_class(bool(own), "-shown")
            for editor in self.query(f"#search-{name}").results(Input):
                editor.set_class(bool(own), "-problem")
        if post:
            space = SearchSpace(params) if params and not problems else None
            self.post_message(self.SearchChanged(self, space, problems))

    def action_toggle_search(self) -> None:
        """Mark the focused field for the search, or unmark it (ctrl+t)."""
        focused = self.app.focused
        widget_id = (focused.id or "") if focused is not None else ""
        if widget_id.startswith("search-"):
            name = widget_id.removeprefix("search-")
            self.editor(name).focus()
            self.unmark_search(name)
            return
        if not widget_id.startswith("field-"):
            self.notify("Move to a field (tab), then ctrl+t marks it for a search.", timeout=4)
            return
        name = widget_id.removeprefix("field-")
        if name in self._search:
            self.unmark_search(name)
            return
        try:
            self.mark_search(name)
        except ConfigError as exc:
            why = exc.problems[0].split(";")[0].removeprefix(f"{SEARCH_SOURCE} ")
            self.notify(why, severity="warning", timeout=6)
