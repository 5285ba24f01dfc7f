"""Early stopping, the plateau schedule and the best-k checkpoints: as Lightning's
``EarlyStopping`` and ``ModelCheckpoint(save_top_k)`` and torch's ``ReduceLROnPlateau``
behave, through a stop and a resume, and in a search's trials.

Small synthetic data (ten classes of blurred bars, hard enough that the validation
figures go up and down) and fp32 on the CPU, so that runs repeat exactly. Each expected
stop epoch and rate is worked out here from the figures an uninterrupted run logged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from engine import files
from engine.checkpoint import encode_checkpoint
from engine.config import TrainConfig
from engine.data import DataSource, ImageData, Split
from engine.events import BatchEnd, EpochEnd, Event, Finished
from engine.fields import epochs_text
from engine.optim import schedule_curve
from engine.runs import Run, list_runs, load_checkpoint
from engine.state import EarlyStopping
from engine.textlog import TextLog
from engine.trainer import FitResult, Trainer
from helpers import cfg
from tui.cli import main

EPOCHS = 8


def blurred_bars(n_train: int = 512, n_test: int = 128, seed: int = 0) -> ImageData:
    """Ten classes, each a faint bar in a row band that overlaps its neighbours' (jittered
    by a row): learnt over several epochs, with validation figures that do not only rise."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> Split:
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            row = 2 * label + 4 + rng.integers(-1, 2)
            images[i, row : row + 2, 4:24] += 50
        return Split(images, labels.astype(np.int64))

    classes = tuple(str(i) for i in range(10))
    return ImageData(make(n_train), make(n_test), classes, DataSource("custom", Path("bars")))


@pytest.fixture(scope="module")
def bars() -> ImageData:
    return blurred_bars()


def config(tmp_path: Path, **changes: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "epochs": EPOCHS,
        "lr": 3e-3,
        "val_fraction": 0.25,
        "precision": "fp32",
        "schedule": "none",
    }
    return cfg(tmp_path, **{**base, **changes})


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, bars: ImageData) -> list[EpochEnd]:
    """Every epoch of a run without callbacks: what the runs below are held against."""
    result = Trainer(config(tmp_path_factory.mktemp("reference")), data=bars).fit()
    assert result.epochs_completed == EPOCHS
    return result.history


def lightning_stop(values: list[float], higher: bool, min_delta: float, patience: int) -> int:
    """The epoch (1-based) at which Lightning's EarlyStopping stops on ``values``, or 0."""
    best = math.inf * (-1 if higher else 1)
    wait = 0
    for epoch, value in enumerate(values, 1):
        improved = value - min_delta > best if higher else value + min_delta < best
        if improved:
            best, wait = value, 0
            continue
        wait += 1
        if wait >= patience:
            return epoch
    return 0


def torch_plateau_rates(losses: list[float], lr: float, factor: float, patience: int) -> list:
    """The rate of each epoch under ReduceLROnPlateau(mode min, threshold rel 1e-4), stepped
    with ``losses`` at each epoch's end."""
    rates, best, bad = [], math.inf, 0
    for loss in losses:
        rates.append(lr)
        if loss < best * (1 - 1e-4):
            best, bad = loss, 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = lr * factor, 0
    return rates


def figures(history: list[EpochEnd]) -> list[tuple]:
    return [
        (e.epoch, e.val_loss, e.val_accuracy, e.test_loss, e.test_accuracy, e.lr, e.is_best)
        for e in history
    ]


def finished_event(run_dir: Path) -> Finished:
    ends = [e for e in Run(run_dir).read_metrics().events if isinstance(e, Finished)]
    return ends[-1]


# --- early stopping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("watch", "min_delta", "patience"),
    [("val_accuracy", 0.0, 2), ("val_accuracy", 0.3, 2), ("val_loss", 0.02, 1)],
)
def test_early_stopping_stops_where_lightnings_rule_does_and_finishes(
    tmp_path: Path, bars: ImageData, reference: list[EpochEnd], watch: str, min_delta, patience
) -> None:
    values = [getattr(e, watch) for e in reference]
    expected = lightning_stop(values, watch == "val_accuracy", min_delta, patience)
    events: list[Event] = []
    settings = {"early_stopping": watch, "patience": patience, "min_delta": min_delta}
    result = Trainer(config(tmp_path, **settings), data=bars, listeners=(events.append,)).fit()
    # Early stopping only ends the run: the epochs it trained are the reference's.
    stopped_at = expected or EPOCHS
    assert figures(result.history) == figures(reference[:stopped_at])
    assert result.status == "finished" and result.epochs_completed == stopped_at
    run = Run(result.run_dir)
    status = run.read_status()
    assert status["state"] == "finished" and status["epochs_completed"] == stopped_at
    if stopped_at == EPOCHS:  # it trained all its epochs: no early-stopping reason
        assert result.reason == status["reason"] == ""
        return
    held_against = stopped_at - patience  # the last epoch that improved
    by = f" by more than {min_delta:g}" if min_delta else ""
    reason = (
        f"early stopping: {watch} has not improved{by} on {values[held_against - 1]:.4g} "
        f"(epoch {held_against}) for {epochs_text(patience)}"
    )
    assert result.reason == reason and status["reason"] == reason
    assert finished_event(result.run_dir).reason == reason
    # What `fmnist-tui train` prints at the end says so too.
    log = TextLog()
    lines = [line for event in events for line in log.lines(event)]
    assert lines[-1].startswith(f"finished: {stopped_at} epochs, best val accuracy")
    assert lines[-1].endswith(f"; {reason}")


def test_min_delta_decides_and_without_a_validation_split_the_test_figure_is_watched(
    tmp_path: Path, bars: ImageData
) -> None:
    # No accuracy can improve by more than 1: the first epoch stays the best.
    settings = {"early_stopping": "val_accuracy", "patience": 2, "min_delta": 1.0}
    result = Trainer(config(tmp_path, val_fraction=0.0, **settings), data=bars).fit()
    assert result.status == "finished" and result.epochs_completed == 3
    first = result.history[0].test_accuracy
    assert result.reason == (
        "early stopping: test_accuracy (no validation split) has not improved by more "
        f"than 1 on {first:.4g} (epoch 1) for 2 epochs"
    )


def test_an_early_stopped_run_resumes_only_for_more_epochs_with_patience_afresh(
    tmp_path: Path, bars: ImageData, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = {"early_stopping": "val_loss", "patience": 2, "min_delta": 1e6, "epochs": 6}
    done = Trainer(config(tmp_path, **settings), data=bars).fit()
    assert done.epochs_completed == 3 and done.reason
    run = Run(done.run_dir)
    # Not an interrupted run: `--resume` alone has nothing to do, and says why.
    assert main(["train", "--resume", run.id, "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"run {run.id} has finished after 3 epochs ({done.reason})" in err
    assert "--epochs" in err
    # Through the engine, a resume without more epochs trains none and ends the same way.
    again = Trainer.resume(run, data=bars).fit()
    assert (again.status, again.epochs_completed, again.reason) == ("finished", 3, done.reason)
    assert [e.epoch for e in run.read_metrics().epochs] == [1, 2, 3]
    # Given more epochs it goes on, its patience counted afresh and the old reason
    # dropped: one more epoch, its last, where the rule is not met, ends with none.
    one = Trainer.resume(run, data=bars, epochs=4).fit()
    assert (one.status, one.epochs_completed, one.reason) == ("finished", 4, "")
    assert run.read_status()["reason"] == "" and finished_event(run.path).reason == ""
    assert [info.reason for info in list_runs(tmp_path / "runs")] == [""]
    # Given more again, the count goes on from there: it stops after epoch 5, and says
    # how long since the figure it was held against (epoch 1's).
    more = Trainer.resume(run, data=bars, epochs=10).fit()
    assert more.status == "finished" and more.epochs_completed == 5
    first = done.history[0].val_loss
    assert more.reason == (
        f"early stopping: val_loss has not improved by more than 1e+06 on {first:.4g} "
        "(epoch 1) for 4 epochs"
    )
    assert run.read_status()["reason"] == more.reason
    assert [e.epoch for e in run.read_metrics().epochs] == [1, 2, 3, 4, 5]


def test_a_rule_met_on_the_last_epoch_leaves_the_run_simply_finished(
    tmp_path: Path, bars: ImageData
) -> None:
    # No loss improves by 1e6: the rule is met after epoch 3, the run's last.
    settings = {"early_stopping": "val_loss", "patience": 2, "min_delta": 1e6, "epochs": 3}
    result = Trainer(config(tmp_path, **settings), data=bars).fit()
    assert (result.status, result.epochs_completed, result.reason) == ("finished", 3, "")
    assert Run(result.run_dir).read_status()["reason"] == ""
    assert finished_event(result.run_dir).reason == ""


@pytest.mark.parametrize(
    ("values", "min_delta", "patience", "last", "reason"),
    [
        # 0.806 is the best, but beats 0.802 by less than 0.01: 0.802 is held against.
        (
            [0.802, 0.806],
            0.01,
            1,
            False,
            "early stopping: val_accuracy has not improved by more than 0.01 on 0.802 "
            "(epoch 1) for 1 epoch",
        ),
        (
            [0.5, 0.7, 0.6, 0.65],
            0.0,
            2,
            False,
            "early stopping: val_accuracy has not improved on 0.7 (epoch 2) for 2 epochs",
        ),
        ([0.5, 0.7, 0.6, 0.65], 0.0, 2, True, ""),  # epoch 4 is the run's last
        (
            [math.nan, math.nan],
            0.0,
            2,
            False,
            "early stopping: val_accuracy has been NaN for 2 epochs",
        ),
    ],
)
def test_the_reason_names_the_figure_held_against_and_the_epochs_since(
    values: list[float], min_delta: float, patience: int, last: bool, reason: str
) -> None:
    rule = EarlyStopping()
    stops = [
        rule.update(
            "val_accuracy",
            value,
            epoch,
            min_delta=min_delta,
            patience=patience,
            name="val_accuracy",
            last=last and epoch == len(values),
        )
        for epoch, value in enumerate(values, 1)
    ]
    assert rule.reason == reason
    assert stops == [False] * (len(values) - 1) + [bool(reason)]


# --- the plateau schedule ------------------------------------------------------------------


def test_plateau_multiplies_the_rate_by_gamma_where_torchs_rule_says(
    tmp_path: Path, bars: ImageData
) -> None:
    settings = {"schedule": "plateau", "gamma": 0.5, "plateau_patience": 0, "lr": 1e-2}
    events: list[Event] = []
    result = Trainer(config(tmp_path, **settings), data=bars, listeners=(events.append,)).fit()
    logged = Run(result.run_dir).read_metrics().epochs
    losses = [e.val_loss for e in logged]
    rates = [e.lr for e in logged]
    assert rates == torch_plateau_rates(losses, 1e-2, 0.5, 0)
    assert min(rates) < 1e-2  # the validation loss stalled at least once here
    # The rate is constant within an epoch: every batch of epoch E used E's rate.
    for batch in (e for e in events if isinstance(e, BatchEnd)):
        assert batch.lr == rates[batch.epoch - 1]
    # The form's preview cannot know the losses to come: the starting rate, flat.
    curve = schedule_curve(config(tmp_path, **settings), 16)
    assert {rate for _, rate in curve} == {1e-2}


# --- the best k checkpoints ----------------------------------------------------------------


def kept_files(run_dir: Path) -> dict[int, int]:
    """best-eNN.pt in the folder: NN -> the epoch its checkpoint holds."""
    return {
        int(path.stem.removeprefix("best-e")): load_checkpoint(path)["epoch"]
        for path in sorted(run_dir.glob("best-e*.pt"))
    }


def test_the_best_k_epochs_keep_their_checkpoints_and_best_pt_is_the_best(
    tmp_path: Path, bars: ImageData, reference: list[EpochEnd]
) -> None:
    result = Trainer(config(tmp_path, save_top_k=3), data=bars).fit()
    assert figures(result.history) == figures(reference)
    ranked = sorted(reference, key=lambda e: (-(e.val_accuracy or 0), e.epoch))[:3]
    top = [e.epoch for e in ranked]
    assert kept_files(result.run_dir) == {epoch: epoch for epoch in top}
    best = load_checkpoint(result.run_dir / "best.pt")
    kept = load_checkpoint(result.run_dir / f"best-e{top[0]:02d}.pt")
    assert best["epoch"] == top[0]
    assert all(torch.equal(best["model"][k], kept["model"][k]) for k in best["model"])
    status = Run(result.run_dir).read_status()
    assert status["top_k"] == [
        {"epoch": e.epoch, "accuracy": e.val_accuracy, "file": f"best-e{e.epoch:02d}.pt"}
        for e in ranked
    ]
    # k = 1 (the default) is best.pt alone.
    single = Trainer(config(tmp_path, epochs=2), data=bars).fit()
    assert kept_files(single.run_dir) == {} and "top_k" not in Run(single.run_dir).read_status()


# --- exact resume ----------------------------------------------------------------------------

ALL_THREE = {
    "epochs": 12,
    "lr": 5e-3,
    "early_stopping": "val_loss",
    "patience": 2,
    "schedule": "plateau",
    "plateau_patience": 0,
    "gamma": 0.5,
    "save_top_k": 2,
    "dropout": 0.2,
}


def stop_when(trainer: Trainer, predicate) -> None:
    def listen(event: Event) -> None:
        if predicate(event):
            trainer.stop()

    trainer.add_listener(listen)


def outcome(result: FitResult) -> dict[str, Any]:
    """What a run with all three left behind: its epochs' figures and rates, how it ended,
    the checkpoints it kept (and their weights), its status's list."""
    run = Run(result.run_dir)
    status = run.read_status()
    kept = {}
    for path in sorted(result.run_dir.glob("best*.pt")):
        checkpoint = load_checkpoint(path)
        kept[path.name] = (checkpoint["epoch"], [t.tolist() for t in checkpoint["model"].values()])
    return {
        "epochs": figures(run.read_metrics().epochs),
        "ended": (status["state"], status["epochs_completed"], status["reason"]),
        "kept": kept,
        "top_k": status["top_k"],
        "plateau": load_checkpoint(run.last_path)["plateau"],
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, bars: ImageData) -> dict[str, Any]:
    result = Trainer(config(tmp_path_factory.mktemp("whole"), **ALL_THREE), data=bars).fit()
    return outcome(result)


@pytest.mark.parametrize(
    "where",
    ["mid epoch 2", "end of the epoch before", "end of the epoch early stopping ends"],
)
def test_a_run_with_all_three_stopped_and_resumed_ends_as_if_never_stopped(
    tmp_path: Path, bars: ImageData, uninterrupted: dict[str, Any], where: str
) -> None:
    whole = uninterrupted
    stopped_at = whole["ended"][1]
    # Early stopping ends it before its last epoch, and the rate dropped on the way.
    assert whole["ended"][2].startswith("early stopping:") and 3 < stopped_at < 12
    assert len({e[5] for e in whole["epochs"]}) > 1
    assert len(whole["kept"]) == 3  # best.pt and the best 2 epochs' files

    trainer = Trainer(config(tmp_path, **ALL_THREE), data=bars)
    if where == "mid epoch 2":
        stop_when(trainer, lambda e: isinstance(e, BatchEnd) and (e.epoch, e.batch) == (2, 4))
    else:
        epoch = stopped_at - 1 if where == "end of the epoch before" else stopped_at
        stop_when(trainer, lambda e: isinstance(e, EpochEnd) and e.epoch == epoch)
    first = trainer.fit()
    if where == "end of the epoch early stopping ends":
        # The stop came as early stopping ended the run: it finished, nothing to resume.
        assert first.status == "finished" and first.reason == whole["ended"][2]
        assert outcome(first) == whole
        return
    assert first.status == "stopped" and Run(first.run_dir).state() == "interrupted"
    if where == "end of the epoch before":
        # As a kill leaves it after the next epoch's file was written, before its last.pt:
        # a file the checkpoint does not list, holding other weights.
        stray = first.run_dir / f"best-e{stopped_at:02d}.pt"
        files.atomic_write(stray, Run(first.run_dir).last_path.read_bytes())
    resumed = Trainer.resume(first.run_dir, data=bars).fit()
    assert resumed.status == "finished"
    assert outcome(resumed) == whole


def test_a_checkpoint_from_before_the_callbacks_still_resumes(
    tmp_path: Path, bars: ImageData
) -> None:
    trainer = Trainer(config(tmp_path, epochs=3), data=bars)
    stop_when(trainer, lambda e: isinstance(e, BatchEnd) and (e.epoch, e.batch) == (2, 4))
    run = Run(trainer.fit().run_dir)
    old = load_checkpoint(run.last_path)
    for key in ("early_stopping", "top_k"):
        del old[key]
    files.atomic_write(run.last_path, encode_checkpoint(old))
    resumed = Trainer.resume(run, data=bars).fit()
    assert resumed.status == "finished" and resumed.epochs_completed == 3
    assert json.loads(run.status_path.read_text())["state"] == "finished"


# --- in a search ---------------------------------------------------------------------------


def test_an_early_stopped_trial_is_complete_with_its_best_value_and_pruning_still_acts(
    tmp_path: Path,
) -> None:
    from engine.search import SearchOptions, create_study, run_search, study_rows
    from engine.search_space import SearchSpace

    runs = tmp_path / "runs"
    # No accuracy improves by more than 1: a trial stops after its second epoch of three.
    base = TrainConfig(
        runs_dir=str(runs),
        train_subset=1000,
        test_subset=200,
        hidden_sizes=(32,),
        log_every=50,
        device="cpu",
        precision="fp32",
        epochs=3,
        early_stopping="val_accuracy",
        patience=1,
        min_delta=1.0,
        save_top_k=2,
    )
    space = SearchSpace.from_table({"lr": [1e-3, 2e-3, 3e-3, 5e-3, 1e-7]})
    options = SearchOptions(study="stopping", trials=6, sampler="random", pruner="median")
    study = create_study(base, space, options)
    # Five that learn (the median pruner's start-up trials), then one that cannot.
    for lr in (1e-3, 2e-3, 3e-3, 5e-3, 2e-3, 1e-7):
        study.enqueue_trial({"lr": lr})
    run_search(base, space, options)
    rows = study_rows(runs, "stopping")
    assert [row.params["lr"] for row in rows] == [1e-3, 2e-3, 3e-3, 5e-3, 2e-3, 1e-7]
    for row in rows[:5]:
        assert (row.state, row.epochs) == ("complete", 2), row
        assert row.value == max(row.values_by_epoch)
        assert row.reason.startswith("early stopping: val_accuracy has not improved")
        run = Run(runs / (row.run_id or ""))
        assert run.read_status()["state"] == "finished"
        assert sorted(p.name for p in run.path.glob("best*.pt")) == [
            "best-e01.pt",
            "best-e02.pt",
            "best.pt",
        ]
    pruned = rows[5]
    assert (pruned.state, pruned.pruned_at) == ("pruned", 1), pruned
    assert not list((runs / (pruned.run_id or "")).glob("*.pt"))


# --- in the app ----------------------------------------------------------------------------


async def test_the_app_says_why_early_stopping_ended_a_run_in_the_monitor_and_runs_pane(
    tmp_path: Path, bars: ImageData
) -> None:
    from pane_helpers import make_app, shown, wait_for

    from tui.widgets.event_log import EventLog
    from tui.widgets.runs_table import RunsTable

    settings = {"early_stopping": "val_accuracy", "patience": 1, "min_delta": 1.0}
    app = make_app(tmp_path / "runs", bars, epochs=4, val_fraction=0.25, **settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.monitor.progress.state == "finished")
        run = Run(next((tmp_path / "runs").iterdir()))
        reason = run.read_status()["reason"]
        assert reason.startswith("early stopping: val_accuracy has not improved by more than 1")
        log = app.query_one(EventLog).entry_texts
        assert log[-1].startswith("Finished 2 epochs in") and log[-1].endswith(f"; {reason}")

        await pilot.press("4")
        table = app.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert f"finished: {reason}" in " ".join(shown(app.query_one("#runs-detail")).split())
