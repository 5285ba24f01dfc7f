"""What the Runs, Inspect and detach/attach tests share: quick real runs, Pilot helpers."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual import events
from textual.geometry import Region
from textual.message import Message
from textual.notifications import Notification, Notify
from textual.pilot import Pilot
from textual.widget import Widget

from engine.config import TrainConfig
from engine.data import ImageData
from engine.errors import TrainingError
from engine.events import BatchEnd, EpochEnd
from engine.runs import Run
from engine.trainer import Trainer
from tui.app import FmnistApp

QUICK = {"hidden_sizes": (32,), "batch_size": 64, "log_every": 5, "device": "cpu"}


def make_runs(runs_dir: Path, data: ImageData) -> dict[str, Run]:
    """Three real runs, trained on ``data``: finished (2 epochs), interrupted after
    its first epoch, and failed in its first epoch (a listener that breaks)."""
    runs: dict[str, Run] = {}
    config = TrainConfig(epochs=2, runs_dir=str(runs_dir), **QUICK)
    runs["finished"] = Run(Trainer(config, data=data).fit().run_dir)

    stopping = Trainer(config, data=data)
    stopping.add_listener(lambda e: stopping.stop("stop") if isinstance(e, EpochEnd) else None)
    runs["interrupted"] = Run(stopping.fit().run_dir)

    def breaks(event: object) -> None:
        if isinstance(event, BatchEnd):
            raise RuntimeError("the disk caught fire")

    failing = Trainer(TrainConfig(epochs=1, runs_dir=str(runs_dir), **QUICK), data=data)
    failing.add_listener(breaks)
    with pytest.raises(TrainingError, match="the disk caught fire"):
        failing.fit()
    assert failing.run is not None
    runs["failed"] = Run(failing.run.path)
    return runs


def copy_runs(template: dict[str, Run], runs_dir: Path) -> dict[str, Run]:
    """A private copy of the template runs, for a test that changes them."""
    shutil.copytree(next(iter(template.values())).path.parent, runs_dir)
    return {name: Run(runs_dir / run.id) for name, run in template.items()}


def make_app(runs_dir: Path, data: ImageData, **settings: object) -> FmnistApp:
    config = TrainConfig.from_dict({"epochs": 1, **QUICK, **settings})
    app = FmnistApp(config, runs_dir=str(runs_dir), data=data)
    app.image_mode = "blocks"
    return app


async def wait_for(pilot: Pilot, condition: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


async def press_now(pilot: Pilot, *keys: str) -> None:
    """Press keys without waiting for an idle CPU (never idle while training)."""
    for key in keys:
        pilot.app.post_message(events.Key(key, key if len(key) == 1 else None))
        await pilot.pause(0.02)


def shown(widget: Widget) -> str:
    """The text a widget puts on the screen, line by line."""
    lines = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return "\n".join(line.text for line in lines)


class Notifications:
    """Every notification the app shows, caught as it is posted.

    Pass one to ``app.run_test(message_hook=...)``; iterating gives the texts shown so far.
    """

    def __init__(self) -> None:
        self.shown: list[Notification] = []

    def __call__(self, message: Message) -> None:
        if isinstance(message, Notify):
            self.shown.append(message.notification)

    def __iter__(self) -> Iterator[str]:
        return iter([n.message for n in self.shown])
