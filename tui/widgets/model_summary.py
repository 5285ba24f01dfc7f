"""``ModelSummaryView``: the model's layers, output shapes and parameter counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from engine.models import ModelSummary


class ModelSummaryView(Static):
    """Shows a ``ModelSummary`` (computed in a worker), or why there is none."""

    DEFAULT_CSS = """
    ModelSummaryView {
        height: auto;
    }
    """

    summary: ModelSummary | None = None

    def show_pending(self) -> None:
        """Say the summary is being worked out."""
        self.summary = None
        self.update(Text("Model: working it out…", style="dim"))

    def show_problem(self, text: str) -> None:
        """Say why there is no summary (``text``: the engine's message)."""
        self.summary = None
        self.update(Text(f"Model: {text}", style="dim"))

    def show(self, summary: ModelSummary) -> None:
        """Show the layers, their output shapes (batch dimension dropped) and parameters."""
        self.summary = summary
        table = Table(
            box=None,
            padding=(0, 1),
            pad_edge=False,
            show_edge=False,
            header_style="bold",
            expand=False,
        )
        table.add_column("layer", no_wrap=True)
        table.add_column("output", no_wrap=True)
        table.add_column("params", justify="right", no_wrap=True)
        for layer in summary.layers:
            # Drop the batch dimension: the summary runs on a batch of one.
            shape = "x".join(str(d) for d in layer.output_shape[1:])
            table.add_row(layer.type, shape, f"{layer.parameters:,}" if layer.parameters else "")
        title = Text.assemble(("Model", "bold"), f"  {summary.total_parameters:,} parameters")
        self.update(Group(title, table))
