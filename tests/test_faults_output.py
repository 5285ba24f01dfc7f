"""Output that goes away, text from files shown as it is, and messages that say what is
wrong in one line. docs/faults.md, "Output that goes away, and messages", lists them.

Runs whose output must really go away (a pipe whose reader leaves, a closed stdout, a
terminal that hangs up) train in children forked from one warm interpreter
(``tests/output_driver.py``), on 128 synthetic images; the rest call ``main`` here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from lifecycle_helpers import TIMEOUT, wait_until, write_raw_data
from pane_helpers import shown, wait_for
from textual.content import Content
from textual.message import Message
from textual.notifications import Notify

from engine.checkpoint import encode_checkpoint
from engine.config import TrainConfig
from engine.files import atomic_write
from engine.runs import Run, list_runs, load_checkpoint
from helpers import synthetic
from tui.app import FmnistApp
from tui.cli import main
from tui.widgets.runs_table import RunsTable

ROOT = Path(__file__).resolve().parent.parent
DRIVER = Path(__file__).resolve().parent / "output_driver.py"
QUICK = ["--hidden-sizes", "16", "--batch-size", "32", "--device", "cpu", "--log-every", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """128 train and 64 test synthetic images, as the four raw IDX files."""
    return write_raw_data(tmp_path_factory.mktemp("tiny"), synthetic(128, 64), 128, 64)


def train_argv(data: Path, runs: Path, *extra: str) -> list[str]:
    return ["train", "--data-dir", str(data), "--runs-dir", str(runs), *QUICK, *extra]


def one_line(text: str) -> str:
    """The only line of ``text``, which holds no traceback."""
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text[:2000]
    return lines[0]


# --- a warm interpreter that forks `fmnist-tui` with the streams a test gives it --------


class Driver:
    """``tests/output_driver.py``, started once: ``start`` forks one ``fmnist-tui``."""

    def __init__(self) -> None:
        self.sock, theirs = socket.socketpair()
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, str(DRIVER), str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": path},
        )
        theirs.close()
        self.buffer = b""
        self.pid = 0
        self.ended: dict[str, Any] | None = None

    def start(
        self, argv: list[str], fds: tuple[int, int, int], closed: tuple[int, ...] = ()
    ) -> int:
        """Fork ``fmnist-tui ARGV`` on stdin, stdout and stderr ``fds``, with the
        descriptors in ``closed`` closed; returns its pid."""
        request = json.dumps({"argv": argv, "closed": list(closed)}).encode()
        socket.send_fds(self.sock, [request], list(fds))
        self.ended = None
        self.pid = self._reply(TIMEOUT)["pid"]
        return self.pid

    def poll(self) -> dict[str, Any] | None:
        """How the child ended (``{"exit": N, "signal": S}``), or None while it runs."""
        if self.ended is None:
            self.ended = self._reply(0)
        return self.ended

    def wait(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """How the child ended; it is killed if it has not within ``timeout`` seconds."""
        if self.ended is None:
            self.ended = self._reply(timeout)
        if self.ended is None:
            os.kill(self.pid, signal.SIGKILL)
            self.ended = self._reply(TIMEOUT)
        assert self.ended is not None
        return self.ended

    def _reply(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 and timeout:
                return None
            self.sock.settimeout(max(left, 0) if timeout else 0)
            try:
                chunk = self.sock.recv(4096)
            except (BlockingIOError, TimeoutError):
                return None
            assert chunk, "the driver died"
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        self.sock.close()
        self.process.wait(TIMEOUT)


@pytest.fixture(scope="module", autouse=True)
def driver() -> Iterator[Driver]:
    """The driver, started with the module: it warms up (imports torch) while the tests
    that need no child run, so the item-6 tests come last."""
    started = Driver()
    try:
        yield started
    finally:
        started.close()


def null() -> int:
    return os.open(os.devnull, os.O_RDWR)


def only_run(runs: Path) -> Run:
    [info] = list_runs(runs)
    return Run(info.path)


def trained_to_the_end(runs: Path, epochs: int) -> None:
    """The run under ``runs`` finished every epoch, each one logged and checkpointed."""
    run = only_run(runs)
    assert run.state() == "finished"
    log = run.read_metrics()
    assert [e.epoch for e in log.epochs] == list(range(1, epochs + 1))
    assert not log.torn_line and log.bad_lines == 0
    assert load_checkpoint(run.last_path)["epoch"] == epochs


# --- 12. text from files is shown as it is -----------------------------------------


def hand_made_run(runs: Path, name: str, **status: object) -> Path:
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(TrainConfig(runs_dir=str(runs)).to_json())
    (folder / "status.json").write_text(json.dumps({"epochs": 2, **status}))
    return folder


async def test_runs_pane_shows_brackets_from_files_as_written(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    hand_made_run(runs, "[old] baseline", state="finished", epochs_completed=2, started="[/]")
    reason = "disk [/] full [$error]twice[/] [b]x"
    hand_made_run(runs, "20260101-000000-mlp-ab12", state="failed", reason=reason)
    config = TrainConfig(epochs=1, hidden_sizes=(16,), device="cpu", runs_dir=str(runs))
    app = FmnistApp(config, runs_dir=str(runs), data=synthetic(64, 32))
    toasts: list[str] = []

    def caught(message: Message) -> None:  # each notification, as its toast shows it
        if isinstance(message, Notify):
            note = message.notification
            text = Content.from_markup(note.message) if note.markup else Content(note.message)
            toasts.append(text.plain)

    async with app.run_test(size=(120, 40), message_hook=caught) as pilot:
        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        ids = [info.id for info in table.infos]
        old = [str(cell) for cell in table.get_row_at(ids.index("[old] baseline"))]
        assert old[1] == "[old] baseline" and old[2] == "[/]"
        assert "[old] baseline" in shown(table)

        while table.highlighted is None or table.highlighted.state != "failed":
            await pilot.press("down")
        detail = app.query_one("#runs-detail")
        await wait_for(pilot, lambda: f"failed: {reason}" in shown(detail))

        while table.highlighted is None or table.highlighted.id != "[old] baseline":
            await pilot.press("up")
        await pilot.press("a")  # not training: a notification names the run
        await wait_for(pilot, lambda: toasts)
        assert toasts == ["Run [old] baseline is not training (finished)."]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Run:
    """A run of one epoch, trained here through the CLI."""
    runs = tmp_path_factory.mktemp("trained")
    assert main(train_argv(data, runs, "--epochs", "1")) == 0
    return only_run(runs)


def copy_of(run: Run, folder: Path) -> Run:
    shutil.copytree(run.path, folder)
    return Run(folder)


def test_cli_never_prints_escape_sequences_from_a_folder_name(
    trained: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    run = copy_of(trained, runs / "run\x1b]0;pwned\x07\x1b[2J[old]")
    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    listing = capsys.readouterr().out
    assert "\x1b" not in listing and "\x07" not in listing
    assert "run?]0;pwned??[2J[old]" in listing

    assert main(["train", "--resume", str(run.path), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "run run?]0;pwned??[2J[old] (resumed at epoch 2)" in out


def test_a_raw_csi_byte_in_a_folder_name_never_reaches_the_terminal_or_the_json(
    trained: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # b"\x9b" is the 8-bit CSI; not UTF-8, so Python names the folder 'raw\udc9b31mX'.
    runs = tmp_path / "runs"
    run = copy_of(trained, runs / os.fsdecode(b"raw\x9b31mX"))
    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    listing = capsys.readouterr().out
    assert "\udc9b" not in listing and "raw?31mX" in listing

    assert main(["runs", "--runs-dir", str(runs), "--json"]) == 0
    line = one_line(capsys.readouterr().out)
    assert "\\udc" not in line  # a lone surrogate, which strict JSON parsers reject
    assert json.loads(line)["id"] == "raw\ufffd31mX"

    assert main(["train", "--resume", str(run.path), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "\udc9b" not in out and "run raw?31mX (resumed at epoch 2)" in out


async def test_a_raw_csi_byte_in_a_folder_name_shows_as_a_question_mark_in_the_app(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    hand_made_run(runs, os.fsdecode(b"raw\x9b31mX"), state="finished", epochs_completed=2)
    config = TrainConfig(epochs=1, hidden_sizes=(16,), device="cpu", runs_dir=str(runs))
    app = FmnistApp(config, runs_dir=str(runs), data=synthetic(64, 32))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        cells = [str(cell) for cell in table.get_row_at(0)]
        assert cells[1] == "raw?31mX"
        assert "raw?31mX" in shown(table) and "\udc9b" not in shown(table)


# --- 15. messages --------------------------------------------------------------------


def test_dangling_runs_dir_symlink_says_what_it_is(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = tmp_path / "runs"
    link.symlink_to(tmp_path / "gone")
    assert main(train_argv(data, link, "--epochs", "1")) == 2
    assert one_line(capsys.readouterr().err) == (
        f"fmnist-tui: error: cannot create runs folder {link}: it is a symbolic link to "
        f"{tmp_path / 'gone'}, which does not exist; create that folder, or give another "
        "runs folder"
    )


def test_a_runs_dir_that_is_a_file_or_a_dangling_symlink_is_refused_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link, file = tmp_path / "runs", tmp_path / "passwd"
    link.symlink_to(tmp_path / "gone")
    file.write_text("root:x:0:0\n")
    said = {
        link: f"it is a symbolic link to {tmp_path / 'gone'}, which does not exist; "
        "create that folder, or give another runs folder",
        file: "it is a file, not a folder; give another runs folder",
    }
    for folder, why in said.items():
        for argv in (
            ["runs"],
            ["runs", "--json"],
            ["attach"],
            ["attach", "RUN"],
            ["predict", "RUN"],
            ["export", "RUN"],
        ):
            assert main([*argv, "--runs-dir", str(folder)]) == 2, argv
            assert one_line(capsys.readouterr().err) == (
                f"fmnist-tui: error: cannot use runs folder {folder}: {why}"
            ), argv
    # A runs folder not made yet is no error: it has no runs.
    assert main(["runs", "--runs-dir", str(tmp_path / "new")]) == 0
    assert capsys.readouterr().out == f"no runs in {tmp_path / 'new'}\n"


def test_architecture_mismatch_is_one_line_saying_best_pt_is_intact(
    trained: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # config.json edited to another architecture than the checkpoints hold.
    run = copy_of(trained, tmp_path / "edited")
    config = json.loads(run.config_path.read_text())
    run.config_path.write_text(json.dumps({**config, "hidden_sizes": [24]}))
    capsys.readouterr()
    assert main(["train", "--resume", str(run.path), "--epochs", "2"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("fmnist-tui: error: ")
    assert line.endswith(
        "nothing was changed; best.pt is intact (epoch 1, test accuracy "
        f"{run.read_status()['best_accuracy']:.4f}): `fmnist-tui predict` and "
        "`fmnist-tui export` still use it"
    )
    assert load_checkpoint(run.last_path)["epoch"] == 1

    # A checkpoint whose weights do not fit the model its own settings describe.
    run = copy_of(trained, tmp_path / "grafted")
    state = load_checkpoint(run.last_path)
    state["model"] = {
        k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) for k, v in state["model"].items()
    }
    atomic_write(run.last_path, encode_checkpoint(state))
    atomic_write(run.best_path, encode_checkpoint(state))
    for argv in (
        ["train", "--resume", str(run.path), "--epochs", "2"],
        ["predict", str(run.path), "--count", "1"],
        ["export", str(run.path)],
    ):
        assert main(argv) == 2
        line = one_line(capsys.readouterr().err)
        assert "linear_relu_stack.0.weight is 17x784 in the checkpoint, 16x784 in the model" in line
    assert line.startswith(f"fmnist-tui: error: {run.best_path}: does not hold a usable model")


def test_a_huge_value_is_not_echoed_whole(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, key = tmp_path / "name.json", tmp_path / "key.json"
    name.write_text(json.dumps({"name": "x" * 50_000_000}))
    key.write_text(json.dumps({"y" * 1_000_000: 1}))
    said = []
    for config in (name, key):
        assert main(["train", "--config", str(config), "--runs-dir", str(tmp_path)]) == 2
        said.append(one_line(capsys.readouterr().err))
    assert said == [
        f"fmnist-tui: error: {name}: name: got '{'x' * 60}'… (50,000,000 characters); "
        "expected up to 64 letters, digits, '.', '_' or '-'",
        f"fmnist-tui: error: {key}: unknown setting '{'y' * 60}'… (1,000,000 characters)",
    ]

    # A number too long for Python to convert is a bad value too, not a traceback.
    assert main(["train", "--epochs", "9" * 5000]) == 2
    line = one_line(capsys.readouterr().err)
    assert len(line) < 300 and "epochs: got '9999" in line and "(5,000 characters)" in line


def test_a_data_dir_that_is_not_fashion_mnist_is_not_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--data-dir /etc`: say what is missing, never what else the folder holds.
    for name in ("passwd", "shadow", "id_rsa"):
        (tmp_path / name).write_text("secret")
    assert main(["train", "--data-dir", str(tmp_path), "--runs-dir", str(tmp_path)]) == 2
    line = one_line(capsys.readouterr().err)
    assert "passwd" not in line and "id_rsa" not in line
    assert line == (
        f"fmnist-tui: error: {tmp_path}: no Fashion-MNIST here: none of the four IDX files "
        "is in it; a data folder holds train-images-idx3-ubyte[.gz], "
        "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"
    )


def test_the_app_without_a_terminal_says_so_and_exits_2(tmp_path: Path) -> None:
    # `setsid fmnist-tui < /dev/null > log 2>&1`
    with open(tmp_path / "log", "w") as log:
        try:
            ended = subprocess.run(
                [sys.executable, "-c", "import sys; from tui.cli import main; sys.exit(main())"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=ROOT,
                timeout=20,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("the app ran on without a terminal until it was killed")
    assert ended.returncode == 2
    assert one_line((tmp_path / "log").read_text()) == (
        "fmnist-tui: error: the app needs a terminal, and standard input, output and error "
        "are not terminals; for headless training use `fmnist-tui train` (see `fmnist-tui "
        "train --help`), and `fmnist-tui runs` to list runs"
    )


# --- 6. output that goes away (last: the driver has warmed up meanwhile) ------------


def test_output_piped_into_head_is_dropped_and_the_run_trains_to_the_end(
    driver: Driver, data: Path, tmp_path: Path
) -> None:
    # `fmnist-tui train --json | head -1`: the reader takes one line and leaves. The
    # pipe holds 4 KiB and a run writes far more, so the run still writes after that.
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    err = os.open(tmp_path / "stderr", os.O_WRONLY | os.O_CREAT, 0o644)
    argv = train_argv(data, tmp_path / "runs", "--epochs", "6", "--json")
    driver.start(argv, (null(), write, err))
    os.close(write)
    first = b""
    while b"\n" not in first:
        chunk = os.read(read, 4096)
        assert chunk, "no line came"
        first += chunk
    os.close(read)
    assert json.loads(first.partition(b"\n")[0])["event"] == "run_started"

    assert driver.wait() == {"exit": 0, "signal": None}
    trained_to_the_end(tmp_path / "runs", 6)
    note = one_line((tmp_path / "stderr").read_text())
    run = only_run(tmp_path / "runs")
    assert note == (
        f"fmnist-tui: note: the output is gone (Broken pipe); run {run.id} trains on "
        "without printing; `fmnist-tui runs` shows how far it got"
    )


@pytest.mark.parametrize("closed", [(1,), (1, 2)], ids=[">&-", ">&- 2>&-"])
def test_closed_output_trains_to_the_end_without_a_word(
    driver: Driver, data: Path, tmp_path: Path, closed: tuple[int, ...]
) -> None:
    # `fmnist-tui train >&-`, and `nohup fmnist-tui train >&- 2>&-`.
    err = os.open(tmp_path / "stderr", os.O_WRONLY | os.O_CREAT, 0o644)
    driver.start(
        train_argv(data, tmp_path / "runs", "--epochs", "2"), (null(), null(), err), closed
    )
    assert driver.wait() == {"exit": 0, "signal": None}
    assert (tmp_path / "stderr").read_text() == ""
    trained_to_the_end(tmp_path / "runs", 2)


def test_terminal_gone_under_background_training_drops_output_and_trains_on(
    driver: Driver, data: Path, tmp_path: Path
) -> None:
    # `fmnist-tui train &` in a terminal (so the progress bars are live), then the shell
    # exits: the terminal is gone, and every write to it fails with EIO. There is no
    # SIGHUP: it is not the run's controlling terminal.
    master, slave = os.openpty()
    runs = tmp_path / "runs"
    driver.start(train_argv(data, runs, "--epochs", "500"), (null(), slave, slave))
    os.close(slave)
    os.set_blocking(master, False)

    def epochs() -> int:
        infos = list_runs(runs)
        return len(Run(infos[0].path).read_metrics().epochs) if infos else 0

    def draining() -> int:
        with contextlib.suppress(BlockingIOError):
            os.read(master, 1 << 16)  # the progress bars, so the run never blocks
        return epochs()

    wait_until(draining, "the first epoch")
    os.close(master)
    gone_at = epochs()
    wait_until(lambda: driver.poll() or epochs() >= gone_at + 3, "three more epochs")
    assert driver.poll() is None, f"the run ended when its terminal went: {driver.poll()}"

    os.kill(driver.pid, signal.SIGTERM)  # the run goes on until stopped
    assert driver.wait() == {"exit": 130, "signal": None}
    run = only_run(runs)
    assert run.state() == "interrupted" and run.has_checkpoint()
    assert load_checkpoint(run.last_path)["epoch"] >= gone_at + 3
