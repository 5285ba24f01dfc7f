"""``FmnistApp``: look at the data, set the hyperparameters, train and watch, by keyboard.

The app owns the run: it starts the training worker, keeps the run's state for the
key bindings, and turns an engine failure into a notification. Torch is only ever
imported and used in worker threads (the model summary on the meta device, the
training itself on the training thread), so the first screen comes up fast and the
UI thread never competes with training for the CPU's OpenMP threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer
from textual.worker import Worker, WorkerState, get_current_worker

from engine.config import PRESETS, TrainConfig
from engine.errors import ConfigError, EngineError
from tui import messages
from tui.bridge import EventBridge
from tui.detached import DetachedRun, follow
from tui.screens.confirm import ConfirmScreen
from tui.screens.data import DataPane
from tui.screens.help import HelpScreen
from tui.screens.hyperparams import HyperparamsPane, with_preset
from tui.screens.inspect import InspectPane
from tui.screens.monitor import MonitorPane
from tui.screens.pane import WIDE, WIDEST, Pane, PaneSpec
from tui.screens.path_prompt import PathPrompt
from tui.screens.runs import RunsPane
from tui.widgets.config_form import ConfigForm
from tui.widgets.pane_bar import PaneBar
from tui.widgets.progress import STATE_MARKS

if TYPE_CHECKING:
    from engine import FitResult, ImageData, Run, Trainer

# Panes in key order. Keys 4 and 5 are kept for the Runs and Inspect panes: adding one
# is adding its module and a line here.
PANES: list[PaneSpec] = [
    PaneSpec(
        "1",
        "data",
        "Data",
        lambda app: DataPane(seed=app.config.seed, image_mode=app.image_mode, id="data"),
    ),
    PaneSpec(
        "2",
        "hyperparams",
        "Hyperparameters",
        lambda app: HyperparamsPane(app.config, id="hyperparams"),
    ),
    PaneSpec("3", "monitor", "Monitor", lambda app: MonitorPane(id="monitor")),
    PaneSpec("4", "runs", "Runs", lambda app: RunsPane(runs_dir=app.config.runs_dir, id="runs")),
    PaneSpec(
        "5",
        "inspect",
        "Inspect",
        lambda app: InspectPane(
            runs_dir=app.config.runs_dir, data=app.data, image_mode=app.image_mode, id="inspect"
        ),
    ),
]

# Set to 1 to start training as soon as the data is loaded (for scripts/bench_app.py).
AUTOSTART_ENV = "FMNIST_TUI_AUTOSTART"
# After a hang-up, seconds the normal exit gets (once the run is saved) before the
# process ends itself.
HANGUP_GRACE_SECONDS = 3.0
SUMMARY_FIELDS = ("model", "hidden_sizes", "conv_channels", "activation", "dropout", "loss")


class FmnistApp(App[None]):
    """The fmnist-tui app. ``data`` injects a loaded dataset (tests, small subsets)."""

    CSS_PATH: ClassVar[list[str]] = ["app.tcss", "screens/runs.tcss", "screens/inspect.tcss"]
    TITLE = "fmnist-tui"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [
        (0, "-narrow"),
        (WIDE, "-wide"),
        (WIDEST, "-widest"),
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(p.key, f"show_pane('{p.id}')", p.title, show=False) for p in PANES),
        Binding("s", "start", "Start"),
        Binding("S", "start_detached", "Start detached", show=False),
        Binding("p", "pause", "Pause"),
        Binding("p", "resume", "Resume"),
        Binding("x", "stop", "Stop"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    # "blocks" or "ascii" forces how images are drawn (tests, snapshots); None detects.
    image_mode: str | None = None

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        data_dir: str | None = None,
        runs_dir: str | None = None,
        data: ImageData | None = None,
        attach: str | Path | None = None,
    ) -> None:
        """``attach``: a run folder training in another process, to watch and steer."""
        super().__init__()
        config = config or TrainConfig()
        overrides = {}
        if runs_dir is not None:
            overrides["runs_dir"] = str(runs_dir)
        if data_dir is not None:
            overrides["data_dir"] = str(data_dir)
        self.config = TrainConfig.from_dict(overrides, base=config) if overrides else config
        self.config_problems: list[str] = []
        self.data = data
        # Which data settings ``self.data`` stands for: a run with others loads its own.
        self._data_key = (self.config.data, self.config.data_dir)
        self.run_state = "idle"
        self._trainer: Trainer | None = None
        self._attached = DetachedRun(attach) if attach is not None else None
        self._quit_when_stopped = False
        self._previous_hangup: object = None
        self._previous_terminate: object = None
        # Set while no training thread runs: what the hang-up watchdog waits for.
        self._training_done = threading.Event()
        self._training_done.set()
        self._painted = False
        self._summary_wanted: TrainConfig | None = None
        self._summary_key: tuple[object, ...] | None = None
        self._autostart = os.environ.get(AUTOSTART_ENV) == "1"

    # --- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield PaneBar([(p.key, p.id, p.title) for p in PANES], id="pane-bar")
        with ContentSwitcher(initial=PANES[0].id, id="panes"):
            for spec in PANES:
                yield spec.build(self)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handle_hangups(True)
        self.pane("data").focus_default()
        if self.data is not None:
            self._data_ready(self.data)
        else:
            self._load_data()
        self._set_run_state("idle")
        if self._attached is not None:
            self._watch(self._attached, self.config.epochs)

    def on_resize(self, event: Resize) -> None:
        # At 80 columns the Data pane's keys need the whole footer; ctrl+p still works
        # and the help screen names it.
        self.query_one(Footer).show_command_palette = event.size.width >= WIDE

    def on_unmount(self) -> None:
        self._handle_hangups(False)
        if self._trainer is not None:
            self._trainer.stop("interrupt")

    def pane(self, pane_id: str) -> Pane:
        return self.query_one(f"#{pane_id}", Pane)

    @property
    def monitor(self) -> MonitorPane:
        return self.query_one(MonitorPane)

    @property
    def current_pane(self) -> str:
        return str(self.query_one(ContentSwitcher).current)

    def action_show_pane(self, pane_id: str) -> None:
        self.query_one(ContentSwitcher).current = pane_id
        bar = self.query_one(PaneBar)
        bar.current = pane_id
        bar.refresh()
        self.pane(pane_id).focus_default()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen([(spec.key, spec.title) for spec in PANES]))

    # --- data -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="data")
    def _load_data(self) -> None:
        from engine.data import load_fashion_mnist

        try:
            data = load_fashion_mnist(self.config.data_dir or None)
        except EngineError as exc:
            self.post_message(messages.DataFailed(str(exc)))
        else:
            self.post_message(messages.DataLoaded(data))

    @on(messages.DataLoaded)
    def _data_loaded(self, message: messages.DataLoaded) -> None:
        self.data = message.data
        self._data_ready(message.data)

    def _data_ready(self, data: ImageData) -> None:
        self.query_one(DataPane).set_data(data)
        self.query_one(InspectPane).data = data
        self._after_first_samples()
        if self._autostart and self._startable():
            self._autostart = False
            self.action_start()

    @on(messages.DataFailed)
    def _data_failed(self, message: messages.DataFailed) -> None:
        self.query_one(DataPane).show_error(message.reason)
        self._after_first_samples()
        self.notify(message.reason, title="No data", severity="error", timeout=15)

    # --- the config and the model summary ---------------------------------------------

    @on(ConfigForm.Changed)
    def _config_changed(self, message: ConfigForm.Changed) -> None:
        self.config_problems = list(message.problems)
        if message.config is not None:
            self.config = message.config
            self.query_one(DataPane).crop_padding = message.config.crop_padding
            self.query_one(RunsPane).runs_dir = message.config.runs_dir
            self.query_one(InspectPane).runs_dir = message.config.runs_dir
            self._want_summary(message.config)
        else:
            self.query_one(HyperparamsPane).summary_view.show_problem(
                "fix the problems above to see it"
            )
            self._summary_key = None
        self._update_startable()

    def _want_summary(self, config: TrainConfig) -> None:
        shape = self.data.image_shape if self.data is not None else (28, 28)
        classes = self.data.num_classes if self.data is not None else 10
        key = (*(getattr(config, name) for name in SUMMARY_FIELDS), shape, classes)
        if key == self._summary_key:
            return
        self._summary_key = key
        self._summary_wanted = config
        if self._painted:
            self.query_one(HyperparamsPane).summary_view.show_pending()
            self._summarise(config, shape, classes)

    def _after_first_samples(self) -> None:
        # Importing torch (for the model summary) holds the GIL for over a second: let
        # the first screen and the samples reach the terminal before that starts.
        if not self._painted:
            self.call_after_refresh(self.set_timer, 0.2, self._first_paint_done)

    def _first_paint_done(self) -> None:
        self._painted = True
        if self._summary_wanted is not None:
            self._summary_key = None
            self._want_summary(self._summary_wanted)

    @work(thread=True, exclusive=True, exit_on_error=False, group="summary")
    def _summarise(self, config: TrainConfig, shape: tuple[int, int], classes: int) -> None:
        # The summary runs on torch's meta device: no arithmetic, so no OpenMP threads
        # to compete with training.
        from engine.models import summary

        try:
            result = summary(config, shape, classes)
        except (EngineError, ValueError, RuntimeError) as exc:
            self.post_message(messages.SummaryFailed(config, str(exc)))
        else:
            if not get_current_worker().is_cancelled:
                self.post_message(messages.SummaryReady(config, result))

    @on(messages.SummaryReady)
    def _summary_ready(self, message: messages.SummaryReady) -> None:
        if message.config is self._summary_wanted:
            self.query_one(HyperparamsPane).summary_view.show(message.summary)

    @on(messages.SummaryFailed)
    def _summary_failed(self, message: messages.SummaryFailed) -> None:
        if message.config is self._summary_wanted:
            self.query_one(HyperparamsPane).summary_view.show_problem(message.reason)

    def action_save_config(self) -> None:
        if self.config_problems:
            self.notify("Fix the form's problems before saving.", severity="warning")
            return
        self.push_screen(
            PathPrompt("Save the settings to", "fmnist-config.toml"), self._save_config_to
        )

    def _save_config_to(self, path: str | None) -> None:
        if not path:
            return
        try:
            self.config.save(path)
        except OSError as exc:
            self.notify(f"Cannot write {path}: {exc.strerror or exc}", severity="error")
        else:
            self.notify(f"Settings saved to {path}")

    def action_load_config(self) -> None:
        self.push_screen(
            PathPrompt("Load settings from", "fmnist-config.toml"), self._load_config_from
        )

    def _load_config_from(self, path: str | None) -> None:
        if not path:
            return
        try:
            config = TrainConfig.load(path, base=self.config)
        except ConfigError as exc:
            self.notify(
                "\n".join(exc.problems), title="Cannot load settings", severity="error", timeout=10
            )
            return
        self.query_one(HyperparamsPane).load_config(config)
        self.notify(f"Settings loaded from {path}")

    def apply_preset(self, name: str) -> None:
        self.query_one(HyperparamsPane).load_config(with_preset(name, self.config))
        self.notify(f"Preset {name} applied", timeout=3)

    # --- training -------------------------------------------------------------------

    def _startable(self) -> bool:
        return self.run_state == "idle" and not self.config_problems and self._attached is None

    def _update_startable(self) -> None:
        self.query_one(HyperparamsPane).set_startable(self._startable())
        self.refresh_bindings()

    def _set_run_state(self, state: str, *, shown: str | None = None) -> None:
        """Set the run's state; the pane bar shows ``shown`` (e.g. how the last run ended)."""
        self.run_state = state
        shown = shown or state
        mark, _style = STATE_MARKS.get(shown, ("", ""))
        bar = self.query_one(PaneBar)
        bar.status = f"{mark} {shown}"
        bar.refresh()
        self._update_startable()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("start", "start_detached"):
            return True if self._startable() else None
        if action == "pause":
            return self.run_state in ("starting", "running")
        if action == "resume":
            return self.run_state == "paused"
        if action == "stop":
            return self.run_state in ("starting", "running", "paused")
        return True

    def action_start(self) -> None:
        """Train with the form's settings in this app's worker thread (``S``: detached)."""
        if not self._startable():
            if self.config_problems:
                self.notify(
                    "Fix the problems in the Hyperparameters pane first.", severity="warning"
                )
            return
        from engine.trainer import Trainer

        config = self.config
        data = self.data if (config.data, config.data_dir) == self._data_key else None
        trainer = Trainer(config, data=data, listeners=(EventBridge(self.monitor.post_message),))
        self._train_here(trainer, config.epochs)

    def _train_here(self, trainer: Trainer, epochs: int) -> None:
        self._trainer = trainer
        self._training_done.clear()
        self.monitor.begin(epochs)
        self._set_run_state("starting")
        self.action_show_pane("monitor")
        self._train(trainer)

    def action_start_detached(self) -> None:
        """Train with the form's settings in a process of its own, and watch it.

        The run outlives this app and its terminal; ``fmnist-tui attach`` (or the Runs
        pane) watches it again later.
        """
        if not self._startable():
            if self.config_problems:
                self.notify(
                    "Fix the problems in the Hyperparameters pane first.", severity="warning"
                )
            return
        self._launch(self.config, None, self.config.epochs)

    def _launch(self, config: TrainConfig | None, resume: Path | None, epochs: int) -> None:
        self._set_run_state("starting")
        self.monitor.begin(epochs)
        self.monitor.log_event("Starting the run in a process of its own…")
        self.action_show_pane("monitor")
        self._launch_detached(config, resume)

    @work(thread=True, exclusive=True, exit_on_error=False, group="detach")
    def _launch_detached(self, config: TrainConfig | None, resume: Path | None) -> None:
        from engine.runs import Run
        from tui.launch import resume_detached, start_detached

        try:
            started = start_detached(config) if config is not None else resume_detached(resume)
            epochs = Run(started.run_dir).config().epochs
        except EngineError as exc:
            self.post_message(messages.DetachFailed(str(exc)))
        else:
            self.post_message(messages.DetachedStarted(started.run_dir, epochs))

    @on(messages.DetachedStarted)
    def _detached_started(self, message: messages.DetachedStarted) -> None:
        self.monitor.log_event(
            f"Detached: it trains on after this app quits; `fmnist-tui attach "
            f"{message.run_dir.name}` watches it again."
        )
        self._watch(DetachedRun(message.run_dir), message.epochs, fresh=False)

    @on(messages.DetachFailed)
    def _detach_failed(self, message: messages.DetachFailed) -> None:
        self.notify(message.reason, title="Not started", severity="error", timeout=15)
        self.monitor.set_state("failed")
        self.monitor.log_event(message.reason)
        self._set_run_state("idle", shown="failed")

    def _watch(self, run: DetachedRun, epochs: int, *, fresh: bool = True) -> None:
        """Show in the Monitor, and steer, a run training in another process."""
        self._attached = run
        if fresh:
            self.monitor.begin(epochs)
        self._set_run_state("starting")
        self.action_show_pane("monitor")
        self._follow(run.run)

    def _busy(self) -> bool:
        """True (and says so) when the Monitor has a run: this app's or an attached one."""
        if self.run_state == "idle" and self._attached is None:
            return False
        self.notify(
            "The Monitor is busy with a run: stop it (x) or let it finish first.",
            severity="warning",
        )
        return True

    @on(RunsPane.ResumeRequested)
    def _resume_requested(self, message: RunsPane.ResumeRequested) -> None:
        info = message.info
        if self._busy() or info.config is None:
            return
        if message.detached:
            self._launch(None, info.path, info.epochs)
            return
        from engine.trainer import Trainer

        config = info.config
        data = self.data if (config.data, config.data_dir) == self._data_key else None
        listeners = (EventBridge(self.monitor.post_message),)
        self._train_here(Trainer.resume(info.path, data=data, listeners=listeners), info.epochs)

    @on(RunsPane.AttachRequested)
    def _attach_requested(self, message: RunsPane.AttachRequested) -> None:
        attached = self._attached
        if attached is not None and attached.run.path == message.info.path:
            self.action_show_pane("monitor")
        elif not self._busy():
            self._watch(DetachedRun(message.info.path), message.info.epochs)

    @on(RunsPane.Highlighted)
    def _run_highlighted(self, message: RunsPane.Highlighted) -> None:
        if message.info.resumable:
            self.query_one(InspectPane).wanted = message.info.path

    @on(RunsPane.InspectRequested)
    def _inspect_requested(self, message: RunsPane.InspectRequested) -> None:
        self.query_one(InspectPane).wanted = message.path
        self.action_show_pane("inspect")

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def _train(self, trainer: Trainer) -> FitResult:
        worker = get_current_worker()

        def stop_if_cancelled(_event: object) -> None:
            if worker.is_cancelled:
                trainer.stop("interrupt")

        trainer.add_listener(stop_if_cancelled)
        try:
            return trainer.fit()
        finally:
            self._training_done.set()

    @property
    def _control(self) -> Trainer | DetachedRun | None:
        """What pause, resume and stop act on: the run in this app, or the one attached."""
        return self._trainer if self._trainer is not None else self._attached

    def action_pause(self) -> None:
        if self._control is not None:
            self._control.pause()
            self._set_run_state("paused")

    def action_resume(self) -> None:
        if self._control is not None:
            self._control.resume_training()
            self._set_run_state("running")

    def action_stop(self) -> None:
        if self._control is not None:
            self._control.stop("stop")
            self._set_run_state("stopping")
            self.monitor.log_event("Stopping at the next batch…")

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow")
    def _follow(self, run: Run) -> None:
        worker = get_current_worker()
        follow(run, EventBridge(self.monitor.post_message), lambda: worker.is_cancelled)

    @on(messages.TrainingStarted)
    def _training_started(self, _message: messages.TrainingStarted) -> None:
        if self.run_state == "starting":
            self._set_run_state("running")

    @on(messages.TrainingStateChanged)
    def _training_state(self, message: messages.TrainingStateChanged) -> None:
        if self.run_state != "stopping":
            self._set_run_state(message.state)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if not worker.is_finished:
            return
        if worker.state == WorkerState.ERROR:
            error = worker.error
            if not isinstance(error, EngineError):
                error_text = f"{type(error).__name__}: {error}"
            else:
                error_text = str(error)
            self.notify(
                error_text, title=f"{worker.group.title()} failed", severity="error", timeout=15
            )
            if worker.group == "training":
                self.monitor.set_state("failed")
                self.monitor.log_event(f"Failed: {error_text}")
        if worker.group == "detach" and worker.state == WorkerState.ERROR:
            self._set_run_state("idle", shown="failed")
        if worker.group == "follow":
            self._attached = None
            self._set_run_state("idle", shown=self.monitor.progress.state)
        if worker.group == "training":
            self._trainer = None
            self._set_run_state("idle", shown=self.monitor.progress.state)
            if self._quit_when_stopped:
                self.exit()

    # --- quitting -------------------------------------------------------------------

    async def action_quit(self) -> None:
        # An attached run trains on in its own process: leaving it needs no question.
        if self._trainer is None:
            self.exit()
            return
        if self._quit_when_stopped or isinstance(self.screen, ConfirmScreen):
            return
        self.push_screen(
            ConfirmScreen(
                "Training is running. Stop it at the next batch, save a resumable "
                "checkpoint and quit?",
                "Stop and quit",
                "Keep training",
            ),
            self._quit_confirmed,
        )

    def _quit_confirmed(self, yes: bool | None) -> None:
        if yes:
            self._stop_then_exit()

    def _stop_then_exit(self) -> None:
        if self._trainer is None:
            self.exit()
            return
        self._quit_when_stopped = True
        self._trainer.stop("interrupt")
        self._set_run_state("stopping")
        self.monitor.log_event("Stopping to quit: saving a checkpoint…")
        self.notify("Stopping at the next batch and saving a checkpoint…", timeout=30)

    def _handle_hangups(self, install: bool) -> None:
        """Stop training and exit, without asking, when the terminal goes away (SIGHUP).

        A Python signal handler, not the event loop's: it runs even while the UI
        thread is stuck writing to the lost terminal.
        """
        with contextlib.suppress(ValueError):  # not the main thread: leave them alone
            if install:
                self._previous_hangup = signal.signal(signal.SIGHUP, self._hung_up)
                self._previous_terminate = signal.signal(signal.SIGTERM, self._terminated)
            else:
                if self._previous_hangup is not None:
                    signal.signal(signal.SIGHUP, self._previous_hangup)
                if self._previous_terminate is not None:
                    signal.signal(signal.SIGTERM, self._previous_terminate)

    def _hung_up(self, _signum: int, _frame: object) -> None:
        if not self.is_headless:
            # Writes to a lost terminal fail; Textual's output thread dies on the first
            # and the UI thread then blocks on its next screen update. Send output
            # nowhere, and let a watchdog end the process once the run is saved.
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            threading.Thread(target=self._exit_after_hangup, daemon=True).start()
        if self._trainer is not None:
            self._trainer.stop("interrupt")
        self._loop.call_soon_threadsafe(self.call_later, self._stop_then_exit)

    def _terminated(self, _signum: int, _frame: object) -> None:
        """SIGTERM (``kill``, a shutdown): as quitting, but without asking."""
        if self._trainer is not None:
            self._trainer.stop("interrupt")
        self._loop.call_soon_threadsafe(self.call_later, self._stop_then_exit)

    def _exit_after_hangup(self) -> None:
        self._training_done.wait()
        # The normal exit, if the UI thread is free, takes well under this.
        time.sleep(HANGUP_GRACE_SECONDS)
        os._exit(128 + signal.SIGHUP)

    # --- the command palette ----------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for spec in PANES:
            yield SystemCommand(
                f"Show {spec.title}",
                f"Switch to the {spec.title} pane (key {spec.key})",
                lambda p=spec.id: self.action_show_pane(p),
            )
        training = [
            ("start", "Start training", "Train with the Hyperparameters pane's settings (s)"),
            (
                "start_detached",
                "Start training detached",
                "Train in a process of its own that outlives this app and terminal (S)",
            ),
            ("pause", "Pause training", "Pause at the next batch (p)"),
            ("resume", "Resume training", "Carry on training (p)"),
            ("stop", "Stop training", "Stop at the next batch, saving a checkpoint (x)"),
        ]
        for action, title, help_text in training:
            if self.check_action(action, ()):
                yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))
        for name in PRESETS:
            yield SystemCommand(
                f"Preset: {name}",
                "Fill the form with this preset",
                lambda n=name: self.apply_preset(n),
            )
        yield SystemCommand(
            "Save settings",
            "Save the form to a JSON or TOML file (ctrl+s)",
            self.action_save_config,
        )
        yield SystemCommand(
            "Load settings",
            "Fill the form from a JSON or TOML file (ctrl+o)",
            self.action_load_config,
        )
        data = self.query_one(DataPane)
        for title, help_text, callback in (
            ("Data: reshuffle samples", "Draw new samples (r)", data.action_shuffle),
            ("Data: switch train/test", "Show the other split (t)", data.action_switch_split),
            (
                "Data: preview augmentation",
                "Flip and crop as training would (a)",
                data.action_augment,
            ),
        ):
            yield SystemCommand(title, help_text, callback)
        yield SystemCommand("Help", "Every key, by pane (?)", self.action_help)
