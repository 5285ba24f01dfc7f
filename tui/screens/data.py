"""The Data pane: where the data came from, what the dataset check found, its class balance,
and a grid of samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widgets import Static

from engine.data import luminance
from tui.output import printable
from tui.plain import markup
from tui.sample_view import SampleBrowser, augment_preview
from tui.screens.pane import Pane
from tui.screens.zoom import ZoomScreen
from tui.widgets.class_bars import ClassBars
from tui.widgets.image import render_mode
from tui.widgets.image_grid import ImageGrid, Tile

if TYPE_CHECKING:
    from engine import ImageData, Split, TrainConfig
    from engine.check import DataCheck

SPLITS = ("train", "test")
# Lines of a data error shown above the samples; the rest are counted.
ERROR_LINES = 8


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def check_phrases(check: DataCheck) -> list[str]:
    """What the dataset check found, one short phrase per kind of finding: "20
    duplicates", "1 label conflict", "1 note"; for clean data, that there is nothing to say."""
    phrases = ["refused: fewer than two classes"] if check.refusal else []
    empty = {c for classes in check.empty.values() for c in classes}
    if empty:
        phrases.append(_count(len(empty), "empty class", "empty classes"))
    if check.duplicates:
        phrases.append(_count(check.duplicates, "duplicate", "duplicates"))
    if check.conflicting:
        phrases.append(_count(check.conflicting, "label conflict", "label conflicts"))
    for split, count in check.leaked.items():
        if count:
            name = "validation" if split == "val" else split
            copied = _count(count, f"{name} image", f"{name} images")
            phrases.append(f"{copied} copied from training")
    if not (check.duplicates or check.conflicting or any(check.leaked.values())):
        phrases.append("no duplicates, label conflicts or test copies of training")
    if check.notes:
        phrases.append(_count(len(check.notes), "note", "notes"))
    return phrases


def check_line(check: DataCheck, width: int) -> str:
    """The dataset check in one line of at most ``width`` columns where it can be, after
    "Check ": its phrases (``check_phrases``) while they fit, then "+N more (c)"; "c:
    details" where all fit but there is more to read than the line says."""
    phrases = check_phrases(check)
    room = width - len("Check ")
    for shown in range(len(phrases), 0, -1):
        line = " · ".join(phrases[:shown])
        if shown < len(phrases):
            line += f" · +{len(phrases) - shown} more (c)"
        elif check.problems() or check.notes:
            line += " · c: details"
        if len(line) <= room or shown == 1:
            return line
    return ""


def tile_caption(index: int, name: str) -> str:
    """A sample's caption under its image: its index in the split first ("#34,512"), then
    its class name, which the grid cuts ("…") where the tile is too narrow."""
    return f"#{index:,} {name}"


def data_description(config: TrainConfig) -> str:
    """The dataset ``config`` names, in words: "Fashion-MNIST", "the custom dataset
    labels.csv (images in pics)", ..."""
    if config.data == "custom":
        return f"the custom dataset {config.custom_csv} (images in {config.custom_images})"
    if config.data == "csv-pixels":
        return f"the pixel CSV {config.custom_csv}"
    if config.data == "image-folder":
        return f"the image folder {config.custom_images}"
    return f"Fashion-MNIST from {config.data_dir}" if config.data_dir else "Fashion-MNIST"


class DataPane(Pane):
    """Browse the samples: reshuffle, page, filter by class, switch split, augment, zoom.

    The grid shows as many images as its area holds (``ImageGrid``); a page is that many.
    The filtered class is marked in the class balance. Augmentation is previewed on the
    training split only, the one it is applied to: ``a`` on the test split says so, and
    switching to the test split turns it off.
    """

    DEFAULT_FOCUS = "#samples"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "shuffle", "Shuffle"),
        Binding("n,pagedown", "turn(1)", "Page", key_display="n/b"),
        Binding("b,pageup", "turn(-1)", "Page back", show=False),
        Binding("f", "filter(1)", "Class"),
        Binding("F", "filter(-1)", "Class back", show=False),
        Binding("t", "switch_split", "Split"),
        Binding("a", "augment", "Augment"),
        Binding("z,enter", "zoom", "Zoom"),
        Binding("c", "check_details", "Check", show=False),
    ]

    def __init__(
        self, *, seed: int = 0, image_mode: str | None = None, id: str | None = None
    ) -> None:
        """``image_mode``: "blocks" or "ascii" forces how images are drawn; None detects."""
        super().__init__(id=id)
        self.seed = seed
        self.image_mode = image_mode
        self.data: ImageData | None = None
        self.split = "train"
        self.browsers: dict[str, SampleBrowser] = {}
        self.augment = False
        self.crop_padding = 2
        self._augment_round = 0
        self._capacity = 1
        # What the dataset check found on the data shown (None while it runs), and
        # whether it is shown in full (``c``) rather than as one line.
        self.check: DataCheck | None = None
        self.check_details = False

    def compose(self) -> ComposeResult:
        yield Static("Loading the data…", id="data-source")
        yield Static("", id="data-check")
        with Horizontal(id="data-body"):
            with Vertical(id="data-side"):
                yield Static("", id="data-sizes")
                yield ClassBars("Class balance", marks=True, id="class-balance")
            yield ImageGrid(id="samples")
        yield Static("", id="data-status")

    def on_mount(self) -> None:
        self.grid.mode = render_mode(self.app, self.image_mode)
        if self.data is None and not self.grid.message:
            self.grid.show_message("Loading the data…")

    @property
    def grid(self) -> ImageGrid:
        return self.query_one(ImageGrid)

    # --- attributes down ------------------------------------------------------------

    def set_data(self, data: ImageData, config: TrainConfig | None = None) -> None:
        """Show ``data``, and the dataset check's findings on it once they are known;
        ``config`` (the settings it was loaded with) keys the check's cache
        (``engine.identity.data_identity``), so unchanged data is not checked again."""
        self.data = data
        self.grid.set_image_shape(data.image_shape)
        self.browsers = {
            name: SampleBrowser(getattr(data, name).labels, seed=self.seed + i)
            for i, name in enumerate(SPLITS)
        }
        for browser in self.browsers.values():
            browser.set_capacity(self._capacity)
        notice = ""
        if data.source.is_sample:
            notice = "\n[b $warning]This is the bundled sample, not the full set.[/]"
        self.query_one("#data-source", Static).update(
            markup("[b]Source[/] $source" + notice, source=data.source.describe())
        )
        self.check = None
        self.query_one("#data-check", Static).update("Checking the data…")
        self.run_worker(
            lambda: self._check(data, config), thread=True, exclusive=True, group="data-check"
        )
        self.refresh_view()

    def _check(self, data: ImageData, config: TrainConfig | None) -> None:
        """Run the dataset check (in a worker thread; cached by the data's identity when
        ``config`` is known) and show what it found."""
        from engine.check import check_data
        from engine.identity import data_identity

        identity = None
        if config is not None:
            try:
                identity = data_identity(config, data)
            except OSError:
                identity = None  # a file that cannot be looked at: checked, not cached
        check = check_data(data, identity)
        if self.data is data:
            self.app.call_from_thread(self.show_check, data, check)

    def show_check(self, data: ImageData, check: DataCheck) -> None:
        """Show the dataset check's findings on ``data`` (unless other data is shown by
        now): one line that fits the pane (``check_line``), or with ``c`` every finding
        on a line of its own (``engine.check.DataCheck.findings``); the tooltip has them
        all."""
        if self.data is data:
            self.check = check
            self._show_check()

    def _show_check(self) -> None:
        check = self.check
        # The check's thread may finish as the app closes, its widgets already gone.
        static = next(iter(self.query("#data-check").results(Static)), None)
        if check is None or static is None:
            return
        findings = check.findings()
        static.tooltip = Text("\n".join(printable(line) for line in findings))
        static.set_class(self.check_details, "-details")
        if self.check_details:
            # One $name per line: markup() makes each value one printable line.
            lines = "\n".join(f"$f{i}" for i in range(len(findings)))
            values = {f"f{i}": line for i, line in enumerate(findings)}
            static.update(markup("[b]Check[/] " + lines, **values))
        else:
            width = static.content_size.width or max(self.size.width - 2, 0) or 78
            static.update(markup("[b]Check[/] $line", line=check_line(check, width)))

    def action_check_details(self) -> None:
        """Show the dataset check's findings in full, or again as one line."""
        self.check_details = not self.check_details
        self._show_check()
        # The check now takes more or fewer lines: lay the grid out for its new height.
        self.call_after_refresh(lambda: self.grid.set_image_shape(self.grid.image_shape))

    def show_loading(self, what: str) -> None:
        """Say that ``what`` (e.g. "the custom dataset labels.csv") is being loaded."""
        self._forget_data()
        self.query_one("#data-source", Static).update(markup("Loading $what…", what=what))
        self.grid.show_message(f"Loading {what}…")

    def show_error(self, reason: str) -> None:
        """Say why there is no data: ``reason``'s first ``ERROR_LINES`` lines, the rest
        counted (a dataset's problem list can run to fifty)."""
        self._forget_data()
        lines = reason.splitlines() or [""]
        if len(lines) > ERROR_LINES:
            more = len(lines) - ERROR_LINES + 1
            lines = [*lines[: ERROR_LINES - 1], f"  ... and {more} more lines"]
        self.query_one("#data-source", Static).update(
            markup("[b $error]No data:[/] $reason", reason="\n".join(lines))
        )
        self.grid.show_message("The Data pane needs a dataset; see above.")

    def _forget_data(self) -> None:
        self.data = None
        self.check = None
        self.query_one("#data-check", Static).update("")
        self.browsers = {}
        self.query_one("#data-sizes", Static).update("")
        self.query_one("#class-balance", ClassBars).clear()
        self.query_one("#data-status", Static).update("")

    # --- the view -------------------------------------------------------------------

    @property
    def current_split(self) -> Split:
        assert self.data is not None
        return getattr(self.data, self.split)

    def refresh_view(self) -> None:
        data = self.data
        if data is None:
            return
        browser = self.browsers[self.split]
        split = self.current_split
        self.query_one("#data-sizes", Static).update(
            f"[b]train[/] {len(data.train):,}\n[b]test[/]  {len(data.test):,}"
        )
        counts = split.class_counts(data.num_classes)
        balance = self.query_one("#class-balance", ClassBars)
        balance.title = f"{self.split}: class balance"
        balance.show(
            data.classes, counts, [f"{c:,}" for c in counts], highlight=browser.class_filter
        )
        indices = browser.visible()
        # Colour images (color=rgb) are shown as their luminance: the grid draws grey.
        images = luminance(split.images[indices])
        if self.augment and len(indices):
            rng = np.random.default_rng((self.seed, self._augment_round))
            images = augment_preview(images, rng, crop_padding=self.crop_padding)
        labels = split.labels[indices]
        self.grid.show(
            [
                Tile(image, tile_caption(index, data.classes[label]))
                for image, label, index in zip(
                    images, labels.tolist(), indices.tolist(), strict=True
                )
            ]
        )
        if not len(indices):
            self.grid.show_message("No images of this class in this split.")
        shown = (
            "all classes" if browser.class_filter is None else data.classes[browser.class_filter]
        )
        augmentation = "augmentation [b]on[/]" if self.augment else "augmentation off"
        if self.split != "train":
            augmentation = "never augmented"  # training augments the train split only
        self.query_one("#data-status", Static).update(
            markup(
                f"[b]{self.split}[/] · $shown ({browser.count:,}) · page {browser.page + 1:,}"
                f"/{browser.pages:,} · {augmentation}",
                shown=shown,
            )
        )

    def selected_tile(self) -> tuple[np.ndarray, int, int] | None:
        """The selected image as shown, its index in the split, and its label."""
        if self.data is None or not self.grid.tiles:
            return None
        index = int(self.browsers[self.split].visible()[self.grid.selected])
        tile = self.grid.tiles[self.grid.selected]
        return tile.pixels, index, int(self.current_split.labels[index])

    # --- layout ---------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        if self.check is not None and not self.check_details:
            self.call_after_refresh(self._show_check)  # the check's line fits the new width

    @on(ImageGrid.CapacityChanged)
    def _capacity_changed(self, event: ImageGrid.CapacityChanged) -> None:
        self._capacity = event.capacity
        for browser in self.browsers.values():
            browser.set_capacity(event.capacity)
        self.refresh_view()

    # --- actions --------------------------------------------------------------------

    def action_shuffle(self) -> None:
        if self.browsers:
            self.browsers[self.split].shuffle()
            self._augment_round += 1
            self.refresh_view()

    def action_turn(self, pages: int) -> None:
        if self.browsers:
            self.browsers[self.split].turn(pages)
            self.refresh_view()

    def action_filter(self, step: int) -> None:
        if self.data is None:
            return
        # Cycle: all classes, then each class in turn; both splits follow, so switching
        # split keeps showing the same class.
        options: list[int | None] = [None, *range(self.data.num_classes)]
        current = options.index(self.browsers[self.split].class_filter)
        for browser in self.browsers.values():
            browser.set_filter(options[(current + step) % len(options)])
        self.refresh_view()

    def action_switch_split(self) -> None:
        if self.data is not None:
            self.split = "test" if self.split == "train" else "train"
            # The status line says the test split is "never augmented": no toast (one
            # would cover the zoom's hint when z follows).
            self.augment = self.augment and self.split == "train"
            self.refresh_view()

    def action_augment(self) -> None:
        if self.data is None:
            return
        if self.split != "train":
            self.app.notify(
                f"The {self.split} split is never augmented: t for train.",
                severity="warning",
                timeout=3,
            )
            return
        self.augment = not self.augment
        self._augment_round += 1
        self.refresh_view()

    def action_zoom(self) -> None:
        chosen = self.selected_tile()
        if chosen is None or self.data is None:
            return
        pixels, index, label = chosen
        detail = f"{self.split} image #{index:,}" + (" (augmented)" if self.augment else "")
        self.app.push_screen(ZoomScreen(pixels, self.data.classes[label], detail, self.grid.mode))
