"""The app's signal handling: a lost terminal (SIGHUP), a ``kill`` (SIGTERM) or a
``kill -INT`` (SIGINT; Ctrl+C itself is a key in the app).

Each stops the run at the next batch boundary with a resumable checkpoint and end
the app without asking. These are Python signal handlers, not the event loop's: they
run even while the UI thread is stuck writing to a lost terminal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

# After a hang-up, seconds the normal exit gets (once the run is saved) before the
# process ends itself.
HANGUP_GRACE_SECONDS = 3.0


class AppSignals:
    """Installs SIGHUP, SIGTERM and SIGINT handlers for the app, and puts the old ones
    back. ``signalled`` is the number of the signal that ended the app (None: none did),
    so that ``fmnist-tui`` exits 130 after one, as ``fmnist-tui train`` does.

    ``stop()`` is called at once (from the signal handler: it must only set flags),
    then ``quit()`` on the event loop (through ``call_soon``, which is thread-safe).
    After a hang-up, ``training_done`` is awaited by a watchdog that ends the process
    ``HANGUP_GRACE_SECONDS`` later if the normal exit has not.
    """

    def __init__(
        self,
        *,
        stop: Callable[[], None],
        quit: Callable[[], None],
        call_soon: Callable[[Callable[[], None]], Any],
        training_done: threading.Event,
        headless: bool,
    ) -> None:
        self._stop = stop
        self._quit = quit
        self._call_soon = call_soon
        self._training_done = training_done
        self._headless = headless
        self._previous: dict[int, Any] = {}
        self.signalled: int | None = None

    def install(self) -> None:
        with contextlib.suppress(ValueError):  # not the main thread: leave them alone
            self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._hung_up)
            self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._terminated)
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._terminated)

    def restore(self) -> None:
        with contextlib.suppress(ValueError):
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
        self._previous.clear()

    def _hung_up(self, _signum: int, _frame: FrameType | None) -> None:
        if not self._headless:
            # Writes to a lost terminal fail; Textual's output thread dies on the first
            # and the UI thread then blocks on its next screen update. Send output
            # nowhere, and let a watchdog end the process once the run is saved.
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            threading.Thread(target=self._exit_after_hangup, daemon=True).start()
        self._terminated(_signum, _frame)

    def _terminated(self, signum: int, _frame: FrameType | None) -> None:
        self.signalled = signum
        self._stop()
        self._call_soon(self._quit)

    def _exit_after_hangup(self) -> None:
        self._training_done.wait()
        # The normal exit, if the UI thread is free, takes well under this.
        time.sleep(HANGUP_GRACE_SECONDS)
        os._exit(128 + signal.SIGHUP)
