"""``ProbBars``: a model's softmax probabilities for one image, one bar per class.

The predicted class is marked ``▶``, the true class ``✓`` (so it reads without colour
too); the predicted bar is green when right and red when wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from tui.widgets.class_bars import bar
from tui.widgets.lean import LeanLines


class ProbBars(LeanLines, Widget):
    DEFAULT_CSS = """
    ProbBars {
        height: auto;
        width: 1fr;
    }
    ProbBars > .prob-bars--bar {
        color: $accent;
    }
    ProbBars > .prob-bars--right {
        color: $success;
    }
    ProbBars > .prob-bars--wrong {
        color: $error;
    }
    ProbBars > .prob-bars--title {
        text-style: bold;
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "prob-bars--bar",
        "prob-bars--right",
        "prob-bars--wrong",
        "prob-bars--title",
    }

    def __init__(self, title: str = "softmax probabilities", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self.names: list[str] = []
        self.probabilities: list[float] = []
        self.true_class = -1
        self.predicted = -1

    def show(
        self, names: Sequence[str], probabilities: Sequence[float], true_class: int, predicted: int
    ) -> None:
        resized = len(names) != len(self.names)
        self.names = list(names)
        self.probabilities = [float(p) for p in probabilities]
        self.true_class, self.predicted = true_class, predicted
        self.refresh(layout=resized)

    def clear(self) -> None:
        self.names, self.probabilities = [], []
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return 1 + max(len(self.names), 1)

    def render(self) -> Text:
        text = Text(
            self.title,
            style=self.get_component_rich_style("prob-bars--title"),
            no_wrap=True,
            overflow="ellipsis",
        )
        if not self.names:
            return text
        name_width = max(len(n) for n in self.names)
        bar_width = max(self.size.width - name_width - 13, 1)
        plain = self.get_component_rich_style("prob-bars--bar")
        right = self.get_component_rich_style("prob-bars--right")
        wrong = self.get_component_rich_style("prob-bars--wrong")
        for i, (name, p) in enumerate(zip(self.names, self.probabilities, strict=True)):
            predicted = i == self.predicted
            style = (right if i == self.true_class else wrong) if predicted else plain
            text.append("\n▶ " if predicted else "\n  ", style="bold" if predicted else "")
            text.append(name.ljust(name_width), style="bold" if predicted else "")
            text.append(" " + bar(p, bar_width), style=style)
            text.append(f" {p:6.1%}")
            text.append(" ✓" if i == self.true_class else "  ", style="bold")
        return text
