"""``Session``: the app's run, whichever way it trains, with no Textual in it.

A run is trained here (a ``Trainer`` on the app's worker thread) or in another process
(attached: followed through its folder's ``metrics.jsonl``, steered with a
``RemoteControl``). The session starts, resumes, extends, attaches, pauses, stops and
detaches runs, turns their events into one ``RunState``, and hands every event to
``on_event`` and every change of state to ``on_state``. Both are called on whatever
thread the work runs on (the app passes functions that post messages).

An attached run's state is only ever what its trainer said: a pause, resume or stop
asked through the folder is ``asked`` (pending) until the trainer's own event answers
it, so a trainer that is stopped (``kill -STOP``) or gone is never shown as paused or
stopping.

The blocking parts (``train``, ``follow``, ``spawn``) are meant for a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.control import RemoteControl
from engine.errors import DataChangedError
from engine.events import Event, Failed, Finished, RunStarted, StateChanged
from engine.runs import MetricsFollower, Run
from engine.state import RunState

if TYPE_CHECKING:
    from engine.config import TrainConfig
    from engine.data import ImageData
    from engine.detach import Detached
    from engine.trainer import FitResult, Trainer

# How often an attached run's log is read, in seconds.
FOLLOW_POLL_SECONDS = 0.25
# Seconds an attached run's trainer has to answer a pause, resume or stop before the
# app says it does not respond (it polls the folder every 0.25 s, between batches).
RESPONSE_SECONDS = 5.0
# Why an attached run ended without its trainer's last word (``Session.gone``).
TRAINER_GONE = "the training process is gone"
FOLDER_GONE = "the run's folder is gone"


@dataclass(frozen=True)
class Replayed:
    """Events a run logged before this session saw it (shown as history, not as news)."""

    events: list[Event]


@dataclass(frozen=True)
class Asked:
    """A request written to an attached run's folder that its trainer has not answered."""

    command: str  # "pause", "resume" or "stop"
    at: float  # time.monotonic() when it was written


class Session:
    """The one run the app shows: trained here, or attached to in another process."""

    def __init__(
        self,
        on_event: Callable[[Event | Replayed], None],
        on_state: Callable[[RunState], None],
    ) -> None:
        self.on_event = on_event
        self.on_state = on_state
        # The factory the user named with ``--model`` (the app's flag): the one model from
        # their code that runs started, resumed or spawned here may import.
        self.model_factory: str | None = None
        self.state = RunState.IDLE
        self.trainer: Trainer | None = None
        self.remote: RemoteControl | None = None
        self.run: Run | None = None
        self.detach_requested = False
        # Why an attached run ended without its trainer's last word (TRAINER_GONE or
        # FOLDER_GONE); "" otherwise.
        self.gone = ""
        self.asked: Asked | None = None  # an attached run's request, not yet answered

    # --- what the session holds ---------------------------------------------------------

    @property
    def attached(self) -> bool:
        return self.remote is not None

    @property
    def trains_here(self) -> bool:
        return self.trainer is not None

    @property
    def busy(self) -> bool:
        """True while a run trains here or is attached (a new one must wait)."""
        return self.trainer is not None or self.remote is not None

    def _set(self, state: RunState, *, answered: bool = False) -> None:
        """Enter ``state``; ``answered``: it answers the pending request (shown either way)."""
        if answered and self.asked is not None:
            self.asked = None
            self.state = state
            self.on_state(state)
        elif state != self.state:
            self.state = state
            self.on_state(state)

    def _ask(self, command: str, write: Callable[[], None]) -> None:
        """Write ``command`` to the attached run's folder; it is ``asked`` until answered."""
        self.asked = Asked(command, time.monotonic())  # before: the answer may be quick
        try:
            write()
        except BaseException:
            self.asked = None
            raise

    def _listen(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            if event.run_dir:
                self.run = Run(Path(event.run_dir))
            if event.resumed and self.trainer is not None and self.run is not None:
                # The trainer has cut the log to its checkpoint and logged this start:
                # everything before it is the run's history.
                self.on_event(Replayed(self.run.read_metrics().events[:-1]))
            self._set(RunState.RUNNING)
        elif isinstance(event, StateChanged):
            if self.state != RunState.STOPPING:
                asked = self.asked.command if self.asked is not None else ""
                paused = event.state == "paused"
                answered = asked == ("pause" if paused else "resume")
                self._set(RunState.PAUSED if paused else RunState.RUNNING, answered=answered)
        elif isinstance(event, Finished):
            state = RunState.FINISHED if event.status == "finished" else RunState.STOPPED
            self._set(state, answered=True)
        elif isinstance(event, Failed):
            self._set(RunState.FAILED, answered=True)
        self.on_event(event)

    # --- runs trained here ----------------------------------------------------------------

    def start(self, config: TrainConfig, data: ImageData | None = None) -> Trainer:
        """Prepare a new run with ``config``; ``train()`` (on a worker thread) trains it."""
        from engine.trainer import Trainer

        trainer = Trainer(
            config, data=data, listeners=(self._listen,), model_factory=self.model_factory
        )
        return self._hold(trainer)

    def resume(
        self,
        run: Run,
        data: ImageData | None = None,
        epochs: int | None = None,
        *,
        allow_data_change: bool = False,
    ) -> Trainer:
        """Prepare to continue ``run`` here; ``epochs`` extends it to a new total, and
        ``allow_data_change`` lets it go on with data that changed since it was trained
        (``Trainer.resume``; without it ``train()`` raises ``DataChangedError``)."""
        from engine.trainer import Trainer

        trainer = Trainer.resume(
            run,
            data=data,
            epochs=epochs,
            listeners=(self._listen,),
            allow_data_change=allow_data_change,
            model_factory=self.model_factory,
        )
        return self._hold(trainer)

    def _hold(self, trainer: Trainer) -> Trainer:
        self.trainer, self.run, self.detach_requested, self.gone = (
            trainer,
            trainer.run,
            False,
            "",
        )
        self.asked = None
        self._set(RunState.STARTING)
        return trainer

    def train(self) -> FitResult | None:
        """Train the prepared run to its end (blocking). Errors propagate after a FAILED
        state; a resume refused because the run's data changed (``DataChangedError``)
        changed nothing, and leaves the session IDLE."""
        trainer = self.trainer
        if trainer is None:
            return None
        try:
            return trainer.fit()
        except DataChangedError:
            self._set(RunState.IDLE)
            raise
        except BaseException:
            self._set(RunState.FAILED)
            raise
        finally:
            self.run = trainer.run
            self.trainer = None

    # --- runs in another process ----------------------------------------------------------

    def spawn(
        self,
        source: TrainConfig | Run,
        epochs: int | None = None,
        *,
        allow_data_change: bool = False,
    ) -> Detached:
        """Start ``source`` (a config, or a run to resume) in a process of its own and
        attach; ``allow_data_change`` lets a resumed run go on with changed data."""
        from engine.detach import spawn_detached

        self._set(RunState.STARTING)
        try:
            started = spawn_detached(
                source,
                epochs=epochs,
                allow_data_change=allow_data_change,
                model_factory=self.model_factory,
            )
        except BaseException:
            self._set(RunState.FAILED)
            raise
        self.attach(started.run)
        return started

    def attach(self, run: Run) -> None:
        """Watch and steer ``run``, trained by another process; ``follow()`` feeds its events."""
        self.run, self.remote, self.gone, self.asked = run, RemoteControl(run), "", None
        self._set(RunState.STARTING)

    def follow(self, cancelled: Callable[[], bool]) -> None:
        """Feed the attached run's events, past and new, until its trainer lets go (blocking).

        A resumed run's log holds the Finished of the session it resumes until the
        trainer cuts it back to its checkpoint, so the watch begins after that cut and
        only the lock's release ends it. A trainer that let go without a Finished or
        Failed event died: the state becomes INTERRUPTED and ``gone`` says so
        (``TRAINER_GONE``). A run folder deleted meanwhile ends it too (``FOLDER_GONE``):
        its lock can no longer be probed, nor its log read.
        """
        run = self.run
        if run is None or self.remote is None:
            return
        follower = MetricsFollower(run)
        ended = True
        try:
            # A trainer resuming the run cuts the log back to its checkpoint before it logs
            # anything. Until then the log ends with the last session's end: read now, the
            # follower would go on from a place the cut removes and miss the new start.
            while run.is_locked() and _ends_a_session(run) and not cancelled():
                time.sleep(FOLLOW_POLL_SECONDS)
            while not cancelled():
                for event in follower.poll():
                    ended = isinstance(event, (Finished, Failed))
                    self._listen(event)
                if not run.is_locked():
                    # One last read: the trainer may have written its last events and let go.
                    for event in follower.poll():
                        ended = isinstance(event, (Finished, Failed))
                        self._listen(event)
                    if not ended:
                        self.gone = TRAINER_GONE if run.path.is_dir() else FOLDER_GONE
                        self._set(RunState.INTERRUPTED, answered=True)
                    return
                time.sleep(FOLLOW_POLL_SECONDS)
        finally:
            self.remote = None

    # --- control (any thread) -------------------------------------------------------------

    def pause(self) -> None:
        """Pause at the next batch boundary. An attached run's pause is ``asked`` until its
        trainer answers; ``OSError`` if its folder cannot be written (full, read-only)."""
        if self.trainer is not None:
            self.trainer.pause()
        elif self.remote is not None:
            self._ask("pause", self.remote.pause)

    def resume_training(self) -> None:
        """Go on after a pause; for an attached run as ``pause()`` (``asked``, ``OSError``)."""
        if self.trainer is not None:
            self.trainer.resume_training()
        elif self.remote is not None:
            self._ask("resume", self.remote.resume)

    def stop(self, reason: str = "stop") -> None:
        """Stop at the next batch boundary with a resumable checkpoint.

        An attached run is stopped only when a person asks ("stop"). An "interrupt" (the
        app quitting, a signal) stops a run trained here, which cannot outlive the app,
        but leaves one in a process of its own training: outliving the app is its point.
        An attached run's stop is ``asked`` (its state stays what its trainer last said)
        until the trainer answers; ``OSError`` if its folder cannot be written.
        """
        if self.trainer is not None:
            self.trainer.stop(reason)
            self._set(RunState.STOPPING)
        elif self.remote is not None and reason == "stop":
            self._ask("stop", self.remote.stop)

    def detach(self) -> None:
        """Stop the run trained here at a batch boundary; ``train()``'s caller then spawns
        it (``spawn(session.run)``) to continue, exactly, in a process of its own."""
        if self.trainer is not None:
            self.detach_requested = True
            self.stop("detach")


def _ends_a_session(run: Run) -> bool:
    """Whether ``run``'s log ends with a session's end (finished, stopped or failed)."""
    events = run.read_metrics().events
    return bool(events) and isinstance(events[-1], (Finished, Failed))
