"""``FmnistApp``: look at the data, set the hyperparameters, train and watch, by keyboard.

The run's keys and workers are in ``tui.run_actions`` (mixed in), the run itself in a
``tui.session.Session``, signal handling in ``tui.signals``. Torch is only ever
imported and used in worker threads (the model summary on the meta device, the
training itself on the training thread), so the first screen comes up fast and the
UI thread never competes with training for the CPU's OpenMP threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import ContentSwitcher, Footer
from textual.worker import get_current_worker

from engine.config import TrainConfig
from engine.errors import ConfigError, EngineError
from engine.events import Event
from engine.gpu import GpuTelemetry
from engine.runs import Run, run_info
from engine.search_space import SearchSpace, read_search_table, write_config
from engine.state import RunState
from engine.trainer import data_settings
from tui import messages
from tui.bridge import EventBridge
from tui.flags import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from tui.last_settings import RESTORED_NOTE, save_last_settings
from tui.output import printable
from tui.palette import app_commands
from tui.plain import markup
from tui.run_actions import RunActions, stays_up
from tui.screens.data import DataPane, data_description
from tui.screens.help import HelpScreen
from tui.screens.hyperparams import HyperparamsPane
from tui.screens.inspect import InspectPane
from tui.screens.monitor import MonitorPane
from tui.screens.pane import WIDE, WIDEST, Pane, PaneSpec
from tui.screens.path_prompt import PathPrompt
from tui.screens.runs import RunsPane
from tui.screens.search import SearchPane
from tui.screens.suspend import SuspendScreen
from tui.session import Replayed, Session
from tui.signals import AppSignals
from tui.widgets.config_form import ConfigForm
from tui.widgets.pane_bar import PaneBar

if TYPE_CHECKING:
    from engine.data import ImageData

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
            runs_dir=app.config.runs_dir,
            data=app.data,
            data_settings=app.data_key,
            image_mode=app.image_mode,
            id="inspect",
        ),
    ),
    PaneSpec(
        "6",
        "search",
        "Search",
        lambda app: SearchPane(runs_dir=app.config.runs_dir, study=app.study, id="search"),
    ),
]

# Set to 1 to start training as soon as the data is loaded (for scripts/bench_app.py).
AUTOSTART_ENV = "FMNIST_TUI_AUTOSTART"
# Seconds the form's data fields must rest before their data is loaded (typing a path).
DATA_RELOAD_DELAY = 0.3
# Seconds between GPU readings while the Monitor is shown (NVML's own pace is 1/6 s).
GPU_READ_SECONDS = 1.0
SUMMARY_FIELDS = ("model", "hidden_sizes", "conv_channels", "activation", "dropout", "loss")


class FmnistApp(RunActions):
    """The fmnist-tui app. ``data`` injects a loaded dataset (tests, small subsets), taken
    as the data ``config`` names.

    The Data pane shows the dataset the config names (Fashion-MNIST, custom, csv-pixels or
    image-folder), and ``s`` trains on it; when the form's data settings change, that data
    is loaded again, in a worker, and the Data pane and the form say how it went.
    """

    # Typed as Textual types them (instance variables there), so no ClassVar here.
    CSS_PATH = [  # noqa: RUF012
        "app.tcss",
        "screens/runs.tcss",
        "screens/inspect.tcss",
        "screens/search.tcss",
    ]
    TITLE = "fmnist-tui"
    HORIZONTAL_BREAKPOINTS = [  # noqa: RUF012
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
        Binding("ctrl+z", "suspend", "Suspend", show=False),
    ]

    # "blocks" or "ascii" forces how images are drawn (tests, snapshots); None detects.
    image_mode: str | None = None
    # The study the Search pane watches (``attach --study``); None: the newest.
    study: str | None = None

    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        data_dir: str | None = None,
        runs_dir: str | None = None,
        data: ImageData | None = None,
        attach: str | Path | None = None,
        study: str | None = None,
        search: SearchSpace | None = None,
        model_factory: str | None = None,
        notes: Iterable[str] = (),
        suspend_process: Callable[[], None] | None = None,
        gpu_telemetry: GpuTelemetry | None = None,
    ) -> None:
        """``attach``: a run folder training in another process, to watch and steer;
        ``study``: a study to watch in the Search pane, which the app opens on;
        ``search``: fields the form marks for a search (a ``--config`` file's ``[search]``
        table); ``model_factory``: the factory of the user's own model named with
        ``--model``, the one their code the app may import (the form offers it; the
        summary, training, Inspect and the Runs pane's actions load it); ``notes``: what
        to tell the user at once (what became of the last settings restored);
        ``suspend_process``: what ctrl+z calls to stop the process (default: Textual's
        ``action_suspend_process``, a SIGTSTP; the app repaints and goes on when
        ``app_resume_signal`` is published); ``gpu_telemetry``: where the Monitor and
        the form's device field read the GPUs (default: NVML's, ``engine.gpu``)."""
        super().__init__()
        self.model_factory = model_factory
        self.study = study
        self._search = search
        config = config or TrainConfig()
        overrides = {}
        if runs_dir is not None:
            overrides["runs_dir"] = str(runs_dir)
        if data_dir is not None:
            overrides["data_dir"] = str(data_dir)
        self.config = TrainConfig.from_dict(overrides, base=config) if overrides else config
        self.config_problems: list[str] = []
        self.data = data
        # Which data settings ``self.data`` stands for (``data_settings``): a run with
        # others loads its own. ``_data_wanted``: those of the data shown or being loaded.
        self._data_key = data_settings(self.config)
        self._data_wanted = self._data_key
        self._data_timer: Timer | None = None
        self._data_reloaded = False  # a load asked for by the form (not the first)
        self.session = Session(self._on_run_event, self._on_run_state)
        self.session.model_factory = model_factory
        self._bridge: EventBridge | None = None
        self._attach_to = Path(attach) if attach is not None else None
        self._quit_when_done = False
        # Set while no training thread runs: what the hang-up watchdog waits for.
        self._training_done = threading.Event()
        self._training_done.set()
        self._signals: AppSignals | None = None
        self._painted = False
        self._summary_wanted: TrainConfig | None = None
        self._summary_key: tuple[object, ...] | None = None
        self._autostart = os.environ.get(AUTOSTART_ENV) == "1"
        self._notes = list(notes)
        self.suspend_process = suspend_process or self.action_suspend_process
        # What a suspend waits for ("paused", "detached"; None: none is waiting), and
        # whether the run it paused is resumed on return.
        self.suspend_waits_for: str | None = None
        self._resume_on_return = False
        # Whether the ctrl+z question paused the run (Stay resumes it).
        self._paused_for_question = False
        self.gpu_telemetry = gpu_telemetry if gpu_telemetry is not None else GpuTelemetry()
        self._gpu_timer: Timer | None = None

    # --- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield PaneBar([(p.key, p.id, p.title) for p in PANES], id="pane-bar")
        with ContentSwitcher(initial=PANES[0].id, id="panes"):
            for spec in PANES:
                yield spec.build(self)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        loop = asyncio.get_running_loop()
        self._bridge = EventBridge(self.monitor.post_message)
        self._signals = AppSignals(
            stop=lambda: self.session.stop("interrupt"),
            quit=self._quit_soon,
            call_soon=loop.call_soon_threadsafe,
            training_done=self._training_done,
            headless=self.is_headless,
        )
        self._signals.install()
        # Back from a suspend (ctrl+z, or a SIGTSTP from elsewhere, then `fg`).
        self.app_resume_signal.subscribe(self, self._resumed)
        self.show_run_state(RunState.IDLE)
        # The GPUs once now (the form's device field, or the log's word that there are
        # none), then each second while the Monitor shows them.
        self._read_gpus()
        self._gpu_timer = self.set_interval(GPU_READ_SECONDS, self._gpus_due)
        for note in self._notes:
            restored = note == RESTORED_NOTE  # news, not a problem
            self.notify(
                note,
                title="Last settings",
                severity="information" if restored else "warning",
                timeout=12,
            )
            if restored:
                self.query_one(HyperparamsPane).show_restored()
        if self._search is not None:
            self.query_one(HyperparamsPane).load_search(self._search)
        self.pane("data").focus_default()
        if self.data is not None:
            self._data_ready(self.data)
        else:
            self._reload_data(self.config)
        if self._attach_to is not None:
            self._attach_run(Run(self._attach_to))
        elif self.study is not None:
            self.action_show_pane("search")

    def run_for_exit_code(self) -> int:
        """Run the app; returns ``fmnist-tui``'s exit code: 0; 130 when a signal (SIGINT,
        SIGTERM, SIGHUP) ended it, its run saved at a batch; or 1 when the app ended on an
        error nothing handled (Textual prints its traceback; one line after it says so)."""
        self.run()
        if self._signals is not None and self._signals.signalled is not None:
            return EXIT_INTERRUPTED
        if self.return_code:
            print(
                "fmnist-tui: error: the app ended on an unexpected error (the traceback "
                "is above); please report it",
                file=sys.stderr,
            )
            return EXIT_FAILED
        return EXIT_OK

    def _quit_soon(self) -> None:
        """After SIGHUP or SIGTERM, on the event loop: stop the run and exit once it is saved."""
        self.call_later(self._stop_then_exit)

    def _on_run_event(self, event: Event | Replayed) -> None:
        """From the session, on a worker thread: to the Monitor, at a bounded rate."""
        if self._bridge is not None:
            self._bridge(event)

    def _on_run_state(self, state: RunState) -> None:
        self.post_message(messages.SessionState(state))

    def on_resize(self, event: Resize) -> None:
        # At 80 columns the Data pane's keys need the whole footer; ctrl+p still works
        # and the help screen names it.
        self.query_one(Footer).show_command_palette = event.size.width >= WIDE

    def on_unmount(self) -> None:
        if self._signals is not None:
            self._signals.restore()
        self.gpu_telemetry.close()
        self.session.stop("interrupt")
        # The form's settings, when valid, are the next launch's (a bad form keeps the
        # file as it was); there is no screen left to say a write failed on.
        if not self.config_problems:
            with contextlib.suppress(OSError):
                save_last_settings(self.config)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Show a notification, its text as written: never parsed as markup (``markup`` is
        ignored), with control characters as ``?``. Notifications quote run ids, reasons
        from ``status.json`` and paths, any of which may hold ``[/]`` or escape codes."""
        super().notify(
            printable(message, lines=True),
            title=printable(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def pane(self, pane_id: str) -> Pane:
        return self.query_one(f"#{pane_id}", Pane)

    @property
    def current_pane(self) -> str:
        return str(self.query_one(ContentSwitcher).current)

    def action_show_pane(self, pane_id: str) -> None:
        if pane_id in ("monitor", "hyperparams"):
            self._read_gpus()
        self.query_one(ContentSwitcher).current = pane_id
        bar = self.query_one(PaneBar)
        bar.current = pane_id
        bar.refresh()
        self.pane(pane_id).focus_default()

    def _gpus_due(self) -> None:
        if self.current_pane == "monitor" and self.screen is self.screen_stack[0]:
            self._read_gpus()

    @work(thread=True, exclusive=True, group="gpus", exit_on_error=False)
    def _read_gpus(self) -> None:
        # NVML's first call loads the driver's library (up to seconds): off the UI thread.
        self.post_message(messages.GpusRead(self.gpu_telemetry.read()))

    @on(messages.GpusRead)
    def _gpus_read(self, message: messages.GpusRead) -> None:
        snapshot = message.snapshot
        self.monitor.show_gpus(snapshot)
        self.query_one(ConfigForm).show_gpus(snapshot.gpus)
        if not snapshot.available and self._gpu_timer is not None:
            self._gpu_timer.stop()  # nothing will come: NVML is not here

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen([(spec.key, spec.title) for spec in PANES]))

    # --- suspend (ctrl+z) and resume --------------------------------------------------

    def action_suspend(self) -> None:
        """Suspend the app as a shell's ctrl+z does. A run training here (not paused)
        is paused at its next batch while the app asks: suspend (the run paused until the
        return), detach it, or stay (the run resumed); the process stops once the run
        has paused or trains on in its own process."""
        if self.suspend_waits_for is not None or isinstance(self.screen, SuspendScreen):
            return
        if self.session.trains_here and self.run_state in (RunState.STARTING, RunState.RUNNING):
            self._paused_for_question = True
            self.action_pause()
            self.push_screen(SuspendScreen(), self._suspend_chosen)
        else:
            self._suspend_now()

    def _suspend_chosen(self, choice: str | None) -> None:
        paused_here, self._paused_for_question = self._paused_for_question, False
        if choice is None or not self.session.trains_here:
            if choice is not None:  # the run ended while the question was up
                self._suspend_now()
            elif paused_here and self.run_state in (
                RunState.STARTING,
                RunState.RUNNING,
                RunState.PAUSED,
            ):
                self.action_resume()
                self.monitor.log_event("Not suspended: training resumed")
            return
        if choice == "detach":
            self.suspend_waits_for = "detached"
            self.session.detach()
            self.monitor.log_event("Detaching: saving a checkpoint, then suspending…")
        else:
            self.suspend_waits_for = "paused"
            self._resume_on_return = True
            if self.run_state == RunState.PAUSED:
                self.monitor.log_event("Run paused; suspending…")
                self._suspend_soon()
            else:
                self.action_pause()
                self.monitor.log_event("Pausing at the next batch, then suspending…")

    @on(messages.SessionState)
    def _suspend_when_paused(self, message: messages.SessionState) -> None:
        if self.suspend_waits_for == "paused" and (
            message.state == RunState.PAUSED or not message.state.live
        ):
            self._resume_on_return = message.state == RunState.PAUSED
            self._suspend_soon()

    @on(messages.DetachedStarted)
    def _suspend_when_detached(self) -> None:
        if self.suspend_waits_for == "detached":
            self._suspend_soon()

    @on(messages.WorkDone)
    def _suspend_given_up(self, message: messages.WorkDone) -> None:
        # The run failed or ended before it paused or detached: suspend anyway, but a
        # failure stays up to be read.
        if self.suspend_waits_for is not None and not self.session.busy:
            if message.error:
                self.suspend_waits_for = None
                self._resume_on_return = False
            else:
                self._suspend_soon()

    def _suspend_now(self) -> None:
        self.suspend_waits_for = None
        self.suspend_process()

    def _suspend_soon(self) -> None:
        # Once the handlers of the message that ended the wait have run.
        self.suspend_waits_for = None
        self.call_later(self.suspend_process)

    def _resumed(self, _app: object) -> None:
        """Back in the foreground: the terminal was handed back blank, so repaint all of
        it (tab bar, footer, charts, log), not only what changed; resume a run paused
        for the suspend."""
        self.refresh(repaint=True, layout=True)
        for screen in self.screen_stack:
            screen.refresh(repaint=True, layout=True)
        if self._resume_on_return:
            self._resume_on_return = False
            if self.session.trains_here and self.run_state == RunState.PAUSED:
                self.action_resume()
                self.monitor.log_event("Back from suspend: training resumed")

    # --- data -----------------------------------------------------------------------

    @property
    def data_key(self) -> tuple[tuple[str, object], ...]:
        """The settings ``data`` was loaded with (``engine.trainer.data_settings``)."""
        return self._data_key

    def _reload_data(self, config: TrainConfig) -> None:
        """Load the data ``config`` names, in a worker (replacing any load under way)."""
        self._data_timer = None
        self._data_wanted = data_settings(config)
        what = data_description(config)
        self.query_one(DataPane).show_loading(what)
        if self._data_reloaded:
            self.query_one(HyperparamsPane).show_data(markup("Data: loading $what…", what=what))
        self._load_data(config, self._data_wanted)

    def _data_settings_changed(self, config: TrainConfig) -> None:
        """The form's data settings may have changed: load their data once they rest."""
        wanted = data_settings(config)
        if wanted == self._data_wanted:
            return
        if self._data_timer is not None:
            self._data_timer.stop()
            self._data_timer = None
        self._data_reloaded = True
        if wanted == self._data_key and self.data is not None:
            # Back to the data already loaded: show it again, and drop any load under way.
            self._data_wanted = wanted
            self.workers.cancel_group(self, "data")
            self._data_ready(self.data)
            return
        self._data_wanted = wanted
        what = data_description(config)
        self.query_one(DataPane).show_loading(what)
        self.query_one(HyperparamsPane).show_data(markup("Data: loading $what…", what=what))
        self._data_timer = self.set_timer(
            DATA_RELOAD_DELAY, lambda: self._reload_if_wanted(config, wanted)
        )

    def _reload_if_wanted(
        self, config: TrainConfig, wanted: tuple[tuple[str, object], ...]
    ) -> None:
        # A timer that fired as the settings changed again must not bring back its own.
        if wanted == self._data_wanted:
            self._reload_data(config)

    @work(thread=True, exclusive=True, exit_on_error=False, group="data")
    def _load_data(self, config: TrainConfig, settings: tuple[tuple[str, object], ...]) -> None:
        # numpy and Pillow only: no torch here, and no decoder writes to fd 2.
        from engine.trainer import load_dataset

        try:
            data = load_dataset(config)
        except EngineError as exc:
            self.post_message(messages.DataFailed(str(exc), settings))
        except Exception as exc:  # never a traceback from a load: say what went wrong
            self.post_message(messages.DataFailed(f"{type(exc).__name__}: {exc}", settings))
        else:
            if not get_current_worker().is_cancelled:
                self.post_message(messages.DataLoaded(data, settings))

    @on(messages.DataLoaded)
    def _data_loaded(self, message: messages.DataLoaded) -> None:
        if message.settings and message.settings != self._data_wanted:
            return  # settings changed since: a newer load is coming
        if not self.query(DataPane):
            return  # the app is closing: its panes are gone
        self.data = message.data
        self._data_key = message.settings or self._data_wanted
        self._data_ready(message.data)

    def _data_ready(self, data: ImageData) -> None:
        self.query_one(DataPane).set_data(data, self.config)
        inspect = self.query_one(InspectPane)
        inspect.data, inspect.data_settings = data, self._data_key
        if self._data_reloaded:
            self.query_one(HyperparamsPane).show_data(
                markup(
                    f"Data: {len(data.train):,} train and {len(data.test):,} test images, "
                    f"{data.image_shape[0]}x{data.image_shape[1]}, {data.num_classes} classes "
                    "($source)",
                    source=data.source.describe(),
                )
            )
        if not self.config_problems:
            self._want_summary(self.config)  # its input shape and classes follow the data
        self._after_first_samples()
        if self._autostart and self._startable():
            self._autostart = False
            self.action_start()

    @on(messages.DataFailed)
    def _data_failed(self, message: messages.DataFailed) -> None:
        if (message.settings and message.settings != self._data_wanted) or not self.query(DataPane):
            return
        self.query_one(DataPane).show_error(message.reason)
        self._after_first_samples()
        if self._data_reloaded:
            head = message.reason.splitlines()[0] if message.reason else ""
            self.query_one(HyperparamsPane).show_data(
                markup("Data: cannot load it: $why (see the Data pane, 1)", why=head),
                problem=True,
            )
        else:
            self.notify(message.reason, title="No data", severity="error", timeout=15)

    # --- the config and the model summary ---------------------------------------------

    @on(ConfigForm.Changed)
    def _config_changed(self, message: ConfigForm.Changed) -> None:
        self.config_problems = list(message.problems)
        if message.config is not None:
            self.config = message.config
            self._data_settings_changed(message.config)
            self.query_one(DataPane).crop_padding = message.config.crop_padding
            self.query_one(RunsPane).runs_dir = message.config.runs_dir
            self.query_one(InspectPane).runs_dir = message.config.runs_dir
            self.query_one(SearchPane).runs_dir = message.config.runs_dir
            self._want_summary(message.config)
        else:
            # A bad field the model does not depend on (lr) leaves the summary up.
            pane = self.query_one(HyperparamsPane)
            model = pane.form.partial_config(SUMMARY_FIELDS, self.config)
            if model is not None:
                self._want_summary(model)
            else:
                pane.summary_view.show_problem("fix the model's fields above to see it")
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
            # From the base screen, which holds the panes even under a dialog; none left
            # once the app is closing (the first paint's timer can fire then).
            stack = self.screen_stack
            panes = stack[0].query(HyperparamsPane) if stack else None
            if panes:
                panes.first().summary_view.show_pending()
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
            result = summary(config, shape, classes, model_factory=self.model_factory)
        except (EngineError, ValueError, RuntimeError) as exc:
            self.post_message(messages.SummaryFailed(config, str(exc)))
        else:
            if not get_current_worker().is_cancelled:
                self.post_message(messages.SummaryReady(config, result))

    @on(messages.SummaryReady)
    def _summary_ready(self, message: messages.SummaryReady) -> None:
        # The summary's worker may finish as the app closes, its panes already gone.
        panes = self.query(HyperparamsPane)
        if message.config is self._summary_wanted and panes:
            panes.first().summary_view.show(message.summary)

    @on(messages.SummaryFailed)
    def _summary_failed(self, message: messages.SummaryFailed) -> None:
        panes = self.query(HyperparamsPane)
        if message.config is self._summary_wanted and panes:
            panes.first().summary_view.show_problem(message.reason)

    def action_save_config(self) -> None:
        if self.config_problems or self.query_one(HyperparamsPane).search_problems():
            self.notify("Fix the form's problems before saving.", severity="warning")
            return
        self.push_screen(
            PathPrompt("Save the settings to", "fmnist-config.toml"), self._save_config_to
        )

    def _save_config_to(self, path: str | None) -> None:
        if not path:
            return
        try:
            # The fields marked for a search go with the settings, as a [search] table.
            write_config(path, self.config, self.query_one(HyperparamsPane).marked_space())
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
            space = read_search_table(path)
        except ConfigError as exc:
            self.notify(
                "\n".join(exc.problems), title="Cannot load settings", severity="error", timeout=10
            )
            return
        self.query_one(HyperparamsPane).load_config(config)
        self.query_one(HyperparamsPane).load_search(space)
        self.notify(f"Settings loaded from {path}")

    def apply_preset(self, name: str) -> None:
        self.query_one(HyperparamsPane).apply_preset(name)

    # --- the Runs pane leads Inspect ------------------------------------------------------

    @on(RunsPane.Highlighted)
    def _run_highlighted(self, message: RunsPane.Highlighted) -> None:
        # A highlight can arrive while the app is closing, its panes already gone.
        if message.info.resumable:
            for pane in self.query(InspectPane):
                pane.wanted = message.info.path

    @on(RunsPane.InspectRequested)
    def _inspect_requested(self, message: RunsPane.InspectRequested) -> None:
        self.query_one(InspectPane).wanted = message.path
        self.action_show_pane("inspect")

    # --- the Search pane: start a search, open a trial, train the best --------------------

    @on(SearchPane.SearchRequested)
    def _search_requested(self, message: SearchPane.SearchRequested) -> None:
        if self.config_problems:
            self.notify(
                "Fix the problems in the Hyperparameters pane first: the search starts "
                "from its settings.",
                severity="warning",
            )
            return
        try:
            space = self.query_one(HyperparamsPane).search_space()
        except ConfigError as exc:
            self.notify(
                "\n".join(exc.problems),
                title="Fix the search space first (Hyperparameters pane)",
                severity="warning",
                timeout=10,
            )
            return
        self.query_one(SearchPane).new_search(self.config, space)

    @on(SearchPane.OpenRequested)
    @stays_up
    def _trial_open_requested(self, message: SearchPane.OpenRequested) -> None:
        info = run_info(Run(message.path))
        if info.state.live:
            self.post_message(RunsPane.AttachRequested(info))
            return
        self.action_show_pane("runs")
        self.query_one(RunsPane).open_run(info.id)

    @on(SearchPane.TrainRequested)
    @stays_up
    def _train_best_requested(self, message: SearchPane.TrainRequested) -> None:
        if self.session.busy or self.run_state.live:
            self.notify(
                "The Monitor is busy with a run: stop it (x) or let it finish first.",
                severity="warning",
            )
            return
        config = message.config
        self.session.start(config, self._data_for(config))
        self._show_new_run(config.epochs, message.note)
        self._train()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from app_commands(self)
