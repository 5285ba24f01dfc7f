"""What every part of a hyperparameter search shares: its options, its error, where a
study's files are, the locks, and the storage (``engine.search`` re-exports the public
names; import them from there).

A study's files sit in ``RUNS/studies``: ``NAME.journal`` (Optuna's journal, the default
storage), ``NAME.lock`` (taken while a process decides whether to start a trial, so that
workers on one machine never start more than the study needs), ``NAME.json`` (the process
running the search now or last) and ``NAME.log`` (a detached search's output). Trial
runs sit directly in RUNS, as any run does.

The journal's own lock is an ``flock`` on the journal file: the kernel lets go of it when
its holder dies, so a worker killed while appending never makes the others wait out a
grace period (Optuna's default lock is a symbolic link removed after 30 s).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import re
import socket
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import files
from engine.errors import EngineError

if TYPE_CHECKING:
    import optuna

STUDIES = "studies"
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
# A study name is a file name and part of its trial runs' names (config ``name``, at most
# 64 characters with the "-t007" suffix).
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,49}$")
RDB_SCHEMES = ("postgresql://", "postgresql+psycopg2://")
# Seconds: libpq's connect timeout, and the most open_storage waits for a database.
CONNECT_TIMEOUT = 5
STORAGE_DEADLINE = 9.0
# Seconds: RDB storage heartbeats; a trial silent for GRACE_PERIOD is failed as stale.
HEARTBEAT_INTERVAL = 20
GRACE_PERIOD = 60
HOST = socket.gethostname()


class SearchError(EngineError):
    """A search cannot start or go on: a bad study name or storage URL, an unreachable
    database, a grid over ranges, an unknown study. The message is one line saying what is
    wrong and what is allowed."""


@dataclass(frozen=True)
class SearchOptions:
    """How to search: ``study`` names it; ``trials`` is how many finished trials (complete
    and pruned, across every worker and restart) end it; ``timeout`` in seconds (None: no
    limit) stops starting trials after that long; ``sampler`` one of tpe, random, grid;
    ``pruner`` one of median, hyperband, none; ``storage`` None for the journal in
    RUNS/studies, else a ``postgresql://`` URL; ``workers`` processes on this machine, or
    one per device in ``devices`` (``("cuda:0", "cuda:1")``); ``epochs`` each trial's length
    (None: the base config's)."""

    study: str
    trials: int
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None
    workers: int = 1
    devices: tuple[str, ...] = ()
    epochs: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-ready data (``devices`` as a list)."""
        return {
            "study": self.study,
            "trials": self.trials,
            "timeout": self.timeout,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "storage": self.storage,
            "workers": self.workers,
            "devices": list(self.devices),
            "epochs": self.epochs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchOptions:
        """``to_dict``'s form back; ``KeyError``/``TypeError`` for a malformed one."""
        return cls(**{**data, "devices": tuple(data.get("devices") or ())})

    @property
    def worker_count(self) -> int:
        """Worker processes: one per device when devices are given, else ``workers``."""
        return len(self.devices) or self.workers


def now_text() -> str:
    """The local time as ISO 8601 to the second, with its UTC offset."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def default_study_name() -> str:
    """A study name for now: ``search-YYYYmmdd-HHMMSS``."""
    return _dt.datetime.now().strftime("search-%Y%m%d-%H%M%S")


def check_study_name(name: str) -> str:
    """``name`` if it can name a study, else ``SearchError`` saying what is allowed."""
    if not STUDY_NAME.match(name or ""):
        shown = json.dumps(name)[:60]
        raise SearchError(
            f"--study {shown} cannot name a study: use 1 to 50 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (it names a file and its trials' runs)"
        )
    return name


def studies_dir(runs_dir: str | Path) -> Path:
    """``RUNS/studies``: where the studies' journals, locks and logs are."""
    return Path(runs_dir).expanduser() / STUDIES


def journal_path(runs_dir: str | Path, study: str) -> Path:
    """``RUNS/studies/STUDY.journal``: the study's Optuna journal (the default storage)."""
    return studies_dir(runs_dir) / f"{study}.journal"


def lock_path(runs_dir: str | Path, study: str) -> Path:
    """``RUNS/studies/STUDY.lock``: taken while a process decides whether to start a trial."""
    return studies_dir(runs_dir) / f"{study}.lock"


def log_path(runs_dir: str | Path, study: str) -> Path:
    """``RUNS/studies/STUDY.log``: a detached search's output."""
    return studies_dir(runs_dir) / f"{study}.log"


def process_path(runs_dir: str | Path, study: str) -> Path:
    """``RUNS/studies/STUDY.json``: the process running the study's search (pid, host)."""
    return studies_dir(runs_dir) / f"{study}.json"


def make_studies_dir(runs_dir: str | Path) -> Path:
    """Create ``RUNS/studies`` if needed; ``SearchError`` if it cannot be."""
    folder = studies_dir(runs_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SearchError(f"cannot create {folder}: {exc.strerror or exc}") from None
    return folder


@contextlib.contextmanager
def flock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (made empty if missing) while inside;
    ``SearchError`` if it cannot be opened. The kernel releases it if this process dies."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o666)
    except OSError as exc:
        raise SearchError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def study_lock(runs_dir: str | Path, study: str) -> contextlib.AbstractContextManager[None]:
    """The study's lock (``RUNS/studies/STUDY.lock``): held to decide whether to start a
    trial and to start it, to fail dead trials, and to create the study."""
    make_studies_dir(runs_dir)
    return flock(lock_path(runs_dir, study))


def _journal_lock(path: Path) -> Any:
    """A lock for ``JournalFileBackend``: an ``flock`` on the journal file itself."""
    from optuna.storages.journal import JournalFileOpenLock

    class JournalFlock(JournalFileOpenLock):
        """Optuna's journal lock as an ``flock`` (released by the kernel when its holder
        dies), in place of a lock file that outlives a killed holder by a grace period."""

        def __init__(self, target: Path) -> None:  # no lock file: nothing to set up
            self._target = target
            self._fd: int | None = None

        def acquire(self) -> bool:
            fd = os.open(self._target, os.O_RDONLY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            return True

        def release(self) -> None:
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)

    return JournalFlock(path)


def quiet_optuna() -> None:
    """Optuna says nothing but errors, and no experimental-feature warnings: the search
    reports its trials itself."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def hide_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)


_JOURNALS: dict[Path, tuple[tuple[int, int], int, optuna.storages.BaseStorage]] = {}
_JOURNALS_LOCK = threading.Lock()


def open_storage(
    storage: str | None, runs_dir: str | Path, study: str, *, create: bool = True
) -> optuna.storages.BaseStorage:
    """The storage a study lives in.

    ``None``: ``JournalStorage(JournalFileBackend(RUNS/studies/STUDY.journal))`` with an
    ``flock`` for its lock (made, with ``RUNS/studies``, when ``create``; with ``create``
    False a missing journal is a ``SearchError`` naming the studies there are). One
    journal storage is kept per file in this process, read on from where it was.
    ``postgresql://USER:PASSWORD@HOST:PORT/DB``: Optuna's ``RDBStorage``, with a
    ``connect_timeout`` of 5 s, heartbeats every ``HEARTBEAT_INTERVAL`` s and trials silent
    for ``GRACE_PERIOD`` s failed. Anything else, a missing driver (the [postgres] extra),
    or a database that refuses or does not answer within ``STORAGE_DEADLINE`` s raises
    ``SearchError`` (one line, password hidden).
    """
    quiet_optuna()
    if storage is None or storage == "":
        return _journal_storage(runs_dir, study, create=create)
    if not storage.startswith(RDB_SCHEMES):
        raise SearchError(
            f"--storage {json.dumps(hide_password(storage))[:80]} is not a storage this "
            "can use: leave it out for the journal in RUNS/studies, or give "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    return _rdb_storage(storage)


def _journal_storage(
    runs_dir: str | Path, study: str, *, create: bool
) -> optuna.storages.BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    path = journal_path(runs_dir, study)
    if not create and not path.is_file():
        known = ", ".join(list_study_names(runs_dir)[:8]) or "none"
        raise SearchError(f"no study {study} in {studies_dir(runs_dir)} (studies there: {known})")
    if create:
        make_studies_dir(runs_dir)
    key = path.resolve()
    with _JOURNALS_LOCK:
        try:
            info = os.stat(path)
            identity, size = (info.st_dev, info.st_ino), info.st_size
        except FileNotFoundError:
            identity, size = (0, 0), 0
        cached = _JOURNALS.get(key)
        if cached is not None and cached[0] == identity and cached[1] <= size:
            _JOURNALS[key] = (identity, size, cached[2])
            return cached[2]
        try:
            backend = JournalFileBackend(str(path), lock_obj=_journal_lock(path))
            journal = JournalStorage(backend)
        except OSError as exc:
            raise SearchError(f"cannot open {path}: {exc.strerror or exc}") from None
        except ValueError as exc:  # a damaged journal line
            raise SearchError(f"cannot read {path}: {exc}") from None
        info = os.stat(path)
        _JOURNALS[key] = ((info.st_dev, info.st_ino), info.st_size, journal)
        return journal


def forget_journal(path: Path) -> None:
    """Drop the journal storage kept for ``path`` (a deleted study)."""
    with _JOURNALS_LOCK:
        _JOURNALS.pop(path.resolve(), None)


def _rdb_storage(url: str) -> optuna.storages.BaseStorage:
    shown = hide_password(url)
    try:
        import psycopg2  # noqa: F401  (the driver RDBStorage loads for postgresql://)
    except ImportError:
        raise SearchError(
            f"--storage {shown} needs the PostgreSQL driver: pip install 'fmnist-tui[postgres]'"
        ) from None
    from optuna.storages import RDBStorage

    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; the [postgres] extra is psycopg2.
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url.removeprefix("postgresql://")
    result: dict[str, Any] = {}

    def connect() -> None:
        try:
            result["storage"] = RDBStorage(
                url,
                engine_kwargs={"connect_args": {"connect_timeout": CONNECT_TIMEOUT}},
                heartbeat_interval=HEARTBEAT_INTERVAL,
                grace_period=GRACE_PERIOD,
            )
        except Exception as exc:  # SQLAlchemy's errors, a malformed URL (ValueError)
            result["error"] = exc

    # In a thread: a host whose name takes long to resolve is not covered by libpq's timeout.
    thread = threading.Thread(target=connect, daemon=True, name="search-storage")
    thread.start()
    thread.join(STORAGE_DEADLINE)
    if thread.is_alive():
        raise SearchError(
            f"the database at {shown} did not answer within {STORAGE_DEADLINE:.0f} s; "
            "check the host and port, and that PostgreSQL listens there"
        )
    if "error" in result:
        exc = result["error"]
        why = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        first = why[0] if why else type(exc).__name__
        raise SearchError(f"cannot use the database at {shown}: {first}")
    storage: optuna.storages.BaseStorage = result["storage"]
    return storage


def list_study_names(runs_dir: str | Path) -> list[str]:
    """The studies with a journal in ``RUNS/studies``, the most recently written first."""
    folder = studies_dir(runs_dir)
    try:
        paths = [p for p in folder.glob("*.journal") if p.is_file() and not p.is_symlink()]
    except OSError:
        return []

    def written(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    paths.sort(key=lambda p: (-written(p), p.name))
    return [p.name.removesuffix(".journal") for p in paths]


def load_study(
    storage: optuna.storages.BaseStorage, study: str, *, sampler: Any = None, pruner: Any = None
) -> optuna.Study:
    """The study named ``study`` in ``storage``; ``SearchError`` if there is none."""
    import optuna

    try:
        return optuna.load_study(study_name=study, storage=storage, sampler=sampler, pruner=pruner)
    except KeyError:
        raise SearchError(f"no study {study} in this storage") from None


def write_process(
    runs_dir: str | Path, study: str, *, pid: int | None = None, **fields: Any
) -> None:
    """Record the process running ``study``'s search in ``RUNS/studies/STUDY.json`` (its
    pid, this one's unless given, and host, and ``fields``, over what the record held),
    atomically; a failure to write is ignored."""
    record = {**read_process(runs_dir, study), "pid": pid or os.getpid(), "host": HOST}
    record.update(updated=now_text(), **fields)
    with contextlib.suppress(OSError):
        files.atomic_write(
            process_path(runs_dir, study), (json.dumps(record, indent=2) + "\n").encode()
        )


def read_process(runs_dir: str | Path, study: str) -> dict[str, Any]:
    """``RUNS/studies/STUDY.json`` as a dict; {} when missing or junk."""
    try:
        data = json.loads(files.read_bytes(process_path(runs_dir, study)))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}
