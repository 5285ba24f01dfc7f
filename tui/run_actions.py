"""The app's run keys and workers: start, resume, extend, attach, pause, stop, detach, quit.

``RunActions`` is mixed into ``FmnistApp``. It drives the app's ``Session`` (which has
no Textual in it) and reflects the session's state in the ``run_state`` reactive:
the pane bar, the footer's keys and the form's Start button follow it. Each worker
posts ``WorkDone`` when it ends, so nothing is dispatched on worker group names.

Acting on a run never ends the app: a run folder another process deleted, a folder
that cannot be written (``control.json`` on a full disk) or any other error in a run
key's handler is an error notification (``stays_up``), and the app carries on.
"""

from __future__ import annotations

import functools
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from textual import on, work
from textual.app import App
from textual.reactive import reactive
from textual.worker import get_current_worker

from engine.errors import DataChangedError, EngineError
from engine.runs import Run, RunInfo
from engine.state import RunState
from engine.textlog import command_for
from engine.trainer import data_settings
from tui import messages
from tui.screens.confirm import ConfirmScreen
from tui.screens.extend import ExtendScreen
from tui.screens.hyperparams import HyperparamsPane
from tui.screens.monitor import MonitorPane
from tui.screens.quit import QuitScreen
from tui.screens.runs import RunsPane
from tui.session import RESPONSE_SECONDS, Asked, Session
from tui.widgets.pane_bar import PaneBar
from tui.widgets.progress import STATE_MARKS

if TYPE_CHECKING:
    from pathlib import Path

    from engine.config import TrainConfig
    from engine.data import ImageData


STARTING = "Starting: loading torch and the data…"
# Shown while an attached run's trainer has not answered a request yet.
ASKED = {"pause": "pausing…", "resume": "resuming…", "stop": "stopping…"}

_Handler = TypeVar("_Handler", bound=Callable[..., None])


def stays_up(handler: _Handler) -> _Handler:
    """Make an error in the app's run ``handler`` an error notification, not the app's
    end: ``EngineError`` and ``OSError`` (a run's expected faults) by their message,
    anything else by its type and message, with the traceback in Textual's log."""

    @functools.wraps(handler)
    def guarded(self: RunActions, *args: Any, **kwargs: Any) -> None:
        try:
            handler(self, *args, **kwargs)
        except (EngineError, OSError) as exc:
            self.notify(_reason(exc), title="Not done", severity="error", timeout=15)
        except Exception as exc:
            self.log.error(traceback.format_exc())
            self.notify(
                f"{type(exc).__name__}: {exc}",
                title="Unexpected error (the app carries on)",
                severity="error",
                timeout=30,
            )

    return cast("_Handler", guarded)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


class RunActions(App[None]):
    """The run half of the app (see the module docstring)."""

    run_state: reactive[RunState] = reactive(RunState.IDLE, init=False)
    response_seconds: float = RESPONSE_SECONDS
    """Seconds an attached run's trainer has to answer a pause, resume or stop before
    the app says it does not respond (set it on the app before ``run``; tests shorten it)."""
    _unanswered: Asked | None = None  # a request the app said had no answer

    session: Session
    config: TrainConfig
    config_problems: list[str]
    data: ImageData | None
    _data_key: tuple[tuple[str, object], ...]
    _training_done: threading.Event
    _quit_when_done: bool
    _bindings_shown: tuple[object, ...] | None = None  # what the footer last showed

    @property
    def monitor(self) -> MonitorPane:
        return self.query_one(MonitorPane)

    def action_show_pane(self, pane_id: str) -> None:
        raise NotImplementedError

    # --- the run: state -------------------------------------------------------------

    def _startable(self) -> bool:
        busy = self.session.busy or self.run_state.live
        return not busy and not self.config_problems

    def _update_startable(self) -> None:
        startable = self._startable()
        self.query_one(HyperparamsPane).set_startable(startable)
        # What check_action reads: the footer is rebuilt (every key a widget) only when it
        # changed, not at every keystroke in the form (45 rebuilds before the first screen).
        shown = (startable, self.run_state, self.session.busy, self.session.attached)
        if shown != self._bindings_shown:
            self._bindings_shown = shown
            self.refresh_bindings()

    @on(messages.SessionState)
    def _session_state(self, message: messages.SessionState) -> None:
        changed = message.state != self.run_state
        if self._unanswered is not None and self._unanswered is not self.session.asked:
            self._unanswered = None
            if not self.session.gone:
                self.monitor.log_event("The trainer answers again")
        self.run_state = message.state
        if not changed:  # a request answered without a change of state
            self.show_run_state(self.run_state)
            self.refresh_bindings()

    def watch_run_state(self, old: RunState, state: RunState) -> None:
        # Idle again (the run's worker ended): the bar still says how the run ended.
        self.show_run_state(old if state == RunState.IDLE and not old.live else state)
        if state == RunState.INTERRUPTED and self.session.gone:
            self.monitor.show_gone(self.session.gone)
        self._update_startable()

    def show_run_state(self, shown: RunState) -> None:
        """Put ``shown`` (with its mark) on the pane bar's right; an attached run's request
        its trainer has not answered yet, and why a run ended unseen, beside it."""
        asked = self.session.asked
        if asked is not None and self.session.attached:
            mark, _style = STATE_MARKS["stopping"]
            silent = " (no answer)" if asked is self._unanswered else ""
            short = f"{mark} {ASKED[asked.command]}"
            text = short + silent
        else:
            mark, _style = STATE_MARKS.get(shown.value, ("", ""))
            short = text = f"{mark} {shown.value}"
            if shown == RunState.INTERRUPTED and self.session.gone:
                text += f" ({self.session.gone})"
        bars = self.query(PaneBar)
        if not bars:  # the app is closing: its screen is gone
            return
        bar = bars.first()
        bar.status, bar.short_status = text, short
        bar.refresh()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        state = self.run_state
        if action in ("start", "start_detached"):
            # Hidden while attached: the footer shows only the keys that act on that run.
            if self.session.attached:
                return False
            return True if self._startable() else None
        # A request the trainer has not answered yet: no pause or resume key until it does
        # (a stop may still be asked: a stop always wins).
        pending = self.session.asked is not None
        if action == "pause":
            return (
                self.session.busy and not pending and state in (RunState.STARTING, RunState.RUNNING)
            )
        if action == "resume":
            return self.session.busy and not pending and state == RunState.PAUSED
        if action == "stop":
            return self.session.busy and state in (
                RunState.STARTING,
                RunState.RUNNING,
                RunState.PAUSED,
            )
        return True

    # --- the run: starting ------------------------------------------------------------

    def _data_for(self, config: TrainConfig) -> ImageData | None:
        """The loaded data, if ``config`` trains on it (a run with other data loads its own)."""
        return self.data if data_settings(config) == self._data_key else None

    def _refuse_start(self) -> bool:
        if self._startable():
            return False
        if self.config_problems:
            self.notify("Fix the problems in the Hyperparameters pane first.", severity="warning")
        elif self.session.busy or self.run_state.live:
            self.notify(
                "The Monitor is busy with a run: stop it (x) or let it finish first.",
                severity="warning",
            )
        return True

    @stays_up
    def action_start(self) -> None:
        """Train with the form's settings in this app's worker thread (``S``: detached).

        A run of several processes (``nproc_per_node > 1``) always trains detached: its
        ranks are torchrun's workers, and the Monitor follows rank 0's run folder.
        """
        if self._refuse_start():
            return
        if self.config.nproc_per_node > 1:
            processes = self.config.nproc_per_node
            self._show_new_run(self.config.epochs, f"Starting {processes} processes (torchrun)…")
            self._spawn(self.config, None)
            return
        self.session.start(self.config, self._data_for(self.config))
        self._show_new_run(self.config.epochs)
        self._train()

    @stays_up
    def action_start_detached(self) -> None:
        """Train with the form's settings in a process of its own, and watch it.

        The run outlives this app and its terminal; ``fmnist-tui attach`` (or the Runs
        pane) watches it again later.
        """
        if self._refuse_start():
            return
        self._show_new_run(self.config.epochs, "Starting the run in a process of its own…")
        self._spawn(self.config, None)

    def _show_new_run(self, epochs: int, note: str = STARTING) -> None:
        self.run_state = RunState.STARTING  # at once; the session says so from its worker
        self._training_done.clear()
        self.monitor.begin(epochs, note)
        self.action_show_pane("monitor")

    def _gone(self, info: RunInfo) -> bool:
        """True (and says so) if ``info``'s run folder was deleted since it was listed."""
        if (info.path / "config.json").is_file():
            return False
        self.notify(
            f"Run {info.id} is gone: its folder {info.path} no longer exists "
            "(deleted by another process?).",
            title="No such run",
            severity="error",
            timeout=10,
        )
        return True

    @on(RunsPane.ResumeRequested)
    @stays_up
    def _resume_requested(self, message: RunsPane.ResumeRequested) -> None:
        info = message.info
        if info.config is None or self._refuse_start() or self._gone(info):
            return
        if message.detached or info.config.nproc_per_node > 1:
            self._show_new_run(info.epochs, "Resuming the run in a process of its own…")
            self._spawn(Run(info.path), message.epochs)
            return
        self.session.resume(Run(info.path), self._data_for(info.config), message.epochs)
        self._show_new_run(message.epochs or info.epochs, f"Resuming {info.id}…")
        self._train()

    @on(RunsPane.ExtendRequested)
    @stays_up
    def _extend_requested(self, message: RunsPane.ExtendRequested) -> None:
        info = message.info

        def confirmed(epochs: int | None) -> None:
            if epochs:
                self.post_message(RunsPane.ResumeRequested(info, False, epochs))

        if not self._refuse_start() and not self._gone(info):
            self.push_screen(ExtendScreen(info), confirmed)

    @on(RunsPane.AttachRequested)
    @stays_up
    def _attach_requested(self, message: RunsPane.AttachRequested) -> None:
        run = self.session.run
        if self.session.attached and run is not None and run.path == message.info.path:
            self.action_show_pane("monitor")
        elif not self._refuse_start() and not self._gone(message.info):
            self._attach_run(Run(message.info.path))

    def _attach_run(self, run: Run) -> None:
        self.session.attach(run)
        self.run_state = RunState.STARTING
        self.monitor.begin_attached(run.id, str(run.read_status().get("started", "")))
        self.action_show_pane("monitor")
        self._follow()

    # --- the run: workers (each posts WorkDone when it ends) ----------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def _train(self) -> None:
        worker, session, error = get_current_worker(), self.session, ""
        trainer = session.trainer
        if trainer is not None:
            trainer.add_listener(
                lambda _e: trainer.stop("interrupt") if worker.is_cancelled else None
            )
        try:
            session.train()
            if session.detach_requested and session.run is not None:
                started = session.spawn(session.run)
                self.post_message(messages.DetachedStarted(started.run_dir, started.pid))
        except DataChangedError as exc:
            # Refused before it trained, nothing changed: ask whether to go on (not a failure).
            if trainer is not None and trainer.run is not None:
                changed = messages.DataChanged(trainer.run.path, trainer.config.epochs, exc.changes)
                self.post_message(changed)
            else:
                error = str(exc)
        except Exception as exc:
            error = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
        finally:
            self._training_done.set()
        self.post_message(messages.WorkDone(error, "Training failed"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="detach")
    def _spawn(
        self, source: TrainConfig | Run, epochs: int | None, allow_data_change: bool = False
    ) -> None:
        try:
            if isinstance(source, Run) and not allow_data_change:
                # The detached trainer would refuse changed data with a line in its log;
                # held against the run's record here first, the question can be asked.
                from engine.trainer import Trainer

                Trainer.resume(
                    source, epochs=epochs, model_factory=self.session.model_factory
                ).prepare_data()
            started = self.session.spawn(source, epochs, allow_data_change=allow_data_change)
        except DataChangedError as exc:
            self._training_done.set()
            assert isinstance(source, Run)
            total = epochs if epochs is not None else source.config().epochs
            self.post_message(messages.DataChanged(source.path, total, exc.changes, True))
            return
        except Exception as exc:
            self._training_done.set()
            text = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            self.post_message(messages.WorkDone(text, "Not started"))
            return
        self.post_message(messages.DetachedStarted(started.run_dir, started.pid))

    @on(messages.DataChanged)
    def _data_changed(self, message: messages.DataChanged) -> None:
        """A resume here was refused for changed data: say so in the Monitor, and ask
        whether to go on with the data as it is (``--allow-data-change`` in the CLI)."""
        run_id = message.run_dir.name
        changes = "; ".join(message.changes)
        self.monitor.set_state(RunState.IDLE.value)
        self.monitor.log_event(
            f"Not resumed: the data of run {run_id} changed since it was trained ({changes}), "
            "so images it trained on could be tested on, or the reverse; nothing in the run "
            "was changed. Put back the data it trained on, start a new run, or go on with the "
            "data as it is now (r or R in the Runs pane asks again)."
        )
        question = (
            f"The data of run {run_id} changed since it was trained ({changes}). Go on "
            "with the data as it is now? Images it trained on could be tested on, or the "
            "reverse; the change is recorded in its status.json and log."
        )

        def answered(yes: bool | None) -> None:
            if yes and message.detached:
                if not self._refuse_start():
                    self._show_new_run(
                        message.epochs,
                        f"Resuming {run_id} in a process of its own with its data as it is now…",
                    )
                    self._spawn(Run(message.run_dir), message.epochs, True)
            elif yes:
                self._resume_changed(message.run_dir, message.epochs)

        self.push_screen(
            ConfirmScreen(question, "Go on with this data", "Leave the run as it is"), answered
        )

    @stays_up
    def _resume_changed(self, run_dir: Path, epochs: int) -> None:
        """Resume the run in ``run_dir`` here to ``epochs`` with its data as it is now."""
        if self._refuse_start():
            return
        run = Run(run_dir)
        config = run.config()  # CheckpointError (said) if the run is gone
        if config.nproc_per_node > 1:  # its ranks train in processes of their own
            self._show_new_run(epochs, f"Resuming {run.id} in processes of its own…")
            self._spawn(run, epochs, True)
            return
        data = self._data_for(config)
        self.session.resume(run, data, epochs, allow_data_change=True)
        self._show_new_run(epochs, f"Resuming {run.id} with its data as it is now…")
        self._train()

    @on(messages.DetachedStarted)
    def _detached_started(self, message: messages.DetachedStarted) -> None:
        name = message.run_dir.name
        attach = command_for("attach", name, message.run_dir)
        if self._quit_when_done:
            self.exit(
                message=f"Run {name} trains on in the background (pid {message.pid}); "
                f"`{attach}` watches it."
            )
            return
        self.monitor.log_event(
            f"Detached: it trains on after this app quits; `{attach}` watches it again."
        )
        self._follow()

    @work(thread=True, exclusive=True, exit_on_error=False, group="follow")
    def _follow(self) -> None:
        worker, error = get_current_worker(), ""
        try:
            self.session.follow(lambda: worker.is_cancelled)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._training_done.set()
        self.post_message(messages.WorkDone(error, "Cannot follow the run"))

    @on(messages.WorkDone)
    def _work_done(self, message: messages.WorkDone) -> None:
        if message.error:
            self.notify(message.error, title=message.title, severity="error", timeout=15)
            self._quit_when_done = False  # stay, so the reason can be read
            self.monitor.set_state(RunState.FAILED.value)
            self.monitor.log_event(f"Failed: {message.error}")
        if not self.session.busy:
            self.run_state = RunState.IDLE
        self._update_startable()
        if self._quit_when_done and not self.session.busy:
            run = self.session.run
            if run is not None and self.session.state == RunState.STOPPED:
                resume = command_for("train --resume", run.id, run.path)
                self.exit(message=f"Run {run.id} stopped with a checkpoint; `{resume}` resumes it.")
            else:
                self.exit()

    # --- the run: control -------------------------------------------------------------

    @stays_up
    def action_pause(self) -> None:
        self._control("pause", self.session.pause)

    @stays_up
    def action_resume(self) -> None:
        self._control("resume", self.session.resume_training)

    @stays_up
    def action_stop(self) -> None:
        if self.session.busy and self._control("stop", lambda: self.session.stop("stop")):
            self.monitor.log_event("Stopping at the next batch…")

    def _control(self, command: str, act: Callable[[], None]) -> bool:
        """``act``; for an attached run, show the request as pending until its trainer
        answers, and say so if it has not within ``response_seconds``. False (and a
        notification) if the request could not be written."""
        run = self.session.run
        try:
            act()
        except OSError as exc:
            where = run.control_path if run is not None else "the run folder"
            self.notify(
                f"Cannot ask the run to {command}: cannot write {where} "
                f"({exc.strerror or exc}). Nothing was changed.",
                title="Request not sent",
                severity="error",
                timeout=15,
            )
            return False
        asked = self.session.asked
        if asked is not None and self.session.attached:
            self.monitor.set_state(ASKED[command])
            self.show_run_state(self.run_state)
            self.refresh_bindings()
            self.set_timer(self.response_seconds, lambda: self._no_answer(asked))
        return True

    def _no_answer(self, asked: Asked) -> None:
        """``response_seconds`` after ``asked``: say so if its trainer has not answered."""
        run = self.session.run
        if self.session.asked is not asked or run is None:
            return
        pid = run.read_status().get("pid")
        who = f"the trainer (pid {pid})" if isinstance(pid, int) else "the trainer"
        text = (
            f"Asked run {run.id} to {asked.command} {self.response_seconds:g} s ago: "
            f"{who} does not respond. It may be stopped (kill -STOP) or stuck; "
            "the request stands if it goes on."
        )
        self._unanswered = asked
        self.notify(text, title="No answer", severity="warning", timeout=15)
        self.monitor.log_event(f"No answer: {who} does not respond")
        self.show_run_state(self.run_state)

    # --- quitting -------------------------------------------------------------------

    async def action_quit(self) -> None:
        # An attached run trains on in its own process: leaving it needs no question.
        if not self.session.trains_here:
            self.exit()
            return
        if self._quit_when_done or isinstance(self.screen, QuitScreen):
            return
        self.push_screen(QuitScreen(), self._quit_chosen)

    def _quit_chosen(self, choice: str | None) -> None:
        if choice == "detach":
            self._quit_when_done = True
            self.session.detach()
            self.monitor.log_event(
                "Detaching: saving a checkpoint, then training on in the background…"
            )
        elif choice == "stop":
            self._stop_then_exit()

    def _stop_then_exit(self) -> None:
        if not self.session.trains_here:
            self.exit()
            return
        self._quit_when_done = True
        self.session.stop("quit")  # status.json's reason: the Runs pane words it
        self.monitor.log_event("Stopping to quit: saving a checkpoint…")
        self.notify("Stopping at the next batch and saving a checkpoint…", timeout=30)
