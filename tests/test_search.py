"""``fmnist-tui search`` and ``engine.search``: a study's trials are ordinary runs, shared by
worker processes through the journal, judged and pruned on validation accuracy.

Small work throughout: 1,000 training images of the real set, a small MLP, one or two
epochs a trial. Searches run as ``fmnist-tui search`` in a subprocess where processes
matter (workers), and in this process through ``run_search`` where they do not.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from lifecycle_helpers import ROOT, TIMEOUT, wait_until

from engine.config import TrainConfig
from engine.events import RunStarted
from engine.runs import Run, iter_runs
from engine.search import (
    SearchOptions,
    best_config,
    create_study,
    fail_dead_trials,
    importance,
    journal_path,
    list_studies,
    log_path,
    open_storage,
    run_search,
    search_process,
    study_rows,
    summary_line,
)
from engine.search_space import SearchSpace
from tui.cli import main

SMALL = [
    "--train-subset",
    "1000",
    "--test-subset",
    "200",
    "--hidden-sizes",
    "32",
    "--log-every",
    "50",
    "--device",
    "cpu",
]
FINISHED = ("complete", "pruned")


def search(
    runs: Path, *argv: str, timeout: float = 3 * TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """``fmnist-tui search --runs-dir RUNS ARGV`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "search", "--runs-dir", str(runs), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def trial_runs(runs: Path) -> dict[str, Run]:
    """The run folders in ``runs``, by id."""
    return {run.id: run for run in iter_runs(runs)}


def small_config(runs: Path, **changes: object) -> TrainConfig:
    values = {
        "runs_dir": str(runs),
        "train_subset": 1000,
        "test_subset": 200,
        "hidden_sizes": (32,),
        "log_every": 50,
        "device": "cpu",
        "epochs": 1,
    }
    values.update(changes)
    return TrainConfig.from_dict(values)


def test_two_workers_share_the_journal_and_run_every_trial_exactly_once(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = search(
        runs,
        *SMALL,
        "--study",
        "pair",
        "--trials",
        "6",
        "--epochs",
        "1",
        "--workers",
        "2",
        "--sampler",
        "random",
    )
    assert done.returncode == 0, done.stderr
    assert journal_path(runs, "pair").is_file()
    rows = study_rows(runs, "pair")
    assert [row.number for row in rows] == list(range(6))
    assert all(row.state in FINISHED for row in rows), [row.state for row in rows]
    # One run folder per trial, none without a trial, each trained once (one start).
    folders = trial_runs(runs)
    assert sorted(row.run_id for row in rows if row.run_id) == sorted(folders)
    for row in rows:
        run = folders[row.run_id or ""]
        status = run.read_status()
        assert (status["study"], status["trial"]) == ("pair", row.number)
        assert f"pair-t{row.number:03d}" in run.id
        starts = [e for e in run.read_metrics().events if isinstance(e, RunStarted)]
        assert len(starts) == 1
        assert row.value is not None and 0 <= row.value <= 1
    # The headless output: the start, one line per trial, the summary.
    lines = done.stdout.splitlines()
    assert lines[0].startswith("study pair: 6 trials of 1 epoch,")
    assert sorted(line.split()[1] for line in lines if line.startswith("trial")) == [
        str(n) for n in range(6)
    ]
    assert lines[-2].startswith("study pair: best: trial")
    assert "wall time" in lines[-2]
    # The best configuration, written for `train --config`: the base with the best params.
    path = runs / "studies" / "pair.best.toml"
    assert lines[-1] == f"train the best: fmnist-tui train --config {path} --runs-dir {runs}"
    assert TrainConfig.load(path) == best_config(runs, "pair").with_text({"runs_dir": str(runs)})


def test_a_continued_study_reaches_its_number_without_repeating_the_first_trials(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    base, space = small_config(runs), SearchSpace.default()
    first = run_search(base, space, SearchOptions(study="again", trials=2, sampler="random"))
    assert first.count("complete") + first.count("pruned") == 2
    # Continued for more, as `search --study again --trials 4` does: the same settings.
    second = run_search(base, space, SearchOptions(study="again", trials=4, sampler="random"))
    rows = second.rows
    assert len([r for r in rows if r.state in FINISHED]) == 4
    assert second.reported == [2, 3]
    # A new session's sampler is seeded apart: it does not replay the first trials.
    assert rows[2].params != rows[0].params and rows[3].params != rows[1].params


def test_trials_whose_lr_diverges_are_pruned_in_the_first_epoch_and_keep_no_checkpoints(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    # SGD at lr >= 1 on this MLP makes the loss nan within the first epoch; lr < 1 learns.
    base = small_config(
        runs, optimizer="sgd", schedule="none", hidden_sizes=(128, 128), batch_size=64, epochs=2
    )
    space = SearchSpace.from_table({"lr": [0.05, 0.1, 3.0, 10.0]})
    options = SearchOptions(study="diverge", trials=6, sampler="random")
    result = run_search(base, space, options)
    rows = result.rows
    assert len([r for r in rows if r.state in FINISHED]) == 6
    high = [r for r in rows if r.params["lr"] >= 1]
    low = [r for r in rows if r.params["lr"] < 1]
    assert high and low  # the seed draws from both halves
    folders = trial_runs(runs)
    for row in high:
        assert (row.state, row.pruned_at) == ("pruned", 1), row
        run = folders[row.run_id or ""]
        assert not run.last_path.exists() and not run.best_path.exists()
        assert run.config_path.exists() and run.metrics_path.exists()
        status = run.read_status()
        assert status["pruned_at"] == 1 and status["state"] == "pruned"
        assert "pruned at epoch 1" in status["reason"] and "diverged" in status["reason"]
    for row in low:
        assert row.epochs >= 1 and row.value is not None and row.value > 0.2
    assert result.best is not None and result.best.params["lr"] < 1
    # The best configuration: the base with the best lr, for the base's epochs.
    best = best_config(runs, "diverge")
    assert best.lr == result.best.params["lr"] and best.epochs == 2
    assert best.optimizer == "sgd" and best.name == "diverge-best"


def test_a_running_trial_whose_worker_died_is_failed_with_its_reason_and_queued_to_resume(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    base, space = small_config(runs), SearchSpace.default()
    study = create_study(base, space, SearchOptions(study="dead", trials=2))
    # A worker that died mid-trial: its trial is RUNNING, its process gone, its run unlocked.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run = Run.create(base.with_text({"name": "dead-t000"}))
    trial = study.ask()
    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": gone.pid, "index": 0})
    trial.set_user_attr("run_id", run.id)
    run.last_path.write_bytes(b"a checkpoint")
    # A live one (this process) is left alone.
    live = study.ask()
    live.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid(), "index": 1})
    assert fail_dead_trials(study, runs) == [0]
    states = {t.number: t.state for t in study.get_trials()}
    assert states[0] == optuna.trial.TrialState.FAIL
    assert states[1] == optuna.trial.TrialState.RUNNING
    status = run.read_status()
    assert status["state"] == "failed"
    assert f"pid {gone.pid}" in status["reason"] and "trial 0 of study dead" in status["reason"]
    assert status["search_notes"] == [status["reason"]]
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["resume_run"] for t in waiting] == [run.id]
    assert fail_dead_trials(study, runs) == []


def test_importance_and_listing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    base = small_config(runs)
    space = SearchSpace.from_table(
        {"lr": {"low": 1e-4, "high": 1e-1, "log": True}, "dropout": {"low": 0.0, "high": 0.5}}
    )
    run_search(base, space, SearchOptions(study="imp", trials=4, sampler="random", pruner="none"))
    values = importance(runs, "imp")
    assert set(values) == {"lr", "dropout"}
    assert math.isclose(sum(values.values()), 1.0, abs_tol=1e-6)
    assert list_studies(runs) == ["imp"]
    assert importance(runs, "imp") == values


# --- the command line: refusals, the space, deleting a study ------------------------------


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["search", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_grid_over_ranges_is_refused_naming_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_main(
        capsys, "--runs-dir", str(tmp_path), "--trials", "4", "--sampler", "grid"
    )
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert "dropout, lr, weight_decay are ranges" in err
    assert not (tmp_path / "studies").exists()


def test_a_bad_or_unreachable_storage_is_refused_in_one_line_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import time

    for url, says in (
        ("mysql://u@localhost/x", "is not a storage this can use"),
        ("postgresql://u:secret@127.0.0.1:1/x", "cannot use the database"),
    ):
        started = time.monotonic()
        code, _, err = run_main(
            capsys, "--runs-dir", str(tmp_path), "--trials", "2", "--storage", url
        )
        assert time.monotonic() - started < 10
        assert code == 2 and len(err.splitlines()) == 1 and says in err, err
        assert "secret" not in err and "Traceback" not in err


def test_val_fraction_zero_and_other_bad_flags_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    runs = ["--runs-dir", str(tmp_path)]
    for argv, says in (
        (["--trials", "2", "--val-fraction", "0"], "judged on their validation accuracy"),
        ([], "--trials N is needed"),
        (["--trials", "2", "--devices", "cpu", "--device", "cpu"], "leave out --device"),
        (["--trials", "2", "--study", "no/slash"], "cannot name a study"),
        (["--trials", "2", "--name", "x"], "give --study NAME"),
        (["--trials", "0"], "--trials 0: give 1 or more"),
        (["--trials", "2", "--study", ""], 'study "" cannot name a study'),
        # A device this machine lacks is refused before the study is made.
        (["--trials", "2", "--device", "cuda:99"], "--device: cuda:99 "),
        (["--trials", "2", "--devices", "cpu,cuda:99"], "--devices: cuda:99 "),
    ):
        code, out, err = run_main(capsys, *runs, *argv)
        assert code == 2 and len(err.splitlines()) == 1 and says in err, (argv, err)
        assert out == "" and not (tmp_path / "studies").exists(), argv


def test_show_space_prints_the_default_or_the_config_files_space(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run_main(capsys, "--show-space")
    assert code == 0
    assert out.splitlines() == SearchSpace.default().lines()
    config = tmp_path / "space.toml"
    config.write_text('lr = 0.01\n\n[search]\nbatch_size = [32, 64]\noptimizer = ["sgd"]\n')
    code, out, _ = run_main(capsys, "--config", str(config), "--show-space")
    assert code == 0
    assert out.splitlines() == ["optimizer   one of sgd", "batch_size  one of 32, 64"]


def test_delete_study_asks_first_and_removes_its_journal_and_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    run_search(small_config(runs), SearchSpace.default(), SearchOptions(study="gone", trials=1))
    other = Run.create(small_config(runs, name="other"))  # not the study's: kept
    assert len(trial_runs(runs)) == 2
    # Standard input is not a terminal here: without --yes nothing is deleted.
    code, _, err = run_main(capsys, "--runs-dir", str(runs), "--delete-study", "gone")
    assert code == 2 and "give --yes" in err
    assert len(trial_runs(runs)) == 2
    code, out, _ = run_main(capsys, "--runs-dir", str(runs), "--delete-study", "gone", "--yes")
    assert code == 0 and "deleted study gone: 1 run folder and its journal" in out
    assert list(trial_runs(runs)) == [other.id]
    assert not journal_path(runs, "gone").exists() and list_studies(runs) == []
    code, _, err = run_main(capsys, "--runs-dir", str(runs), "--delete-study", "gone", "--yes")
    assert code == 2 and "no study gone" in err


def test_a_study_continued_with_other_settings_is_refused_and_keeps_its_sampler_and_pruner(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    options = SearchOptions(study="same", trials=1, sampler="random", pruner="none")
    create_study(small_config(runs), SearchSpace.default(), options)
    here = ["--runs-dir", str(runs), "--study", "same", "--trials", "1"]
    code, out, err = run_main(capsys, *here, *SMALL, "--lr", "0.5")
    assert code == 2 and len(err.splitlines()) == 1 and out == ""
    assert "study same was made with other settings (lr 0.001 there, 0.5 here" in err
    code, out, err = run_main(capsys, *here, "--sampler", "tpe")
    assert code == 2 and len(err.splitlines()) == 1 and out == ""
    assert "study same was made with the random sampler and no pruner; continue it" in err
    storage = open_storage(None, runs, "same")
    assert optuna.load_study(study_name="same", storage=storage).trials == []
    # Continued without them: its own sampler and pruner.
    code, out, _ = run_main(capsys, *here, "--pruner", "none", "--timeout", "0.001")
    assert code == 0
    assert out.startswith("study same: 1 trial of 1 epoch, random sampler, no pruner, 1 worker;")
    assert "train the best" not in out  # no trial completed
    code, out, _ = run_main(capsys, *here, "--json")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert (events[0]["sampler"], events[0]["pruner"]) == ("random", "none")
    path = runs / "studies" / "same.best.toml"
    assert events[-1]["event"] == "summary" and events[-1]["best_config"] == str(path)
    assert TrainConfig.load(path).lr == events[-1]["best_params"]["lr"]


def test_grid_tries_each_point_once_and_stops_at_the_grids_size(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    space = SearchSpace.from_table({"lr": [0.001, 0.01], "batch_size": [64, 128]})
    options = SearchOptions(study="grid", trials=10, sampler="grid")
    result = run_search(small_config(runs), space, options)
    points = sorted((r.params["lr"], r.params["batch_size"]) for r in result.rows)
    assert points == [(0.001, 64), (0.001, 128), (0.01, 64), (0.01, 128)]


def test_no_trial_starts_after_the_timeout(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    options = SearchOptions(study="late", trials=5, timeout=0.001)
    result = run_search(small_config(runs), SearchSpace.default(), options)
    assert result.rows == [] and result.best is None
    assert "no trial completed; 0 complete, 0 pruned, 0 failed" in summary_line(result)


def test_a_detached_search_runs_in_its_own_session_and_logs_its_trials(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    options = ["--epochs", "1", "--trials", "1", "--study", "away", "--detach"]
    assert main(["search", "--runs-dir", str(runs), *SMALL, *options]) == 0
    pid = search_process(runs, "away")
    assert pid is not None and os.getsid(pid) == pid  # a session of its own
    assert study_rows(runs, "away") is not None  # the study exists at once
    wait_until(lambda: search_process(runs, "away") is None, "the detached search to end")
    assert [r.state for r in study_rows(runs, "away")] in (["complete"], ["pruned"])
    log = log_path(runs, "away").read_text()
    assert "trial   0" in log and "study away: best: trial 0" in log


def test_attach_study_names_the_studies_there_when_it_has_no_such_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    create_study(small_config(runs), SearchSpace.default(), SearchOptions(study="here", trials=1))
    code = main(["attach", "--study", "there", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and "no study there in" in err and "(studies there: here)" in err
    code = main(["attach", "--study", "here", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and "needs a terminal" in err  # found; the app needs a terminal


def test_a_worker_gives_up_after_three_trials_in_a_row_fail(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    # label_smoothing works with cross_entropy only: every trial's config is refused.
    base = small_config(runs, loss="mse")
    space = SearchSpace.from_table({"label_smoothing": [0.1, 0.2]})
    result = run_search(base, space, SearchOptions(study="never", trials=5, sampler="random"))
    assert [r.state for r in result.rows] == ["failed"] * 3
    assert all("label_smoothing" in r.reason for r in result.rows)
    assert result.error.startswith("3 trials in a row failed, so this worker stopped; the last:")
    assert list(trial_runs(runs)) == []  # a refused config makes no run
