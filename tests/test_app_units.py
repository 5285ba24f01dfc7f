"""The app's pure parts, without the app: rate limiting, downsampling, the event
bridge, the half-block renderer and the sample browser."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from engine.events import BatchEnd, EpochEnd, Failed, Finished, RunStarted, StateChanged
from tui import messages
from tui.bridge import EventBridge
from tui.sample_view import SampleBrowser, augment_preview
from tui.throttle import RateLimiter, downsample
from tui.widgets.image import MODE_ENV, RAMP, UPPER_HALF, HalfBlockImage, render_mode


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def batch(step: int, loss: float = 1.0) -> BatchEnd:
    return BatchEnd(
        epoch=1,
        batch=step,
        batches=100,
        step=step,
        loss=loss,
        smoothed_loss=loss,
        samples_per_second=1000.0,
        lr=1e-3,
        elapsed=float(step),
        eta=1.0,
    )


def epoch_end() -> EpochEnd:
    return EpochEnd(
        epoch=1,
        epochs=1,
        train_loss=1.0,
        train_accuracy=0.5,
        test_loss=1.0,
        test_accuracy=0.5,
        per_class_accuracy=[0.5] * 10,
        confusion_matrix=[[0] * 10] * 10,
        lr=1e-3,
        grad_norm=1.0,
        samples_per_second=1000.0,
        epoch_seconds=1.0,
        memory_bytes=1,
        best_accuracy=0.5,
        is_best=True,
    )


def test_the_app_module_does_not_load_torch() -> None:
    # The first screen must not wait for torch (1.7 s to import here): it is loaded by
    # worker threads only.
    code = "import sys, tui.app; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- throttle ------------------------------------------------------------------------


def test_rate_limiter_says_yes_once_per_interval() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.1, clock)
    assert limiter.ready()
    assert not limiter.ready()
    clock.now = 0.05
    assert not limiter.ready()
    clock.now = 0.1
    assert limiter.ready()


def test_downsample_keeps_short_series_and_thins_long_ones_keeping_extremes() -> None:
    xs = [float(i) for i in range(10)]
    assert downsample(xs, xs, 10) == (xs, xs)
    n = 10_000
    xs = [float(i) for i in range(n)]
    ys = [float(i % 100) for i in range(n)]
    ys[5_000] = 1e6  # a spike must survive
    out_x, out_y = downsample(xs, ys, 50)
    assert len(out_x) <= 100
    assert out_x == sorted(out_x)
    assert 1e6 in out_y
    assert out_x[0] == 0.0 and out_x[-1] >= xs[-200]  # both ends are still covered


def test_downsample_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError):
        downsample([1.0, 2.0], [1.0], 5)
    with pytest.raises(ValueError):
        downsample([1.0], [1.0], 0)


# --- the bridge from engine events to messages ----------------------------------------


def test_bridge_coalesces_batches_and_never_drops_or_reorders_other_events() -> None:
    clock = FakeClock()
    posted: list[object] = []
    bridge = EventBridge(posted.append, interval=0.1, clock=clock)
    for step in range(1, 101):  # 100 batch events within 50 ms
        clock.now = step * 0.0005
        bridge(batch(step))
    progress = [m for m in posted if isinstance(m, messages.BatchProgress)]
    assert len(progress) == 1  # at most one update per 0.1 s
    bridge(epoch_end())
    assert isinstance(posted[-2], messages.BatchProgress)  # held batches first...
    assert isinstance(posted[-1], messages.EpochFinished)  # ...then the epoch, never dropped
    progress = [m for m in posted if isinstance(m, messages.BatchProgress)]
    # Every batch waits in the one buffer the messages share, in order: a busy UI may
    # fold one message into the next (can_replace) and still draw every point.
    assert len({id(m.buffer) for m in progress}) == 1
    assert progress[0].can_replace(progress[1])
    assert not progress[0].can_replace(messages.BatchProgress(messages.BatchBuffer()))
    steps = [e.step for e in progress[-1].buffer.drain()]
    assert steps == list(range(1, 101))
    assert progress[0].buffer.drain() == []
    # A batch after the epoch waits in a buffer of its own: draining the earlier one
    # can never show it before the epoch.
    clock.now = 1.0
    bridge(batch(101))
    later = posted[-1]
    assert isinstance(later, messages.BatchProgress) and later.buffer is not progress[0].buffer
    assert not progress[0].can_replace(later)
    assert [e.step for e in later.buffer.drain()] == [101]
    bridge(Finished("finished", 1, 0.5, 0.5, 1.0))
    assert isinstance(posted[-1], messages.TrainingFinished)


def test_bridge_keeps_when_a_state_changed_and_a_run_failed() -> None:
    # Textual's Message has a ``time`` of its own (a monotonic clock): the event's wall
    # time must reach the log under another name, intact.
    posted: list[object] = []
    bridge = EventBridge(posted.append)
    bridge(StateChanged("paused", time=1_700_000_000.0))
    bridge(Failed("out of memory", 1, 3, time=1_700_000_060.0))
    paused, failed = posted
    assert isinstance(paused, messages.TrainingStateChanged) and paused.at == 1_700_000_000.0
    assert isinstance(failed, messages.TrainingFailed) and failed.at == 1_700_000_060.0


def test_bridge_passes_run_started_through() -> None:
    posted: list[object] = []
    bridge = EventBridge(posted.append)
    event = RunStarted(
        run_id="r",
        run_dir="d",
        config={},
        device="cpu",
        data_source="s",
        train_size=1,
        test_size=1,
        classes=["a"],
        start_epoch=1,
        batches_per_epoch=1,
        parameters=1,
    )
    bridge(event)
    assert isinstance(posted[0], messages.TrainingStarted) and posted[0].event is event


# --- the half-block renderer ------------------------------------------------------------


def render_lines(image: HalfBlockImage) -> list[str]:
    console = Console(width=200, color_system="truecolor", record=True, file=None)
    with console.capture():
        console.print(image)
    return console.export_text().splitlines()


def test_half_blocks_pair_rows_into_foreground_and_background() -> None:
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[0, :] = 255  # upper pixel of the first text row
    image = HalfBlockImage(pixels, "blocks")
    assert (image.width, image.height) == (28, 14)
    lines = image.lines()
    assert len(lines) == 14
    first = lines[0]
    assert "".join(s.text for s in first) == UPPER_HALF * 28
    assert len(first) == 1  # a run of equal cells is one segment
    style = first[0].style
    assert style.color.triplet == (255, 255, 255)
    assert style.bgcolor.triplet == (0, 0, 0)
    assert all(len(line) == 28 for line in render_lines(image))


def test_half_blocks_scale_and_pad_odd_heights() -> None:
    image = HalfBlockImage(np.full((3, 5), 100, dtype=np.uint8), "blocks", scale=2)
    assert (image.width, image.height) == (10, 3)
    odd = HalfBlockImage(np.full((3, 4), 200, dtype=np.uint8))
    assert odd.height == 2
    assert odd.lines()[1][0].style.bgcolor.triplet == (0, 0, 0)


def test_ascii_ramp_averages_two_rows_per_character() -> None:
    pixels = np.zeros((4, 3), dtype=np.uint8)
    pixels[0:2, 0] = 255
    pixels[0, 1] = 255  # mean of 255 and 0: the middle of the ramp
    rows = HalfBlockImage(pixels, "ascii").ascii_rows()
    assert rows[0][0] == RAMP[-1] and rows[0][2] == RAMP[0] and rows[1] == "   "
    assert rows[0][1] == RAMP[(127 * len(RAMP)) // 256]
    assert all(not seg.style for line in HalfBlockImage(pixels, "ascii").lines() for seg in line)


def test_render_mode_follows_the_terminal_and_can_be_forced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class FakeConsole:
        color_system = "truecolor"

    class FakeApp:
        no_color = False
        console = FakeConsole()

    app = FakeApp()
    monkeypatch.delenv(MODE_ENV, raising=False)
    assert render_mode(app) == "blocks"  # type: ignore[arg-type]
    app.console.color_system = "standard"
    assert render_mode(app) == "ascii"  # type: ignore[arg-type]
    assert render_mode(app, "blocks") == "blocks"  # type: ignore[arg-type]
    app.console.color_system = "256"
    app.no_color = True  # NO_COLOR
    assert render_mode(app) == "ascii"  # type: ignore[arg-type]
    monkeypatch.setenv(MODE_ENV, "blocks")
    assert render_mode(app) == "blocks"  # type: ignore[arg-type]


def test_renderer_rejects_colour_images() -> None:
    with pytest.raises(ValueError):
        HalfBlockImage(np.zeros((28, 28, 3), dtype=np.uint8))


# --- the sample browser and augmentation preview -----------------------------------------


def test_sample_browser_filters_shuffles_and_pages() -> None:
    labels = np.array([0, 1, 2] * 10)
    browser = SampleBrowser(labels, seed=0)
    browser.set_capacity(4)
    assert browser.count == 30 and browser.pages == 8
    first = browser.visible().tolist()
    assert len(first) == 4
    browser.turn(1)
    assert set(browser.visible().tolist()).isdisjoint(first)
    browser.turn(-2)  # wraps to the last page
    assert browser.page == 7 and len(browser.visible()) == 2
    browser.set_filter(1)
    assert browser.count == 10 and browser.page == 0
    assert set(labels[browser.visible()]) == {1}
    browser.set_capacity(10)  # the whole class on one page
    order = browser.visible().tolist()
    browser.set_capacity(4)
    browser.turn(1)
    browser.shuffle()  # a new order of the same images, from the first page
    assert browser.page == 0 and browser.count == 10
    browser.set_capacity(10)
    shuffled = browser.visible().tolist()
    assert shuffled != order
    assert sorted(shuffled) == sorted(order) == np.flatnonzero(labels == 1).tolist()


def test_augment_preview_flips_and_crops_with_zero_padding() -> None:
    images = np.zeros((64, 8, 8), dtype=np.uint8)
    images[:, :, 0] = 255  # a bright left column
    out = augment_preview(images, np.random.default_rng(0), crop_padding=0)
    flipped = out[:, :, -1].all(axis=1)
    assert 10 < flipped.sum() < 54  # about half flipped
    assert (out[~flipped, :, 0] == 255).all()
    cropped = augment_preview(images, np.random.default_rng(0), flip=False, crop_padding=2)
    assert cropped.shape == images.shape and cropped.dtype == np.uint8
    assert cropped.sum() <= images.sum()  # shifting in zero padding never adds light
    assert (cropped != images).any()


@pytest.mark.parametrize("width", [80, 120])
async def test_the_pane_bar_never_leaves_the_state_blank(width: int) -> None:
    from textual.app import App, ComposeResult

    from tui.widgets.pane_bar import PaneBar

    panes = [("1", "data", "Data"), ("2", "form", "Hyperparameters"), ("3", "mon", "Monitor")]
    panes += [("4", "runs", "Runs"), ("5", "inspect", "Inspect")]

    class BarApp(App[None]):
        def compose(self) -> ComposeResult:
            yield PaneBar(panes)

    async with BarApp().run_test(size=(width, 5)) as pilot:
        bar = pilot.app.query_one(PaneBar)
        bar.status = "■ interrupted (the training process is gone)"
        bar.short_status = "■ interrupted"
        line = str(bar.render())
        assert len(line) <= width
        # The whole reason where it fits, else the state alone: never nothing.
        assert line.rstrip().endswith(
            "(the training process is gone)" if width >= 120 else "■ interrupted"
        ), line
