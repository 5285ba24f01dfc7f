"""The Inspect pane: a run's model on the test set, one image at a time.

Predictions for the whole test split (the run's own test subset) are made once per
run in a thread worker, with the run's best checkpoint: torch never runs on the UI
thread. Then browsing is numpy indexing: every image, the mistakes only, or the
images of one confusion-matrix cell (true class, predicted class), in the dataset's
order or the most confident answers first (``o``), one at a time or as a grid of
thumbnails (``g``). An image is named by its index in the whole test split, also for a
run that tested on a subset of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.events import Resize
from textual.message import Message
from textual.widgets import ContentSwitcher, Static
from textual.worker import get_current_worker

from engine.data import luminance, subset_indices
from engine.errors import EngineError
from engine.runs import Run, RunInfo, list_runs, run_info
from tui.plain import markup
from tui.screens.pane import Pane
from tui.screens.run_picker import RunPicker
from tui.widgets.confusion_picker import ConfusionPicker
from tui.widgets.image import HalfBlockImage, render_mode
from tui.widgets.image_grid import ImageGrid, Tile
from tui.widgets.prob_bars import ProbBars

if TYPE_CHECKING:
    from engine.data import ImageData

# Columns kept beside the image for the probabilities.
SIDE_WIDTH = 44
# (true class, predicted class): the images of one confusion-matrix cell.
Cell = tuple[int, int]
# The orders images are browsed in, and how the header names them.
ORDERS = {"dataset": "dataset order", "confidence": "most confident first"}


@dataclass(frozen=True)
class Predictions:
    """A run's model applied to its test images; numpy only, safe on the UI thread."""

    run: RunInfo
    images: np.ndarray  # uint8, N x H x W
    labels: np.ndarray  # int64, N
    predicted: np.ndarray  # int64, N
    probabilities: np.ndarray  # float32, N x classes
    classes: tuple[str, ...]
    # int64, N: each image's index in the whole test split (the run may have tested on
    # a subset of it); None: the images are the whole split, in its order.
    dataset_index: np.ndarray | None = None

    @property
    def mistakes(self) -> int:
        return int((self.labels != self.predicted).sum())

    def test_index(self, image: int) -> int:
        """The index in the whole test split of image ``image`` (0 .. N-1) of these."""
        if self.dataset_index is None:
            return image
        return int(self.dataset_index[image])

    def confidence(self) -> np.ndarray:
        """float32, N: the probability the model gave each image's predicted class."""
        return self.probabilities[np.arange(len(self.predicted)), self.predicted]

    def ordered(self, indices: np.ndarray, order: str) -> np.ndarray:
        """``indices`` (of these images) in ``order``: "dataset" keeps them as they are,
        "confidence" puts the most confident answers first (ties in dataset order).
        Raises ``ValueError`` for another order."""
        if order == "dataset":
            return indices
        if order != "confidence":
            raise ValueError(f"unknown order {order!r}: {' or '.join(ORDERS)}")
        return indices[np.argsort(-self.confidence()[indices], kind="stable")]

    def confusion_matrix(self) -> list[list[int]]:
        n = len(self.classes)
        counts = np.bincount(self.labels * n + self.predicted, minlength=n * n)
        return counts.reshape(n, n).tolist()

    def commonest_mistake(self) -> Cell:
        """The off-diagonal cell with the most images (where the confusion matrix opens)."""
        matrix = np.array(self.confusion_matrix())
        np.fill_diagonal(matrix, -1)
        t, p = np.unravel_index(int(matrix.argmax()), matrix.shape)
        return int(t), int(p)

    def select(self, shown: str | Cell) -> np.ndarray:
        """Indices of the images to browse: "all", "mistakes" or a (true, predicted) cell."""
        if shown == "all":
            return np.arange(len(self.labels))
        if shown == "mistakes":
            return np.flatnonzero(self.labels != self.predicted)
        if isinstance(shown, str):
            raise ValueError(
                f"unknown selection {shown!r}: all, mistakes or a (true, predicted) cell"
            )
        true_class, predicted = shown
        return np.flatnonzero((self.labels == true_class) & (self.predicted == predicted))


def pair_label(true_name: str, predicted: str, width: int) -> str:
    """ "true→predicted" in at most ``width`` characters where it can be: the longer
    name is shortened first, to no fewer than 2 characters and a "."."""
    full = (true_name, predicted)
    kept = [len(true_name), len(predicted)]

    def shown(i: int) -> str:
        return full[i] if kept[i] == len(full[i]) else full[i][: kept[i]].rstrip() + "."

    while len(shown(0)) + len(shown(1)) + 1 > width:
        longer = 0 if len(shown(0)) >= len(shown(1)) else 1
        if kept[longer] <= 2:
            break
        kept[longer] -= 1
    return f"{shown(0)}→{shown(1)}"


def predict_run(
    path: Path,
    data: ImageData | None,
    settings: tuple[tuple[str, object], ...] | None = None,
    model_factory: str | None = None,
) -> Predictions:
    """Load the run's test split and best model, and predict (torch: a worker only).

    ``data`` is the app's loaded data and ``settings`` what it was loaded with
    (``engine.trainer.data_settings``): used when the run trained on the same, cut to the
    run's test subset. Otherwise only the run's test split is loaded, by the loader its
    training used (``load_data(config, test_only=True)``): the training images are never
    read. Raises ``EngineError`` when the run or its data cannot be loaded.
    """
    from engine.identity import SPLIT_VERSION, run_split_version, same_test_split
    from engine.inference import Predictor
    from engine.trainer import data_settings, load_data, load_dataset

    run = Run(path)
    config = run.config()
    version = run_split_version(run)  # split as the run was made, whatever the app's data
    same = data is not None and settings is not None and data_settings(config) == settings
    same = same and (same_test_split(version, SPLIT_VERSION) or config.data == "fashion-mnist")
    # The whole split first (as load_data would load it), to know which of its images
    # the run's test subset holds.
    test_only = not (config.train_subset and config.test_subset)
    full = data if same else None
    if full is None:
        full = load_dataset(config, test_only=test_only, split_version=version)
    _, dataset_index = subset_indices(
        len(full.train), len(full.test), config.train_subset, config.test_subset, config.seed
    )
    data = load_data(config, full, test_only=True, split_version=version)
    # A run of the user's own model loads only with the factory the app was given.
    predictor = Predictor.from_run(run, which="best", model_factory=model_factory)
    prediction = predictor.predict(data.test.images)
    return Predictions(
        run_info(run),
        luminance(data.test.images),  # colour (color=rgb) is shown as its luminance
        data.test.labels.astype(np.int64),
        prediction.classes.astype(np.int64),
        prediction.probabilities,
        predictor.classes,
        dataset_index,
    )


class InspectPane(Pane, can_focus=True):
    """Test images with the model's answer: step through them, the mistakes, or a cell,
    in the dataset's order or the most confident first; one by one or as a grid."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n,right", "step(1)", "Next", key_display="n/b"),
        Binding("b,left", "step(-1)", "Back", show=False),
        Binding("m", "mistakes", "Mistakes"),
        # o is named in the header ("o: most confident first"): kept off the footer,
        # which must fit 80 columns with the app's keys.
        Binding("o", "order", "Order", show=False),
        Binding("g", "grid", "Grid"),
        Binding("c", "confusion", "Matrix"),
        Binding("r", "pick_run", "Run"),
        Binding("enter", "open", "Open", show=False),
        Binding("escape", "back", "Back", show=False),
    ]

    @dataclass
    class Predicted(Message):
        bubble: ClassVar[bool] = False
        path: Path
        result: Predictions | None
        problem: str = ""

    @dataclass
    class Listed(Message):
        bubble: ClassVar[bool] = False
        runs: list[RunInfo]

    def __init__(
        self,
        *,
        runs_dir: str = "runs",
        data: ImageData | None = None,
        data_settings: tuple[tuple[str, object], ...] | None = None,
        image_mode: str | None = None,
        id: str | None = None,
    ) -> None:
        """``runs_dir``: where the runs are; ``data``: the app's loaded data, used when a
        run trained on it, and ``data_settings`` the settings it was loaded with
        (``engine.trainer.data_settings``; a run with other settings loads its own test
        split); ``image_mode``: "blocks" or "ascii" forces how images are drawn (None
        detects). The app keeps the first three up to date (attributes down)."""
        super().__init__(id=id)
        self.runs_dir = str(runs_dir)
        self.data = data
        self.data_settings = data_settings
        self.image_mode = image_mode
        # The run to show (the Runs pane's choice, or one picked here); None: the newest.
        self.wanted: Path | None = None
        self.result: Predictions | None = None
        self.pending: Path | None = None  # being predicted
        self.shown: str | Cell = "all"
        self.order = "dataset"  # or "confidence": see Predictions.ordered
        self.indices = np.arange(0)
        self.position = 0
        self.scale = 1

    def compose(self) -> ComposeResult:
        yield Static("", id="inspect-header")
        with ContentSwitcher(initial="inspect-image-view", id="inspect-views"):
            with Horizontal(id="inspect-image-view"):
                yield Static("", id="inspect-image")
                with Vertical(id="inspect-side"):
                    yield Static("", id="inspect-caption")
                    yield ProbBars(id="inspect-probabilities")
            yield ConfusionPicker(id="inspect-confusion")
            yield ImageGrid(id="inspect-grid")
        yield Static("", id="inspect-status")

    def on_mount(self) -> None:
        self.mode = render_mode(self.app, self.image_mode)
        self.query_one(ImageGrid).mode = self.mode
        self._say("Choose a run in the Runs pane (4), or press r here.")

    def on_show(self) -> None:
        self.ensure_predictions()

    def on_resize(self, event: Resize) -> None:
        shape = self.result.images.shape[1:] if self.result is not None else (28, 28)
        height, width = int(shape[0]), int(shape[1])
        room_rows = max(event.size.height - 3, 1)
        scale = max(1, min((event.size.width - SIDE_WIDTH) // width, room_rows * 2 // height))
        if scale != self.scale:
            self.scale = scale
            self._show_image()

    def _say(self, header: str | Content) -> None:
        self.query_one("#inspect-header", Static).update(header)

    # --- choosing the run and predicting ------------------------------------------------

    def choose(self, path: Path) -> None:
        """Show this run (attribute down: the app passes on the Runs pane's choice)."""
        self.wanted = Path(path)
        if self.display and self.is_on_screen:
            self.ensure_predictions()

    def ensure_predictions(self) -> None:
        target = self.wanted
        current = self.result.run.path if self.result is not None else None
        if target is not None and target in (current, self.pending):
            return
        if target is None and (current is not None or self.pending is not None):
            return
        self.pending = target or Path()
        what = f"run {target.name}" if target else "the newest run"
        self._say(markup("Predicting the test set with $what's best checkpoint…", what=what))
        self._predict(target, self.runs_dir, self.data, self.data_settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspect-predict")
    def _predict(
        self,
        target: Path | None,
        runs_dir: str,
        data: ImageData | None,
        settings: tuple[tuple[str, object], ...] | None,
    ) -> None:
        worker = get_current_worker()
        if target is None:
            usable = [i for i in list_runs(runs_dir) if i.resumable]
            if not usable:
                self.post_message(
                    self.Predicted(
                        Path(),
                        None,
                        f"No run with a checkpoint in {runs_dir} yet: train one (s), "
                        "then come back.",
                    )
                )
                return
            target = usable[0].path
        try:
            factory: str | None = getattr(self.app, "model_factory", None)
            result = predict_run(target, data, settings, factory)
        except (EngineError, OSError, ValueError) as exc:
            self.post_message(self.Predicted(target, None, f"Cannot inspect {target.name}: {exc}"))
            return
        if not worker.is_cancelled:
            self.post_message(self.Predicted(target, result))

    @on(Predicted)
    def _predicted(self, message: Predicted) -> None:
        self.pending = None
        if message.result is None:
            self._say(markup("[b $error]$problem[/]", problem=message.problem))
            return
        result = message.result
        self.result = result
        if self.wanted is None:
            self.wanted = result.run.path
        self.shown = "all"
        picker = self.query_one(ConfusionPicker)
        picker.show(result.confusion_matrix(), result.classes)
        picker.move_to(*result.commonest_mistake())
        self.query_one(ImageGrid).set_image_shape(result.images.shape[1:3])
        self._show_header()
        self.indices = result.ordered(result.select(self.shown), self.order)
        self.position = 0
        self.query_one(ContentSwitcher).current = "inspect-image-view"
        self._focus_view()
        self._show_image()

    def _focus_view(self) -> None:
        """Give the keys to what the pane shows: the matrix, the grid, or the pane (one
        image); only when this pane's screen is the one shown and the pane is, or the
        focus is nowhere or on a view now hidden."""
        if not self.display or self.screen is not self.app.screen:
            return
        focused = self.screen.focused
        mine = focused is None or focused is self or self in focused.ancestors
        if not mine:
            return
        current = self.query_one(ContentSwitcher).current
        if current == "inspect-confusion":
            self.query_one(ConfusionPicker).focus()
        elif current == "inspect-grid":
            self.query_one(ImageGrid).focus()
        else:
            self.focus()

    def _show_header(self) -> None:
        result = self.result
        if result is None:
            return
        n = len(result.labels)
        right = 1 - result.mistakes / max(n, 1)
        other = ORDERS["confidence" if self.order == "dataset" else "dataset"]
        self._say(
            markup(
                f"[b]$id[/] · {n:,} test images · {result.mistakes:,} wrong ({right:.1%} "
                f"right)\n[b]{ORDERS[self.order]}[/] [dim]· o: {other}[/]",
                id=result.run.id,
            )
        )

    # --- browsing ---------------------------------------------------------------------

    def _what(self) -> str:
        assert self.result is not None
        if isinstance(self.shown, tuple):
            t, p = self.shown
            return f"true {self.result.classes[t]}, predicted {self.result.classes[p]}"
        return {"all": "all images", "mistakes": "mistakes only"}[self.shown]

    def _show_image(self) -> None:
        result = self.result
        status = self.query_one("#inspect-status", Static)
        if result is None:
            return
        if self.query_one(ContentSwitcher).current == "inspect-grid":
            self._show_grid()
            return
        what = self._what()
        if not len(self.indices):
            self.query_one("#inspect-image", Static).update("")
            self.query_one("#inspect-caption", Static).update(
                markup("No images here ($what).", what=what)
            )
            self.query_one(ProbBars).clear()
            status.update(
                markup("0 of 0 · $what · m: all/mistakes · c: confusion matrix", what=what)
            )
            return
        self.position %= len(self.indices)
        index = int(self.indices[self.position])
        true_class, predicted = int(result.labels[index]), int(result.predicted[index])
        self.query_one("#inspect-image", Static).update(
            HalfBlockImage(result.images[index], self.mode, self.scale)
        )
        verdict = "[b $success]✓ right[/]" if true_class == predicted else "[b $error]✗ wrong[/]"
        self.query_one("#inspect-caption", Static).update(
            markup(
                f"[b]true[/]       $true\n[b]predicted[/]  $predicted  {verdict}\n"
                f"[dim]test image #{result.test_index(index):,}[/]",
                true=result.classes[true_class],
                predicted=result.classes[predicted],
            )
        )
        self.query_one(ProbBars).show(
            result.classes, result.probabilities[index].tolist(), true_class, predicted
        )
        status.update(
            markup(
                f"[b]{self.position + 1:,} of {len(self.indices):,}[/] · $what · "
                "n/b: step · m: mistakes · c: matrix",
                what=what,
            )
        )

    @property
    def current_index(self) -> int | None:
        """The test image shown (its index in the run's test split)."""
        if self.result is None or not len(self.indices):
            return None
        return int(self.indices[self.position % len(self.indices)])

    def action_step(self, by: int) -> None:
        if self.result is None or not len(self.indices):
            return
        if self.query_one(ContentSwitcher).current == "inspect-grid":
            # A page of thumbnails at a time, from its first.
            capacity = self.query_one(ImageGrid).capacity
            pages = -(-len(self.indices) // capacity)
            page = (self.position // capacity + by) % pages
            self.position = min(page * capacity, len(self.indices) - 1)
        else:
            self.position = (self.position + by) % len(self.indices)
        self._show_image()

    def _browse(self, shown: str | Cell) -> None:
        assert self.result is not None
        self.shown = shown
        self.indices = self.result.ordered(self.result.select(shown), self.order)
        self.position = 0
        self.query_one(ContentSwitcher).current = "inspect-image-view"
        self.focus()
        self._show_image()

    def action_order(self) -> None:
        """Browse in the dataset's order, or the most confident answers first; from the
        first image of the new order."""
        if self.result is None:
            return
        self.order = "confidence" if self.order == "dataset" else "dataset"
        self.indices = self.result.ordered(self.result.select(self.shown), self.order)
        self.position = 0
        self._show_header()
        self._show_image()

    def action_grid(self) -> None:
        """Show the mistakes (or the chosen cell's images) as a grid of thumbnails, each
        with its true and predicted class; again: back to one image."""
        if self.result is None:
            return
        switcher = self.query_one(ContentSwitcher)
        if switcher.current == "inspect-grid":
            self.action_open()
            return
        if self.shown == "all":
            self._browse("mistakes")
        switcher.current = "inspect-grid"
        self.query_one(ImageGrid).focus()
        self._show_grid()

    def _show_grid(self) -> None:
        result = self.result
        assert result is not None
        grid = self.query_one(ImageGrid)
        status = self.query_one("#inspect-status", Static)
        if not len(self.indices):
            grid.show_message(f"No images here ({self._what()}).")
            status.update("g or escape: back")
            return
        capacity = grid.capacity
        self.position %= len(self.indices)
        page, selected = divmod(self.position, capacity)
        pages = -(-len(self.indices) // capacity)
        on_page = self.indices[page * capacity : (page + 1) * capacity].tolist()
        names = result.classes
        width = grid.cell_size[0]
        grid.show(
            [
                Tile(
                    result.images[i],
                    pair_label(names[result.labels[i]], names[result.predicted[i]], width),
                )
                for i in on_page
            ]
        )
        grid.selected = selected
        grid.refresh()
        status.update(
            markup(
                f"[b]page {page + 1:,}/{pages:,}[/] · {len(self.indices):,} · $what · "
                "enter: open · n/b: page · g: back",
                what=self._what(),
            )
        )

    def _grid_position(self) -> int:
        grid = self.query_one(ImageGrid)
        return (self.position // grid.capacity) * grid.capacity + grid.selected

    @on(ImageGrid.CapacityChanged)
    def _grid_resized(self, event: ImageGrid.CapacityChanged) -> None:
        if self.query_one(ContentSwitcher).current == "inspect-grid" and self.result:
            self._show_grid()

    def action_open(self) -> None:
        """In the grid: show the chosen thumbnail's image on its own (also on leaving
        the grid with g or escape)."""
        switcher = self.query_one(ContentSwitcher)
        if switcher.current != "inspect-grid" or not len(self.indices):
            return
        self.position = self._grid_position()
        switcher.current = "inspect-image-view"
        self.focus()
        self._show_image()

    def action_mistakes(self) -> None:
        if self.result is not None:
            self._browse("all" if self.shown == "mistakes" else "mistakes")

    def action_confusion(self) -> None:
        if self.result is None:
            return
        switcher = self.query_one(ContentSwitcher)
        if switcher.current == "inspect-confusion":
            switcher.current = "inspect-image-view"
            self.focus()
            self._show_image()  # the single image's hint, not the matrix's, from now
        else:
            switcher.current = "inspect-confusion"
            self.query_one(ConfusionPicker).focus()
            self.query_one("#inspect-status", Static).update(
                "arrows: choose a cell · enter: browse its images · c or escape: back"
            )

    @on(ConfusionPicker.Chosen)
    def _cell_chosen(self, message: ConfusionPicker.Chosen) -> None:
        cell = (message.true_class, message.predicted)
        if self.result is not None and not len(self.result.select(cell)):
            self.app.notify("No test image is in that cell.", severity="warning", timeout=3)
            return
        self._browse(cell)

    def action_back(self) -> None:
        if self.query_one(ContentSwitcher).current == "inspect-confusion":
            self.action_confusion()
        elif self.query_one(ContentSwitcher).current == "inspect-grid":
            self.action_grid()
        elif self.shown != "all" and self.result is not None:
            self._browse("all")

    def action_pick_run(self) -> None:
        self._list_runs(self.runs_dir)

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspect-runs")
    def _list_runs(self, runs_dir: str) -> None:
        self.post_message(self.Listed([i for i in list_runs(runs_dir) if i.resumable]))

    @on(Listed)
    def _listed(self, message: Listed) -> None:
        if not message.runs:
            self.app.notify("No run with a checkpoint yet.", severity="warning")
            return
        current = self.result.run.path if self.result is not None else None

        def picked(path: Path | None) -> None:
            # The keys come back to the pane whatever the choice (escape too): the
            # view focused before may be hidden once the new run's images show.
            if path is not None:
                self.result = None if path == current else self.result
                self.choose(path)
            self.call_after_refresh(self._focus_view)

        self.app.push_screen(RunPicker("Inspect which run?", message.runs, current), picked)
