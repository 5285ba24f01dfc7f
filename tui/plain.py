"""Text from files, shown in the app as it is: never parsed as markup.

Run ids are folder names, reasons come from ``status.json``, class names from a
classes file or a checkpoint: a ``[/]`` in any of them would crash a markup parser and
an ``[old]`` would vanish. ``plain`` wraps such a string for a widget that parses
``str`` as markup (a DataTable cell, an OptionList prompt); ``markup`` fills the app's
own markup template with values taken as plain text (Textual's ``$name`` variables).
Both show control characters as ``?`` (``tui.output.printable``).
"""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from tui.output import printable


def plain(text: str, style: str = "") -> Text:
    """``text`` as a Rich ``Text``, shown as written (control characters as ``?``)."""
    return Text(printable(text), style=style)


def markup(template: str, **values: object) -> Content:
    """``template``, the app's own markup, with each ``$name`` replaced by ``values[name]``
    as plain text: ``markup("[b $error]failed: $why[/]", why=reason)``."""
    return Content.from_markup(template, **{k: printable(str(v)) for k, v in values.items()})
