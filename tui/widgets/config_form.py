"""``ConfigForm``: a form generated from ``TrainConfig``'s field specs.

Inputs for numbers, lists and text, a select for each choice, a switch for each
flag. Every field is checked with the engine's own ``parse_text`` (the validator the
CLI flags use) and the whole form with ``parse_texts`` (what ``TrainConfig.with_text``
uses), so the cross-field rules and the messages are the engine's too. A problem is
shown under its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.events import DescendantFocus
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from engine.config import FIELDS, FieldSpec, TrainConfig, parse_text, parse_texts
from engine.errors import ConfigError

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


def field_of(problem: str) -> str | None:
    """The field a problem names (every engine problem starts ``name: ...``)."""
    name = problem.split(":", 1)[0].strip()
    return name if name in FIELDS else None


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
        Binding("escape", "leave_field", "Leave field", show=False)
    ]

    @dataclass
    class Changed(Message):
        """The config the form now holds, or None and the problems that stop it."""

        form: ConfigForm
        config: TrainConfig | None
        problems: list[str]

    @dataclass
    class FieldFocused(Message):
        """A field's editor got the focus (the screen shows its help)."""

        spec: FieldSpec

    def __init__(self, config: TrainConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = config
        self.config: TrainConfig | None = config
        self.problems: list[str] = []

    def compose(self) -> ComposeResult:
        for group, title in GROUP_TITLES.items():
            yield Static(title, classes="form-group")
            for spec in FIELDS.values():
                if spec.group != group:
                    continue
                with Horizontal(classes="form-row"):
                    yield Label(spec.name, classes="form-label")
                    yield self._editor(spec, getattr(self._initial, spec.name))
                    # Shown beside the field only where the screen has room for it.
                    yield Label(spec.help, classes="form-help", markup=False)
                yield Static("", id=f"error-{spec.name}", classes="form-error")

    def _editor(self, spec: FieldSpec, value: Any) -> Widget:
        widget_id = f"field-{spec.name}"
        if spec.kind == "bool":
            return Switch(value=bool(value), id=widget_id, classes="form-editor")
        if spec.kind == "choice":
            return Select(
                [(choice, choice) for choice in spec.choices],
                value=value,
                allow_blank=False,
                compact=True,
                id=widget_id,
                classes="form-editor",
            )
        return Input(
            field_text(spec, value),
            validators=[FieldValidator(spec.name)],
            validate_on=["changed", "blur"],
            compact=True,
            id=widget_id,
            classes="form-editor",
        )

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

    def load(self, config: TrainConfig) -> None:
        """Show ``config`` in every field (a preset, a loaded file)."""
        with self.prevent(Input.Changed, Select.Changed, Switch.Changed):
            for spec in FIELDS.values():
                value = getattr(config, spec.name)
                widget = self.editor(spec.name)
                if isinstance(widget, Switch):
                    widget.value = bool(value)
                elif isinstance(widget, Select):
                    widget.value = value
                else:
                    assert isinstance(widget, Input)
                    widget.value = field_text(spec, value)
        self.check()

    def check(self) -> None:
        """Validate every field and the whole config; show problems; post ``Changed``."""
        config, problems = parse_texts(self.texts())
        by_field: dict[str, list[str]] = {}
        for problem in problems:
            by_field.setdefault(field_of(problem) or "", []).append(problem)
        for spec in FIELDS.values():
            own = by_field.get(spec.name, [])
            error = self.query_one(f"#error-{spec.name}", Static)
            error.update("\n".join("✗ " + p.split(":", 1)[1].strip() for p in own))
            error.set_class(bool(own), "-shown")
            self.editor(spec.name).set_class(bool(own), "-problem")
        self.config, self.problems = config, problems
        self.post_message(self.Changed(self, config, problems))

    def on_mount(self) -> None:
        self.check()

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def _edited(self, event: Message) -> None:
        event.stop()
        self.check()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        widget_id = event.widget.id or ""
        if widget_id.startswith("field-"):
            self.post_message(self.FieldFocused(FIELDS[widget_id.removeprefix("field-")]))

    def action_leave_field(self) -> None:
        """Hand the keys back to the pane, so 1-5, s and q work again."""
        self.focus()
