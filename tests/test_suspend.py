"""ctrl+z in the app: suspend as a shell does; while a run trains here, ask first (pause
it while suspended and resume it on return, or detach it), and repaint on return.

The process stop itself is the app's ``suspend_process`` (Textual's SIGTSTP by default),
replaced here by a recorder; the return is Textual's ``app_resume_signal``, published as
the driver publishes it after SIGCONT.
"""

from __future__ import annotations

from pathlib import Path

from lifecycle_helpers import kill_trainer
from pane_helpers import press_now, wait_for
from textual.widgets import Button

from engine.config import TrainConfig
from engine.data import ImageData
from engine.runs import Run, list_runs
from tui.app import FmnistApp
from tui.screens.suspend import SuspendScreen
from tui.widgets.event_log import EventLog
from tui.widgets.model_summary import ModelSummaryView

# The `small` fixture's images (fashion.subset(2000, 500, seed=0)), so that a detached
# trainer reading the data from disk gets the same ones.
SETTINGS = {
    "epochs": 3,
    "batch_size": 16,
    "hidden_sizes": (32,),
    "log_every": 5,
    "device": "cpu",
    "train_subset": 2000,
    "test_subset": 500,
    "seed": 0,
}


def position(app: FmnistApp) -> tuple[int, int]:
    """(epoch, batches done in it) as the Monitor shows them."""
    return app.monitor.progress.epoch, app.monitor.progress.batch_done


def log_text(app: FmnistApp) -> str:
    return "\n".join(app.query_one(EventLog).entry_texts)


async def test_ctrl_z_asks_while_training_then_pauses_or_detaches(
    tmp_path: Path, small: ImageData
) -> None:
    suspended: list[str] = []
    app = FmnistApp(
        TrainConfig.from_dict(SETTINGS),
        runs_dir=str(tmp_path / "runs"),
        data=small,
        suspend_process=lambda: suspended.append(str(app.run_state)),
    )
    app.image_mode = "blocks"
    run: Run | None = None
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            # No run: ctrl+z suspends at once.
            await pilot.press("ctrl+z")
            await pilot.pause()
            assert suspended == ["idle"] and not isinstance(app.screen, SuspendScreen)

            await wait_for(pilot, lambda: app.query_one(ModelSummaryView).summary is not None)
            await press_now(pilot, "s")
            await wait_for(pilot, lambda: app.monitor.progress.batch_done > 0)

            # Training: ctrl+z asks, the run paused while the question shows (no batch
            # trained); staying resumes it.
            await press_now(pilot, "ctrl+z")
            await wait_for(pilot, lambda: isinstance(app.screen, SuspendScreen))
            labels = [str(b.label) for b in app.screen.query(Button)]
            assert labels == ["Pause, suspend (s)", "Detach, suspend (d)", "Stay (esc)"]
            await wait_for(pilot, lambda: app.run_state == "paused")
            done = position(app)
            await pilot.pause()
            assert position(app) == done
            assert isinstance(app.screen, SuspendScreen) and suspended == ["idle"]
            await press_now(pilot, "escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, SuspendScreen))
            await wait_for(pilot, lambda: app.run_state == "running")
            await wait_for(pilot, lambda: position(app) > done)
            assert suspended == ["idle"]
            assert "Not suspended: training resumed" in log_text(app)

            # Pause and suspend: the run already paused by the question, the process stops.
            await press_now(pilot, "ctrl+z")
            await wait_for(pilot, lambda: isinstance(app.screen, SuspendScreen))
            await wait_for(pilot, lambda: app.run_state == "paused")
            await press_now(pilot, "s")
            await wait_for(pilot, lambda: len(suspended) == 2)
            assert suspended[1] == "paused" and app.run_state == "paused"
            assert "Run paused; suspending" in log_text(app)
            # Back (fg): the run goes on by itself.
            app.app_resume_signal.publish(app)
            await wait_for(pilot, lambda: app.run_state == "running")
            assert "Back from suspend: training resumed" in log_text(app)

            # Detach and suspend: the process stops once the run trains in its own.
            await press_now(pilot, "ctrl+z")
            await wait_for(pilot, lambda: isinstance(app.screen, SuspendScreen))
            await press_now(pilot, "d")
            await wait_for(pilot, lambda: len(suspended) == 3, 90)
            [info] = list_runs(tmp_path / "runs")
            run = Run(info.path)
            assert run.is_locked() and not app.session.trains_here
            app.app_resume_signal.publish(app)
            await pilot.pause()
            assert not isinstance(app.screen, SuspendScreen)
    finally:
        if run is not None:
            kill_trainer(run)
