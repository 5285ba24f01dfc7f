"""``LeanLines``: a widget mixin that joins neighbouring segments of one look.

Textual writes every segment with its full colour codes (30-40 bytes). Each segment
of a widget's line also carries its own mouse offset, so segments that look the same
are never joined, and renderers such as plotext's split a line into many of them.
Dropping the offsets (these widgets take no clicks) and joining what then matches
halves the bytes of a repaint, which matters over a slow SSH link.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class LeanLines(Widget):
    """Mix in before a widget class that needs no mouse: ``class Chart(LeanLines, Plot)``."""

    def render_lines(self, crop: Region) -> list[Strip]:
        return [lean(strip) for strip in super().render_lines(crop)]


def lean(strip: Strip) -> Strip:
    """``strip`` without mouse offsets, neighbouring segments of one look joined."""
    # ``clear_meta_and_links`` (unlike ``Strip.discard_meta``) also forgets the cached
    # hash, without which equal-looking styles do not compare equal.
    plain = [
        Segment(text, style.clear_meta_and_links() if style else style, control)
        for text, style, control in strip
    ]
    return Strip(Segment.simplify(plain), strip.cell_length)
