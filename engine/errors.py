"""The engine's error types: every mistake a user can make raises one of these.

Front ends (the CLI, the app) catch ``EngineError`` and show its message; anything
else is a bug and may show a traceback.
"""

from __future__ import annotations


class EngineError(Exception):
    """A problem the user can fix: bad input, missing data, an absent device."""


class ConfigError(EngineError, ValueError):
    """One or more hyperparameters are invalid; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(message)


class DataError(EngineError):
    """A dataset file is missing, truncated or malformed; the message names the file."""


class DataChangedError(DataError):
    """A resumed run's data changed since it was trained (``Trainer.resume`` without
    ``allow_data_change``); nothing in the run was changed. The message says what changed
    and what to do; ``run_id`` names the run and ``changes`` lists each change in a short
    phrase ("test images: 8 then, 12 now")."""

    def __init__(self, message: str, run_id: str, changes: list[str]) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.changes = list(changes)


class DeviceError(EngineError):
    """The requested device does not exist on this machine."""


class ModelError(EngineError):
    """A model from the user's own code (``--model package.module:factory`` or
    ``path/to/file.py:factory``) was not asked for by name, or cannot be imported, built or
    used: the message names the reference and says why (``engine.own_model``)."""


class CheckpointError(EngineError):
    """A checkpoint or run folder is missing, corrupt, or not one of ours."""


class TrainingError(EngineError):
    """Training could not go on (a NaN loss, out of memory); the message says why."""


class DivergedError(TrainingError):
    """The loss stopped being finite (a learning rate too high, say): the model diverged.
    The message says at which epoch and batch. A search prunes such a trial."""
