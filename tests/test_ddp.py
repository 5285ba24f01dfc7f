"""Data-parallel training: two gloo ranks on the CPU, launched by torchrun's agent.

The runs train a small MLP on synthetic IDX files written to disk, so the ranks (fresh
processes) load them as any user's data. The process-group timeout is 60 s
(``FMNIST_DIST_TIMEOUT``), not gloo's 30 minutes: a hung collective fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lifecycle_helpers import ROOT, cli_process, wait_until, write_raw_data
from pane_helpers import wait_for

from engine.config import TrainConfig
from engine.control import RemoteControl
from engine.events import EpochEnd, RunStarted
from engine.runs import Run, list_runs
from engine.state import RunState
from engine.trainer import Trainer
from helpers import synthetic
from tui.app import FmnistApp
from tui.widgets.charts import EpochChart

TIMEOUT = 120.0
N_TRAIN, N_TEST = 1024, 256
# Two ranks of batch 32: a global batch of 64, sixteen to the epoch, none left out.
SETTINGS: dict[str, object] = {
    "epochs": 2,
    "batch_size": 32,
    "hidden_sizes": (64,),
    "dropout": 0.0,
    "augment": False,
    "val_fraction": 0.0,
    "precision": "fp32",
    "device": "cpu",
    "log_every": 4,
}
FLAGS = [
    "--epochs=2",
    "--batch-size=32",
    "--hidden-sizes=64",
    "--dropout=0",
    "--no-augment",
    "--val-fraction=0",
    "--precision=fp32",
    "--device=cpu",
    "--log-every=4",
]


def env() -> dict[str, str]:
    return {**os.environ, "FMNIST_DIST_TIMEOUT": "60", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ddp-data")
    return write_raw_data(folder, synthetic(N_TRAIN, N_TEST, seed=3), N_TRAIN, N_TEST)


def fmnist(*argv: str) -> subprocess.Popen[str]:
    return cli_process(*argv, env=env())


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, out, err


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Run, str]:
    """An uninterrupted 2-rank run, through ``fmnist-tui train --nproc-per-node 2``."""
    runs = tmp_path_factory.mktemp("ddp-runs")
    argv = ["train", "--nproc-per-node=2", *FLAGS, f"--data-dir={data_dir}", f"--runs-dir={runs}"]
    code, out, err = finish(fmnist(*argv, "--json"))
    assert code == 0, err
    [info] = list_runs(runs)  # one run folder, written by rank 0
    return Run(info.path), out


def weights(run: Run) -> dict[str, torch.Tensor]:
    return run.load_checkpoint("last")["model"]


def test_two_ranks_train_one_run_as_one_process_with_the_global_batch(
    ddp_run: tuple[Run, str], data_dir: Path, tmp_path: Path
) -> None:
    run, out = ddp_run
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events].count("run_started") == 1  # rank 0 alone prints
    assert run.state() == RunState.FINISHED
    status = run.read_status()
    assert (status["world_size"], status["global_batch"]) == (2, 64)
    assert run.config().nproc_per_node == 2
    # The unwrapped model's state_dict: no DistributedDataParallel "module." prefix.
    assert not [name for name in weights(run) if name.startswith("module.")]

    config = TrainConfig.from_dict(
        {**SETTINGS, "batch_size": 64, "data_dir": str(data_dir), "runs_dir": str(tmp_path)}
    )
    single = Trainer(config, record=False).fit()
    ranks = run.read_metrics().epochs
    assert len(ranks) == len(single.history) == 2
    for two, one in zip(ranks, single.history, strict=True):
        assert two.train_loss == pytest.approx(one.train_loss, rel=1e-4)
        assert abs(two.test_accuracy - one.test_accuracy) * N_TEST <= 1 + 1e-9


def test_a_run_stopped_mid_epoch_resumes_to_the_same_weights(
    ddp_run: tuple[Run, str], data_dir: Path, tmp_path: Path
) -> None:
    whole, _out = ddp_run
    config = TrainConfig.from_dict(
        {
            **SETTINGS,
            "nproc_per_node": 2,
            "data_dir": str(data_dir),
            "runs_dir": str(tmp_path / "runs"),
        }
    )
    run = Run.create(config.with_absolute_paths(), state=RunState.STARTING)
    driver = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    driver += ["--nproc-per-node=2", "tests/ddp_driver.py", str(run.path), "2", "8"]
    done = subprocess.run(
        driver, capture_output=True, text=True, cwd=ROOT, env=env(), timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    assert run.state() == RunState.INTERRUPTED  # stopped: resumable
    stopped = run.load_checkpoint("last")
    assert (stopped["epoch"], stopped["batch"]) == (1, 8)  # mid-epoch, on both ranks
    assert len(stopped["rank_rng"]) == 2

    code, _out, err = finish(fmnist("train", "--resume", str(run.path)))
    assert code == 0, err
    assert run.state() == RunState.FINISHED
    started = [e for e in run.read_metrics().events if isinstance(e, RunStarted)]
    assert [e.resumed for e in started] == [False, True]
    for name, tensor in weights(whole).items():
        assert torch.equal(weights(run)[name], tensor), name
    again, once = run.read_metrics().epochs, whole.read_metrics().epochs
    assert [(e.test_loss, e.test_accuracy) for e in again] == [
        (e.test_loss, e.test_accuracy) for e in once
    ]
    # The train loss's running sum goes from float32 to float64 where the run stopped.
    for a, b in zip(again, once, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-6)


def ranks_of(launcher: int, rank0: int) -> list[int]:
    """The pids of the launcher's other children: the ranks but rank 0."""
    children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
    return [int(pid) for pid in children if int(pid) != rank0]


def test_a_killed_rank_fails_the_run_naming_it_and_the_run_resumes(
    data_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    flags = [*FLAGS, "--epochs=200", f"--data-dir={data_dir}", f"--runs-dir={runs}"]
    launcher = fmnist("train", "--nproc-per-node=2", *flags, "--json")
    try:
        wait_until(lambda: list_runs(runs), "the run folder", TIMEOUT)
        run = Run(list_runs(runs)[0].path)
        # Checkpointed, not only logged: the epoch's end is in metrics before last.pt.
        wait_until(
            lambda: run.read_status().get("epochs_completed", 0) >= 1,
            "epoch 1's checkpoint",
            TIMEOUT,
        )
        [other] = ranks_of(launcher.pid, run.read_status()["pid"])
        os.kill(other, signal.SIGKILL)
        code, _out, err = finish(launcher)
    finally:
        with contextlib.suppress(ProcessLookupError):
            launcher.kill()
    assert code == 1
    assert f"rank 1 (pid {other}) was killed by SIGKILL" in err
    assert "Traceback" not in err
    status = run.read_status()
    assert status["state"] == "failed" and status["failed_rank"] == 1
    assert "rank 1" in status["reason"] and "SIGKILL" in status["reason"]
    assert run.state() == RunState.FAILED and run.has_checkpoint()

    resumed = fmnist("train", "--resume", str(run.path), "--json")
    try:
        wait_until(
            lambda: run.is_locked() and run.read_status().get("state") == "running",
            "the resumed run",
            TIMEOUT,
        )
        wait_until(lambda: len(run.read_metrics().epochs) >= 2, "an epoch after", TIMEOUT)
        control = RemoteControl(run)  # as attach and the Runs pane steer it
        control.pause()
        wait_until(lambda: run.state() == RunState.PAUSED, "every rank to pause", TIMEOUT)
        control.resume()
        wait_until(lambda: run.state() == RunState.RUNNING, "every rank to go on", TIMEOUT)
        control.stop()
        code, _out, err = finish(resumed)
    finally:
        with contextlib.suppress(ProcessLookupError):
            resumed.kill()
    assert code == 0, err
    assert run.state() == RunState.INTERRUPTED  # stopped again, at a batch boundary
    started = [e for e in run.read_metrics().events if isinstance(e, RunStarted)]
    assert started[-1].resumed and started[-1].start_epoch >= 2


async def test_the_monitor_follows_a_two_rank_run_started_from_the_app(
    data_dir: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    config = TrainConfig.from_dict(
        {**SETTINGS, "epochs": 3, "nproc_per_node": 2, "data_dir": str(data_dir)}
    )
    app = FmnistApp(config, runs_dir=str(runs))
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("s")
            assert app.current_pane == "monitor"
            chart = app.query_one(EpochChart)
            # The Monitor draws every epoch rank 0 records, then lets the ended run go.
            await wait_for(pilot, lambda: len(chart.epochs) == 3, TIMEOUT)
            await wait_for(pilot, lambda: app.run_state == "idle", TIMEOUT)
    finally:
        for info in list_runs(runs):
            status = Run(info.path).read_status()
            for key in ("pid", "launcher_pid"):
                with contextlib.suppress(ProcessLookupError, TypeError):
                    os.kill(status.get(key), signal.SIGKILL)
    [info] = list_runs(runs)
    assert info.state == "finished"
    assert [isinstance(e, EpochEnd) for e in Run(info.path).read_metrics().epochs] == [True] * 3


def test_each_rank_takes_its_share_of_every_global_batch() -> None:
    from engine.distributed import rank_order

    order = torch.randperm(70, generator=torch.Generator().manual_seed(0))
    shares = [rank_order(order, world_size=3, rank=r, batch_size=4) for r in range(3)]
    assert [len(share) for share in shares] == [20, 20, 20]  # 5 global batches of 12
    for k in range(5):  # global batch k is what one process with batch 12 trains on
        together = torch.cat([share[4 * k : 4 * k + 4] for share in shares])
        assert torch.equal(together, order[12 * k : 12 * k + 12])


def test_a_run_of_two_ranks_is_not_resumed_by_one(ddp_run: tuple[Run, str]) -> None:
    from engine.errors import CheckpointError

    run, _out = ddp_run
    before = run.read_status()
    with pytest.raises(CheckpointError, match=r"trained by 2 processes.*--nproc-per-node 2"):
        Trainer.resume(run, epochs=3).fit()
    assert run.read_status()["state"] == before["state"] == "finished"
