"""Hostile files, locks and other users: a removed lock file, another user's runs, a
read-only view of the runs folder, FIFOs, devices, huge files and symlinks where a run's
files belong (issue 10, items 5, 9, 13 and 14).

Each situation is built in ``tmp_path``. A command that could hang or eat all memory on
a hostile file runs as ``main(argv)`` in a child forked from this warm interpreter, with
a deadline and a memory cap, so a regression fails its test instead of hanging the
suite. A live run is a trainer in a thread of this process: it holds the run's lock as
any trainer does, and other processes (the forked children) see it through the folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from lifecycle_helpers import DRIVER, ROOT, kill_trainer, wait_until, write_raw_data

from engine.config import TrainConfig
from engine.data import ImageData
from engine.errors import CheckpointError, TrainingError
from engine.events import BatchEnd, Event, Failed
from engine.runs import Run
from engine.trainer import Trainer

QUICK = {"batch_size": 32, "hidden_sizes": (16,), "log_every": 1, "device": "cpu"}
DEADLINE = 20.0  # seconds a forked command may take; it takes well under one
MEMORY_CAP = 1 << 30  # bytes a forked command may allocate beyond what it has at the fork


# --- commands in a forked child -------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """What a command did: its exit code (None: it hung and was killed) and its output."""

    code: int | None
    out: str
    err: str


def fork_cli(*argv: str, setup: Callable[[], None] | None = None) -> Done:
    """``fmnist-tui ARGV`` as ``main(argv)`` in a child forked from this interpreter
    (see ``fork_call``)."""

    def command() -> int:
        from tui.cli import main

        return main(list(argv))

    return fork_call(command, setup=setup)


def fork_call(call: Callable[[], int], setup: Callable[[], None] | None = None) -> Done:
    """``call()`` in a child forked from this interpreter; its return is the exit code.

    The child calls ``setup`` first (exit code 77 if it raises), may allocate at most
    ``MEMORY_CAP`` more bytes, and is killed if it has not ended within ``DEADLINE``.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            _child(call, setup, out.fileno(), err.fileno())
        code = _wait(pid)
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode("utf-8", "replace"))
    return Done(code, *texts)


def _child(call: Callable[[], int], setup: Callable[[], None] | None, out: int, err: int) -> None:
    code = 99
    try:
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        if "torch" in sys.modules:  # the parent's thread pool did not survive the fork
            sys.modules["torch"].set_num_threads(1)
        used = _address_space()
        if used:
            hard = resource.getrlimit(resource.RLIMIT_AS)[1]
            resource.setrlimit(resource.RLIMIT_AS, (used + MEMORY_CAP, hard))
        if setup is not None:
            code = 77
            setup()
            code = 99
        code = call()
    except SystemExit as exc:  # argparse's own exit
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _wait(pid: int) -> int | None:
    """The exit code of child ``pid``; None if it had to be killed at the deadline."""
    deadline = time.monotonic() + DEADLINE
    while True:
        ended, status = os.waitpid(pid, os.WNOHANG)
        if ended:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


def _address_space() -> int:
    """This process's virtual memory in bytes (0 if /proc does not say)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def one_line(done: Done) -> str:
    """The one line a refused command printed on stderr (nothing on stdout, exit 2)."""
    assert done.code == 2, done
    assert done.out == "", done
    lines = done.err.splitlines()
    assert len(lines) == 1, done.err
    return lines[0]


def rows(done: Done) -> dict[str, dict[str, object]]:
    """``runs --json``'s rows by run id."""
    assert done.code == 0, done
    return {row["id"]: row for row in map(json.loads, done.out.splitlines())}


# --- live runs, copies, hostile files ---------------------------------------------------


class Live:
    """A run training in a thread of this process; ``stamps`` are its events with the
    ``time.monotonic()`` at which each was heard."""

    def __init__(self, config: TrainConfig, data: ImageData) -> None:
        self.stamps: list[tuple[float, Event]] = []
        self.run = Run.create(config)
        self.trainer = Trainer(config, data=data, run=self.run, listeners=(self._heard,))
        self.outcome: list[object] = []
        self.thread = threading.Thread(target=self._fit, daemon=True)

    def _heard(self, event: Event) -> None:
        self.stamps.append((time.monotonic(), event))

    def _fit(self) -> None:
        try:
            self.outcome.append(self.trainer.fit())
        except BaseException as exc:
            self.outcome.append(exc)

    def batches_after(self, moment: float) -> int:
        """How many batches ended after ``moment`` (a ``time.monotonic()``)."""
        return sum(1 for t, e in list(self.stamps) if t > moment and isinstance(e, BatchEnd))


@contextlib.contextmanager
def training(
    runs: Path, data_dir: Path, data: ImageData, *, paused: bool, fifos: Sequence[Path] = ()
) -> Iterator[Live]:
    """A run training for ever in a thread (``paused``: waiting at its first batch, its
    status saying so), stopped on leaving; ``fifos`` are fed so that a trainer stuck
    opening one can stop."""
    config = TrainConfig(epochs=10_000, data_dir=str(data_dir), runs_dir=str(runs), **QUICK)
    live = Live(config, data)
    if paused:
        live.trainer.pause()
    live.thread.start()
    try:
        if paused:
            wait_until(lambda: Run(live.run.path).read_status().get("paused") is True, "a pause")
        else:
            wait_until(lambda: live.batches_after(0) > 0, "the first batch")
        yield live
    finally:
        live.trainer.stop()
        deadline = time.monotonic() + DEADLINE
        while live.thread.is_alive() and time.monotonic() < deadline:
            for fifo in fifos:
                feed(fifo)
            live.thread.join(0.05)


def feed(fifo: Path) -> None:
    """Give a process blocked reading ``fifo`` something to read and an end (if one is)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    with contextlib.suppress(OSError):
        os.write(fd, b"{}")
    os.close(fd)


def copy_run(run: Run, runs: Path) -> Run:
    """A copy of ``run`` in the folder ``runs``."""
    runs.mkdir(parents=True, exist_ok=True)
    return Run(Path(shutil.copytree(run.path, runs / run.id)))


def replace_with_fifo(path: Path) -> None:
    """Put a FIFO where ``path`` is, in one rename (a watcher sees a new file at once)."""
    temp = path.with_name(f".{path.name}.fifo")
    os.mkfifo(temp)
    os.replace(temp, path)


def bytes_read() -> int:
    """Bytes this process has read through read() and its kind, from ``/proc/self/io``."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("/proc/self/io has no rchar")


@pytest.fixture(scope="module")
def tiny(fashion: ImageData) -> ImageData:
    """256 train and 64 test images of the real set."""
    return fashion.subset(256, 64, seed=0)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, fashion: ImageData) -> Path:
    """The same, as raw IDX files (for commands that load a run's data themselves)."""
    return write_raw_data(tmp_path_factory.mktemp("tiny-fashion"), fashion, 256, 64)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_data: Path, tiny: ImageData) -> Run:
    """A run that trained its one epoch; tests change copies of it."""
    runs = tmp_path_factory.mktemp("finished") / "runs"
    config = TrainConfig(epochs=1, data_dir=str(tiny_data), runs_dir=str(runs), **QUICK)
    result = Trainer(config, data=tiny).fit()
    assert result.run_dir is not None
    return Run(result.run_dir)


def stop_stray_trainer(run: Run) -> None:
    """Kill a trainer that a refused command should never have started (the status of a
    copied run names this process until a trainer writes its own pid: never killed)."""

    def settled() -> bool:
        pid = run.read_status().get("pid")
        return not run.is_locked() or (isinstance(pid, int) and pid != os.getpid())

    wait_until(settled, f"a trainer of {run.id} to record its pid")
    kill_trainer(run)


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry of ``folder``: a file's bytes, a link's target, a FIFO as "fifo"."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            found[path.name] = f"-> {os.readlink(path)}"
        elif path.is_fifo():
            found[path.name] = "fifo"
        elif path.is_file():
            found[path.name] = path.read_bytes()
        else:
            found[path.name] = "folder"
    return found


# --- item 5: the lock -----------------------------------------------------------------


def test_removing_the_lock_file_never_lets_a_second_trainer_share_a_run(
    tmp_path: Path, tiny_data: Path, tiny: ImageData
) -> None:
    runs = tmp_path / "runs"
    with training(runs, tiny_data, tiny, paused=True) as live:
        run = live.run
        (run.path / "lock").unlink(missing_ok=True)  # a tidy user, or a cleanup script
        before = snapshot(run.path)
        listed = fork_cli("runs", "--json", "--runs-dir", str(runs))
        second = fork_cli("train", "--resume", run.id, "--runs-dir", str(runs), "--epochs", "3")
        after = snapshot(run.path)
        assert Run(run.path).read_status()["pid"] == os.getpid()

    assert rows(listed)[run.id]["state"] == "paused"
    # Paused, not training: said so, with the attach command that finds it from here.
    assert one_line(second) == (
        f"fmnist-tui: error: run {run.id} is paused in another process "
        f"(pid {os.getpid()}); resume it with `fmnist-tui attach {run.id} --runs-dir {runs}`"
    )
    assert after == before  # no second writer: same checkpoints, no duplicate epochs


# --- item 9: other users and read-only views --------------------------------------------


def as_another_user() -> list[str]:
    """The command prefix that runs a program as a user who cannot read 0000 files: as
    root, root without the capabilities that override file permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and setpriv (to drop CAP_DAC_OVERRIDE) is missing")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]


def test_another_users_runs_are_live_or_status_unreadable_never_interrupted(
    tmp_path: Path, finished: Run, tiny_data: Path, tiny: ImageData
) -> None:
    prefix = as_another_user()
    runs = tmp_path / "runs"
    done = copy_run(finished, runs)
    with training(runs, tiny_data, tiny, paused=True) as live:
        hidden = [p for run in (done, live.run) for p in run.path.iterdir() if p.is_file()]
        modes = {p: p.stat().st_mode & 0o7777 for p in hidden}
        for path in hidden:  # what another user sees of files its owner made under umask 077
            path.chmod(0)
        listing = ["runs", "--json", "--runs-dir", str(runs)]
        try:
            listed = subprocess.run(
                [*prefix, sys.executable, "-c", DRIVER, "22", os.devnull, *listing],
                capture_output=True,
                text=True,
                timeout=DEADLINE,
                cwd=ROOT,
            )
        finally:
            for path, mode in modes.items():
                path.chmod(mode)

    found = rows(Done(listed.returncode, listed.stdout, listed.stderr))
    assert found[live.run.id]["state"] == "running"  # its lock is probed read-only
    assert found[done.id]["state"] == "unreadable"
    assert found[done.id]["reason"] == "status unreadable (status.json: Permission denied)"
    assert found[done.id]["resumable"] is False


CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18


def read_only_view(source: Path, view: Path) -> Callable[[], None]:
    """A ``setup`` for ``fork_cli``: in a mount namespace of its own (a user namespace
    too, so no privilege is needed), ``view`` shows ``source`` read-only."""

    def setup() -> None:
        libc = ctypes.CDLL(None, use_errno=True)

        def check(result: int, what: str) -> None:
            if result != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"{what}: {os.strerror(errno)}")

        uid, gid = os.getuid(), os.getgid()
        check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
        mount = libc.mount
        check(mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
        check(mount(bytes(source), bytes(view), None, MS_BIND, None), "bind")
        kept = os.statvfs(view).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | kept
        check(mount(None, bytes(view), None, flags, None), "remount read-only")

    return setup


def test_a_read_only_view_shows_the_true_state_and_refuses_writes_in_one_line(
    tmp_path: Path, finished: Run, tiny_data: Path, tiny: ImageData
) -> None:
    runs, view = tmp_path / "runs", tmp_path / "view"
    view.mkdir()
    done = copy_run(finished, runs)
    setup = read_only_view(runs, view)
    with training(runs, tiny_data, tiny, paused=True) as live:
        listed = fork_cli("runs", "--json", "--runs-dir", str(view), setup=setup)
        if listed.code == 77:
            pytest.skip(f"no read-only bind mount here: {listed.err.splitlines()[-1]}")
        before = snapshot(done.path)
        flags = ("--runs-dir", str(view))
        resumed = fork_cli("train", "--resume", done.id, *flags, "--epochs", "2", setup=setup)
        detached = fork_cli(
            "train", "--detach", "--resume", done.id, *flags, "--epochs", "2", setup=setup
        )
        exported = fork_cli("export", done.id, *flags, setup=setup)
        wait_until(lambda: not Run(done.path).is_locked(), "no trainer on the finished run")
        after = snapshot(done.path)
        live_id = live.run.id

    found = rows(listed)
    assert found[live_id]["state"] == "paused"
    assert found[done.id]["state"] == "finished"
    refused = f"fmnist-tui: error: cannot write in {view / done.id}: Read-only file system"
    assert one_line(resumed) == refused
    assert one_line(detached) == refused
    assert one_line(exported) == refused
    assert after == before


def attached_states(run_dir: Path, runs_dir: Path, paused_seen: Path) -> int:
    """Attach the app to ``run_dir`` (a paused run); once it shows the run paused, make
    ``paused_seen`` and wait for it to show the run training again; print the states
    shown and leave. Each wait ends at a third of the deadline; the exit code is 0."""
    import asyncio

    from tui.app import FmnistApp

    async def look() -> list[str]:
        app = FmnistApp(Run(run_dir).config(), runs_dir=str(runs_dir), attach=run_dir)
        shown = []
        async with app.run_test() as pilot:
            for state in ("paused", "running"):
                deadline = time.monotonic() + DEADLINE / 3
                while app.run_state != state and time.monotonic() < deadline:
                    await pilot.pause(0.05)
                shown.append(str(app.run_state))
                paused_seen.touch()
        return shown

    print(*asyncio.run(look()))
    return 0


def test_attach_through_a_read_only_view_follows_the_live_run(
    tmp_path: Path, tiny_data: Path, tiny: ImageData
) -> None:
    runs, view, paused_seen = tmp_path / "runs", tmp_path / "view", tmp_path / "paused-seen"
    view.mkdir()
    with training(runs, tiny_data, tiny, paused=True) as live:

        def resume_when_seen() -> None:
            with contextlib.suppress(AssertionError):
                wait_until(paused_seen.exists, "the app to show the run paused", DEADLINE)
                live.trainer.resume_training()

        resumer = threading.Thread(target=resume_when_seen, daemon=True)
        resumer.start()
        run_dir = view / live.run.id
        setup = read_only_view(runs, view)
        seen = fork_call(lambda: attached_states(run_dir, view, paused_seen), setup=setup)
        if seen.code == 77:
            pytest.skip(f"no read-only bind mount here: {seen.err.splitlines()[-1]}")
        resumer.join(DEADLINE)
    assert seen.code == 0, seen
    assert seen.out == "paused running\n"  # followed, not frozen at the first look


def test_a_mode_set_by_hand_survives_the_files_being_replaced(
    tmp_path: Path, finished: Run, tiny: ImageData
) -> None:
    run = copy_run(finished, tmp_path / "runs")
    replaced = [run.status_path, run.last_path, run.best_path]
    for path in replaced:
        path.chmod(0o640)  # the group may read it: neither 0644 (umask 022) nor 0600
    inodes = [path.stat().st_ino for path in replaced]

    Trainer.resume(Run(run.path), data=tiny, epochs=2).fit()

    assert [path.stat().st_ino for path in replaced] != inodes  # new files, renamed in
    assert {path.name: path.stat().st_mode & 0o777 for path in replaced} == dict.fromkeys(
        (path.name for path in replaced), 0o640
    )


# --- item 13: FIFOs, devices and huge files ----------------------------------------------


def test_a_fifo_as_control_json_never_stalls_the_trainer(
    tmp_path: Path, tiny_data: Path, tiny: ImageData
) -> None:
    runs, fifos = tmp_path / "runs", []
    with training(runs, tiny_data, tiny, paused=False, fifos=fifos) as live:
        control = live.run.control_path
        fifos.append(control)  # fed on leaving, should the trainer be stuck opening it
        replace_with_fifo(control)
        placed = time.monotonic()
        # Batches ending 0.3 s later came after a look at control.json (every 0.25 s).
        wait_until(lambda: live.batches_after(placed + 0.3) >= 2, "training to go on")
        live.trainer.stop()  # what SIGTERM and SIGINT do
        wait_until(lambda: not live.thread.is_alive(), "the trainer to stop")
    [result] = live.outcome
    assert getattr(result, "status", None) == "stopped", result
    assert control.is_fifo()


def test_a_huge_control_json_is_never_read(
    tmp_path: Path, tiny_data: Path, tiny: ImageData
) -> None:
    if not Path("/proc/self/io").exists():
        pytest.skip("no /proc/self/io to count the bytes read")
    runs = tmp_path / "runs"
    with training(runs, tiny_data, tiny, paused=False) as live:
        run = Run(live.run.path)
        temp = run.path / ".control.json.huge"
        with open(temp, "wb") as f:
            f.truncate(300 << 20)  # sparse: 300 MB that take no disk
        os.replace(temp, run.control_path)
        start, placed = bytes_read(), time.monotonic()
        wait_until(lambda: live.batches_after(placed + 0.6) >= 2, "training to go on")
        read = bytes_read() - start
        run.request("stop")  # and a request written over it is obeyed
        wait_until(lambda: not live.thread.is_alive(), "the trainer to stop")
    assert read < 16 << 20, f"{read:,} bytes read while control.json held 300 MB"
    [result] = live.outcome
    assert getattr(result, "status", None) == "stopped", result


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("status.json", []),
        ("metrics.jsonl", []),
        ("last.pt", []),
        ("best.pt", []),
        ("control.json", []),
        ("output.log", ["--detach"]),
    ],
)
def test_a_fifo_among_a_runs_files_never_hangs_runs_or_resume(
    name: str, extra: list[str], tmp_path: Path, finished: Run
) -> None:
    runs = tmp_path / "runs"
    run = copy_run(finished, runs)
    fifo = run.path / name
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    try:
        listed = fork_cli("runs", "--json", "--runs-dir", str(runs))
        resumed = fork_cli(
            "train", "--resume", run.id, *extra, "--runs-dir", str(runs), "--epochs", "2"
        )
    finally:
        if extra:  # a detached trainer outlives the command
            stop_stray_trainer(run)

    row = rows(listed)[run.id]
    if name == "status.json":
        assert row["state"] == "unreadable"
        assert row["reason"] == "status unreadable (status.json: not a regular file)"
    else:
        assert row["state"] == "finished"
    assert one_line(resumed) == (
        f"fmnist-tui: error: run {run.id} cannot be trained: {fifo} is a FIFO, and a run "
        "only reads and writes regular files inside its folder; remove it or put the real "
        "file there"
    )
    assert fifo.is_fifo()


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "folder", "huge"])
def test_predict_refuses_an_input_that_is_not_a_regular_image_file(
    kind: str, tmp_path: Path, finished: Run
) -> None:
    if kind == "/dev/zero":
        image, why = Path("/dev/zero"), "not a regular file"
    elif kind == "fifo":
        image, why = tmp_path / "shoe.png", "not a regular file"
        os.mkfifo(image)
    elif kind == "folder":
        image, why = tmp_path, "not a regular file"
    else:
        image, why = tmp_path / "huge.png", "larger than 67,108,864 bytes"
        with open(image, "wb") as f:
            f.truncate(300 << 20)

    done = fork_cli("predict", str(finished.path), str(image))

    assert one_line(done) == (
        f"fmnist-tui: error: {image}: cannot read ({why}); give PNG, JPEG, GIF or WebP image files"
    )


@pytest.mark.parametrize("what", ["idx", "csv", "classes", "config"])
def test_a_fifo_among_the_users_input_files_is_refused_not_waited_on(
    what: str, tmp_path: Path, tiny_data: Path
) -> None:
    import torch  # noqa: F401  (loaded here: a forked child could not map it under its cap)

    runs = str(tmp_path / "runs")
    if what == "idx":
        data = tmp_path / "data"
        shutil.copytree(tiny_data, data)
        fifo = data / "train-labels-idx1-ubyte"
        replace_with_fifo(fifo)
        argv = ["train", "--data-dir", str(data), "--runs-dir", runs]
    elif what == "config":
        fifo = tmp_path / "c.toml"
        os.mkfifo(fifo)
        argv = ["train", "--config", str(fifo), "--runs-dir", runs]
    else:
        images = tmp_path / "images"
        images.mkdir()
        csv_file, classes = tmp_path / "labels.csv", tmp_path / "classes.txt"
        csv_file.write_text("a.png,0\n")
        classes.write_text("a\nb\n")
        fifo = csv_file if what == "csv" else classes
        replace_with_fifo(fifo)
        argv = ["train", "--data", "custom", "--custom-csv", str(csv_file)]
        argv += ["--custom-images", str(images), "--classes-file", str(classes)]
        argv += ["--runs-dir", runs]

    done = fork_cli(*argv)

    assert done.code == 2, done
    assert str(fifo) in done.err and "not a regular file" in done.err, done.err
    assert "Traceback" not in done.err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# --- item 14: writes outside the run folder ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("metrics.jsonl", []),
        ("status.json", []),
        ("last.pt", []),
        ("best.pt", []),
        ("control.json", []),
        ("output.log", ["--detach"]),
    ],
)
def test_a_symlinked_run_file_is_refused_and_what_it_points_to_untouched(
    name: str, extra: list[str], tmp_path: Path, finished: Run
) -> None:
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    run = copy_run(finished, runs)
    outside.mkdir()
    target = outside / name
    source = run.path / name
    if source.exists():
        shutil.move(source, target)
    else:
        target.write_text('{"not": "a run file"}\n')
    source.symlink_to(target)
    kept = target.read_bytes()

    try:
        done = fork_cli(
            "train", "--resume", run.id, *extra, "--runs-dir", str(runs), "--epochs", "2"
        )
    finally:
        if extra:  # a detached trainer outlives the command
            stop_stray_trainer(run)

    assert one_line(done) == (
        f"fmnist-tui: error: run {run.id} cannot be trained: {source} is a symbolic link, "
        "and a run only reads and writes regular files inside its folder; remove it or put "
        "the real file there"
    )
    assert target.read_bytes() == kept
    assert source.is_symlink()


def test_a_symlinked_config_json_is_never_read(tmp_path: Path, finished: Run) -> None:
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    run = copy_run(finished, runs)
    outside.mkdir()
    shutil.move(run.config_path, outside / "config.json")
    run.config_path.symlink_to(outside / "config.json")

    done = fork_cli("train", "--resume", str(run.path), "--epochs", "2")

    assert one_line(done) == (
        f"fmnist-tui: error: {run.path}: cannot read its config.json "
        "(a symbolic link, not followed)"
    )
    assert run.config_path.is_symlink()


def test_a_symlinked_export_folder_is_refused_and_receives_nothing(
    tmp_path: Path, finished: Run
) -> None:
    runs, outside = tmp_path / "runs", tmp_path / "outside"
    run = copy_run(finished, runs)
    outside.mkdir()
    (run.path / "export").symlink_to(outside)

    done = fork_cli("export", run.id, "--runs-dir", str(runs))

    assert one_line(done) == (
        f"fmnist-tui: error: cannot export into {run.path / 'export'}: it is a symbolic "
        "link, and a run's export stays inside its folder; remove it, or give another "
        "folder with --out"
    )
    assert list(outside.iterdir()) == []


def test_a_symlinked_run_folder_is_never_listed_resumed_or_deleted_through(
    tmp_path: Path, finished: Run
) -> None:
    runs, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    run = copy_run(finished, runs)
    real = copy_run(finished, elsewhere)
    link = runs / "zlink"
    link.symlink_to(real.path)
    twin = runs / "ztwin"
    twin.symlink_to(run.path)
    kept = snapshot(real.path)

    listed = fork_cli("runs", "--json", "--runs-dir", str(runs))
    resumed = fork_cli("train", "--resume", "zlink", "--runs-dir", str(runs), "--epochs", "2")
    by_path = fork_cli("train", "--resume", str(link), "--epochs", "2")

    assert list(rows(listed)) == [run.id]
    assert one_line(resumed) == (
        f"fmnist-tui: error: {link} is a symbolic link to {real.path}, and a run folder "
        f"must be a real folder inside the runs folder ({runs}); give the path of the "
        "folder it points to, or move that folder into the runs folder"
    )
    assert one_line(by_path).startswith(f"fmnist-tui: error: {link} is a symbolic link to ")
    with pytest.raises(CheckpointError, match=r"is a symbolic link to .*; nothing was deleted"):
        Run(link).delete()
    assert snapshot(real.path) == kept
    assert link.is_symlink()


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("fifo", "is a FIFO, not a regular file"),
        ("folder", "is a folder, not a regular file"),
        ("symlink", "is a symbolic link, not a regular file"),
        ("missing", "is missing"),
    ],
)
def test_an_unusable_best_pt_is_said_when_last_pt_stands_in(
    kind: str, said: str, tmp_path: Path, finished: Run
) -> None:
    run = copy_run(finished, tmp_path / "runs")
    run.best_path.unlink()
    if kind == "fifo":
        os.mkfifo(run.best_path)
    elif kind == "folder":
        run.best_path.mkdir()
    elif kind == "symlink":
        run.best_path.symlink_to(run.last_path)
    last = run.load_checkpoint("last")
    note = f"note: best.pt {said}; using last.pt (epoch {last['epoch']}, batch {last['batch']})"

    predicted = fork_cli("predict", str(run.path), "--count", "1")
    exported = fork_cli("export", str(run.path), "--format", "state_dict")

    assert predicted.code == 0, predicted
    assert predicted.err.splitlines() == [note]
    assert exported.code == 0, exported
    assert exported.err.splitlines() == [note]
    info = json.loads((run.path / "export" / "preprocessing.json").read_text())
    assert info["checkpoint"] == "last"


def test_a_fifo_as_config_json_is_named_not_called_no_run(tmp_path: Path, finished: Run) -> None:
    runs = tmp_path / "runs"
    run = copy_run(finished, runs)
    replace_with_fifo(run.config_path)
    said = (
        f"fmnist-tui: error: {run.path}: cannot read its config.json: {run.config_path} is a "
        "FIFO, and a run only reads and writes regular files inside its folder; remove it or "
        "put the real file there"
    )

    resumed = fork_cli("train", "--resume", run.id, "--epochs", "2", "--runs-dir", str(runs))
    # predict and export find the run, and need only its checkpoint's own settings.
    predicted = fork_cli("predict", run.id, "--count", "1", "--runs-dir", str(runs))
    exported = fork_cli("export", run.id, "--runs-dir", str(runs), "--format", "state_dict")

    assert one_line(resumed) == said
    assert (predicted.code, predicted.err) == (0, ""), predicted
    assert (exported.code, exported.err) == (0, ""), exported
    assert run.config_path.is_fifo()


def test_a_fifo_put_in_place_of_a_live_runs_log_is_named_in_the_failure(
    tmp_path: Path, tiny: ImageData
) -> None:
    config = TrainConfig(epochs=2, runs_dir=str(tmp_path / "runs"), **QUICK)
    trainer = Trainer(config, data=tiny)
    events: list[Event] = []

    def swap_log(event: Event) -> None:
        events.append(event)
        if isinstance(event, BatchEnd) and event.epoch == 1 and event.batch == 2:
            assert trainer.run is not None
            replace_with_fifo(trainer.run.path / "metrics.jsonl")

    trainer.add_listener(swap_log)
    with pytest.raises(TrainingError):
        trainer.fit()
    [failed] = [e for e in events if isinstance(e, Failed)]
    reason = failed.reason
    # The cause is named: that file, and what it is; never the disk in general.
    assert "metrics.jsonl" in reason and "not a regular file" in reason, reason
