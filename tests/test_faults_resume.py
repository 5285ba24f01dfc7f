"""Resume integrity: a run stopped at any batch, by any signal, resumes exactly; a run
folder whose log was edited, or whose ``last.pt`` is another run's, is never resumed
into a lie; log lines that are not events never crash a reader; and what ``runs`` shows
never overstates what was trained.

docs/faults.md ("Resume integrity") lists what each test covers. The stop trials run in
one driver process (``tests/fault_driver.py``), forked from a warm interpreter; the
rest train a few tiny runs in this process.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from lifecycle_helpers import ROOT, write_raw_data

from engine.config import TrainConfig
from engine.data import ImageData
from engine.errors import CheckpointError
from engine.events import BatchEnd, Event
from engine.runs import MetricsFollower, Run, list_runs, load_checkpoint
from engine.trainer import Trainer
from tui.cli import main

EPOCHS = 2
BATCHES = 4  # per epoch: 256 images in batches of 64

# Every random stream in play (dropout, augmentation, shuffling), and a batch event
# for every batch, so a stop can land on each.
TRAIN_FLAGS = [
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    "64",
    "--hidden-sizes",
    "32",
    "--dropout",
    "0.2",
    "--augment",
    "--schedule",
    "step",
    "--step-size",
    "1",
    "--gamma",
    "0.5",
    "--log-every",
    "1",
    "--device",
    "cpu",
    "--seed",
    "3",
]

# Compared exactly (CPU, fixed seed); the float sums within a relative 1e-6.
EXACT = (
    "epoch",
    "epochs",
    "test_loss",
    "test_accuracy",
    "train_accuracy",
    "per_class_accuracy",
    "confusion_matrix",
    "lr",
    "best_accuracy",
    "is_best",
)
CLOSE = ("train_loss", "grad_norm")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, fashion: ImageData) -> Path:
    """256 train and 64 test images of the real set, as the four raw IDX files."""
    return write_raw_data(tmp_path_factory.mktemp("tiny-fashion"), fashion, 256, 64)


def assert_same_epochs(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [e["epoch"] for e in got] == [e["epoch"] for e in want]
    for a, b in zip(got, want, strict=True):
        for key in EXACT:
            assert a.get(key) == b.get(key), (a["epoch"], key)
        for key in CLOSE:
            assert math.isclose(a[key], b[key], rel_tol=1e-6), (a["epoch"], key)


def assert_same_weights(run: Path, reference: Path) -> None:
    for name in ("last.pt", "best.pt"):
        got, want = load_checkpoint(run / name), load_checkpoint(reference / name)
        assert got["epoch"] == want["epoch"], name
        for key, tensor in want["model"].items():
            assert torch.equal(got["model"][key], tensor), (name, key)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# --- stopped at every batch, by every signal, and resumed ------------------------------

# (how, by): the signals `fmnist-tui train` and a detached trainer handle, and a stop
# written to control.json (`x` in the app or in attach), to either.
STOPPERS = [
    (how, by) for how in ("cli", "detached") for by in ("SIGINT", "SIGTERM", "SIGHUP", "control")
]


def at(epoch: int, batch: int = 0) -> dict[str, Any]:
    """After batch ``batch`` of epoch ``epoch`` (1-based) is logged, or with ``batch`` 0
    at the epoch's end, logged before its checkpoint."""
    if batch:
        return {"event": "batch", "epoch": epoch, "batch": batch}
    return {"event": "epoch", "epoch": epoch}


# Every batch of the first epoch and its end, and the second epoch's first, a middle and
# its last batch (the run's very last), with every stopper. A stop after an epoch's last
# batch leaves a checkpoint at batch == batches per epoch, before the evaluation: that
# moment is tried with a signal and with control.json, in both kinds of process.
STOPS = [
    {
        "id": f"{how}-{by}-{where['epoch']}.{where.get('batch', 'end')}",
        "how": how,
        "by": by,
        "at": where,
    }
    for how, by, where in [
        ("detached", "SIGTERM", at(1, 1)),
        ("cli", "SIGHUP", at(1, 2)),
        ("detached", "SIGINT", at(1, 3)),
        ("cli", "SIGINT", at(1, BATCHES)),
        ("detached", "control", at(1, BATCHES)),
        ("detached", "SIGHUP", at(1)),
        ("cli", "control", at(2, 1)),
        ("detached", "SIGTERM", at(2, 3)),
        ("cli", "SIGTERM", at(2, BATCHES)),
    ]
]


@pytest.fixture(scope="module")
def stops(tmp_path_factory, tiny_data: Path) -> dict[str, Any]:
    """Run every stop trial and an uninterrupted reference in one driver process."""
    work = tmp_path_factory.mktemp("stops")
    plan = work / "plan.json"
    flags = ["--data-dir", str(tiny_data), *TRAIN_FLAGS]
    plan.write_text(json.dumps({"work": str(work), "train": flags, "stops": STOPS}))
    results = work / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "fault_driver.py"), str(plan), str(results)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's engine, as in pytest
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(results.read_text())
    assert out["reference"]["ended"]["exit"] == 0
    [run] = out["reference"]["after"]["runs"]
    assert run["state"] == "finished" and len(run["epochs"]) == EPOCHS
    out["stops"] = {s["id"]: s for s in out["stops"]}
    return out


def judge(stop: dict[str, Any], trial: dict[str, Any], reference: dict[str, Any]) -> None:
    """The stop landed where it was sent, said so, and the resume matched ``reference``."""
    signalled = stop["by"] != "control"
    ended = {"exit": 130 if signalled else 0, "signal": None, "hung": False}
    assert trial["ended"] == ended, trial["stderr"][-2000:]
    [run] = trial["after"]["runs"]
    assert run["state"] == "interrupted" and trial["after"]["listed"][0]["resumable"]
    # After the planned batch, or at the epoch's end: a batch equal to the batches per
    # epoch is a stop after the epoch's last batch, before its evaluation.
    at = stop["at"]
    where = (at["epoch"] - 1, at["batch"]) if at["event"] == "batch" else (at["epoch"], 0)
    saved = trial["checkpoint"]
    assert (saved["epoch"], saved["batch"]) == where, saved
    assert saved["reason"] == ("interrupt" if signalled else "stop")
    resume = trial["resume"]
    assert resume["ended"]["exit"] == 0, (resume["stderr"] + resume["stdout"])[-2000:]
    [run] = resume["after"]["runs"]
    assert run["state"] == "finished"
    assert not run["torn_line"] and run["bad_lines"] == 0 and run["temp_files"] == []
    assert_same_epochs(run["epochs"], reference["epochs"])
    assert_same_weights(Path(run["path"]), Path(reference["path"]))


def test_a_stop_at_any_batch_by_any_signal_resumes_to_the_same_metrics_and_weights(
    stops: dict[str, Any],
) -> None:
    # The plan: every stopper, every batch of an epoch and its end, and the epochs' last
    # batch in both kinds of process, by a signal and by control.json.
    assert {(s["how"], s["by"]) for s in STOPS} == set(STOPPERS)
    firsts = {s["at"].get("batch") for s in STOPS if s["at"]["epoch"] == 1}
    assert firsts == {None, *range(1, BATCHES + 1)}
    last = [(s["how"], s["by"]) for s in STOPS if s["at"].get("batch") == BATCHES]
    assert {how for how, _ in last} == {"cli", "detached"}
    assert "control" in {by for _, by in last} and len({by for _, by in last}) > 1
    [reference] = stops["reference"]["after"]["runs"]
    failures = []
    for stop in STOPS:
        try:
            judge(stop, stops["stops"][stop["id"]], reference)
        except AssertionError as exc:
            failures.append(f"{stop['id']}: {exc}")
    assert not failures, "\n".join(failures)


# --- run folders made in this process ------------------------------------------------


def config(runs: Path, data: Path, **overrides: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "epochs": EPOCHS,
        "batch_size": 64,
        "hidden_sizes": (16,),
        "log_every": 1,
        "device": "cpu",
        "seed": 3,
        "runs_dir": str(runs),
        "data_dir": str(data),
    }
    base.update(overrides)
    return TrainConfig(**base)


def stopped_run(runs: Path, data: Path, epoch: int, batch: int, **overrides: Any) -> Run:
    """A run stopped after batch ``batch`` of epoch ``epoch``, as Ctrl+C leaves one."""
    trainer: list[Trainer] = []

    def stop_there(event: Event) -> None:
        if isinstance(event, BatchEnd) and (event.epoch, event.batch) == (epoch, batch):
            trainer[0].stop("interrupt")

    trainer.append(Trainer(config(runs, data, **overrides), listeners=(stop_there,)))
    result = trainer[0].fit()
    assert result.status == "stopped" and result.run_dir is not None
    return Run(result.run_dir)


@pytest.fixture(scope="module")
def mid_epoch_two(tmp_path_factory, tiny_data: Path) -> Run:
    """A run stopped after batch 2 of its second epoch; tests copy it before changing it."""
    return stopped_run(tmp_path_factory.mktemp("original"), tiny_data, 2, 2)


def copy_of(run: Run, runs: Path) -> Run:
    runs.mkdir(parents=True, exist_ok=True)
    return Run(shutil.copytree(run.path, runs / run.id))


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def row(runs: Path) -> tuple[Any, ...]:
    [info] = list_runs(runs)
    return (info.state, info.epochs_completed, info.epochs, info.best_accuracy, info.reason)


def resume(run: Run, *extra: str) -> int:
    return main(["train", "--resume", run.id, "--runs-dir", str(run.path.parent), *extra])


def log_lines(run: Run) -> list[bytes]:
    return run.metrics_path.read_bytes().splitlines(keepends=True)


def json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def assert_whole_log(run: Run, epochs: list[int]) -> None:
    """Every line of the log is one complete event: no NULs, no two lines glued."""
    raw = run.metrics_path.read_bytes()
    assert b"\0" not in raw and raw.endswith(b"\n")
    glued = [line[:80] for line in raw.splitlines() if line.strip() and not json_object(line)]
    assert glued == []
    log = run.read_metrics()
    assert not log.torn_line and log.bad_lines == 0
    assert [e.epoch for e in log.epochs] == epochs


# --- item 2: the log changed since the checkpoint ---------------------------------------


def blank_line_first(lines: list[bytes]) -> list[bytes]:
    return [b"\n", *lines]


def a_line_removed(lines: list[bytes]) -> list[bytes]:
    first = next(i for i, line in enumerate(lines) if b'"event": "checkpoint"' in line)
    return lines[:first] + lines[first + 1 :]


@pytest.mark.parametrize("edit", [blank_line_first, a_line_removed])
def test_a_log_edited_since_the_checkpoint_is_cut_at_a_whole_line_and_says_so(
    edit, mid_epoch_two: Run, tmp_path: Path, capsys
) -> None:
    run = copy_of(mid_epoch_two, tmp_path / "runs")
    offset = load_checkpoint(run.last_path)["metrics_offset"]
    edited = b"".join(edit(log_lines(run)))
    run.metrics_path.write_bytes(edited)
    assert len(edited) >= offset  # not cut short: that is refused (below)
    cut = edited[:offset].rfind(b"\n") + 1
    assert cut < offset  # the checkpoint's offset now falls inside a line
    capsys.readouterr()
    assert resume(run) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert_whole_log(run, [1, 2])
    notes = [line for line in out.splitlines() if line.startswith("note: ")]
    assert any(
        f"metrics.jsonl had changed since last.pt was saved: byte {offset:,}" in n
        and f"cut back to its last complete line before that (byte {cut:,})" in n
        for n in notes
    ), out
    assert row(run.path.parent)[:3] == ("finished", 2, 2)


# --- item 3: another run's last.pt, or a log cut short ----------------------------------


def assert_refused_untouched(run: Run, capsys, *expected: str) -> str:
    """Resuming ``run`` exits 2 with one line holding ``expected``, changing nothing."""
    before, listed = folder_bytes(run.path), row(run.path.parent)
    capsys.readouterr()
    assert resume(run) == 2
    out, err = capsys.readouterr()
    line = one_line(err)
    assert line.startswith("fmnist-tui: error: ")
    for text in expected:
        assert text in line, line
    assert out == ""
    assert folder_bytes(run.path) == before
    assert row(run.path.parent) == listed
    return line


def test_another_runs_checkpoint_with_other_settings_is_refused(
    mid_epoch_two: Run, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    run = copy_of(mid_epoch_two, tmp_path / "runs")
    other = stopped_run(tmp_path / "other", tiny_data, 1, 3, seed=4)
    shutil.copyfile(other.last_path, run.last_path)
    line = assert_refused_untouched(
        run,
        capsys,
        f"run {run.id} cannot be resumed: its last.pt was saved with other settings than "
        "its config.json (seed: 4 in last.pt, 3 in config.json)",
        "either config.json was edited (put back the settings last.pt holds) or last.pt is "
        "another run's (put back this run's own last.pt), or start a new run",
    )
    assert "epochs" not in line  # a total of epochs may differ: a resume extends it


def test_a_twin_runs_later_checkpoint_or_a_log_cut_short_is_refused(
    mid_epoch_two: Run, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    # Same settings, so only the log can tell: the twin's checkpoint is further along
    # than this run's log reaches.
    early = stopped_run(tmp_path / "runs", tiny_data, 1, 2)
    shutil.copyfile(mid_epoch_two.last_path, early.last_path)
    size = early.metrics_path.stat().st_size
    offset = load_checkpoint(early.last_path)["metrics_offset"]
    assert offset > size
    assert_refused_untouched(
        early,
        capsys,
        f"run {early.id} cannot be resumed: its last.pt was saved when metrics.jsonl held "
        f"{offset:,} bytes, but the log holds {size:,} (it was cut short, or last.pt comes "
        "from another run)",
    )
    # The run's own checkpoint, its log cut short.
    run = copy_of(mid_epoch_two, tmp_path / "cut")
    lines = log_lines(run)
    run.metrics_path.write_bytes(b"".join(lines[: len(lines) // 2]))
    assert_refused_untouched(run, capsys, "but the log holds", "put back the run's own")


# --- item 4: lines that are valid JSON but not events -----------------------------------


def same_length(line: bytes, text: str) -> bytes:
    """``text`` padded with spaces to the length of ``line`` (so offsets stay put)."""
    body = text.encode()
    assert len(body) < len(line)
    return body + b" " * (len(line) - 1 - len(body)) + b"\n"


def wrong_types(event: dict[str, Any]) -> list[dict[str, Any]]:
    """``event`` with one field of the wrong type, for each of its typed fields."""
    wrong = {int: "1", float: "xx", bool: 1, str: 5, list: {"a": 1}, dict: [1]}
    out = []
    for key, value in event.items():
        if key == "event":
            continue
        if isinstance(value, bool):
            bad: Any = wrong[bool]
        elif isinstance(value, int):
            bad = wrong[int]
        elif isinstance(value, float):
            bad = wrong[float]
        elif isinstance(value, list) and value and isinstance(value[0], list):
            bad = [["x"] * len(value[0])] * len(value)  # a matrix of strings
        elif isinstance(value, list) and value:
            bad = [[v] for v in value]
        else:
            bad = wrong.get(type(value))
        out.append({**event, key: bad})
    return out


def test_lines_of_the_wrong_shape_or_type_are_bad_lines_for_every_reader(
    mid_epoch_two: Run, tmp_path: Path
) -> None:
    run = copy_of(mid_epoch_two, tmp_path / "runs")
    good = run.read_metrics()
    assert good.bad_lines == 0
    samples = {e.kind: e.to_dict() for e in good.events}
    junk: list[Any] = [[], 1, "x", None, True, {"event": 1}, {"event": "epoch"}]
    for kind in ("run_started", "batch", "epoch", "checkpoint", "finished"):
        junk += wrong_types(samples[kind])
    epoch = samples["epoch"]
    junk.append({**epoch, "test_accuracy": "xx"})  # what crashed attach
    with open(run.metrics_path, "a") as f:
        for item in junk:
            f.write(json.dumps(item) + "\n")
    log = run.read_metrics()
    assert [e.to_dict() for e in log.events] == [e.to_dict() for e in good.events]
    assert log.bad_lines == len(junk) and not log.torn_line
    follower = MetricsFollower(run)
    assert [e.to_dict() for e in follower.poll()] == [e.to_dict() for e in good.events]
    assert follower.bad_lines == len(junk)
    from tui.run_curves import read_curves

    curves = read_curves(run.path)
    assert all(isinstance(v, float) for v in curves.test_accuracy + curves.train_loss)


def test_resume_with_lines_that_are_not_events_reports_them_and_completes(
    mid_epoch_two: Run, tmp_path: Path, capsys
) -> None:
    run = copy_of(mid_epoch_two, tmp_path / "runs")
    offset = load_checkpoint(run.last_path)["metrics_offset"]
    lines = log_lines(run)
    batches = [i for i, line in enumerate(lines) if b'"event": "batch"' in line]
    # Before the checkpoint (offsets kept): a list, and a batch whose loss is text.
    lines[batches[0]] = same_length(lines[batches[0]], "[")[:-2] + b"]\n"
    event = json.loads(lines[batches[1]])
    lines[batches[1]] = same_length(lines[batches[1]], json.dumps({**event, "loss": "xx"}))
    # After it, where the resume drops them: a JSON list and a number.
    lines += [b"[]\n", b"7\n"]
    run.metrics_path.write_bytes(b"".join(lines))
    assert len(b"".join(lines[: batches[1] + 1])) < offset
    capsys.readouterr()
    assert resume(run) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert (
        "note: metrics.jsonl has 2 lines that are not events (not a JSON object, or a field "
        "of the wrong type); they are kept, and skipped when read"
    ) in out.splitlines()
    assert (
        "note: metrics.jsonl had 2 lines that are not events after the checkpoint; they "
        "were dropped with the events after it"
    ) in out.splitlines()
    log = run.read_metrics()
    assert log.bad_lines == 2 and [e.epoch for e in log.epochs] == [1, 2]
    assert row(run.path.parent)[:3] == ("finished", 2, 2)


# --- item 10: counts that overstate -----------------------------------------------------


def test_a_full_disk_at_a_checkpoint_counts_the_epochs_of_the_intact_one(
    tiny_data: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    # The third last.pt (start, epoch 1, epoch 2) cannot be written: the disk is full.
    real = os.replace
    seen = []

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        if Path(dst).name == "last.pt":
            seen.append(dst)
            if len(seen) == 3:
                raise OSError(28, os.strerror(28), str(dst))
        real(src, dst, **kwargs)

    runs = tmp_path / "runs"
    argv = ["train", "--data-dir", str(tiny_data), "--runs-dir", str(runs), *TRAIN_FLAGS]
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        assert main(argv) == 1
    [info] = list_runs(runs)
    assert load_checkpoint(info.path / "last.pt")["epoch"] == 1
    assert (info.state, info.epochs_completed, info.epochs) == ("failed", 1, EPOCHS)
    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    [listed] = [line for line in capsys.readouterr().out.splitlines() if info.id in line]
    assert listed.split()[1:3] == ["failed", f"1/{EPOCHS}"]


def test_resume_to_fewer_epochs_than_the_checkpoint_has_begun_is_refused(
    mid_epoch_two: Run, tmp_path: Path, capsys
) -> None:
    # One epoch done and two batches of the second: a total of 1 would throw those away
    # and call the run finished with weights from the middle of epoch 2.
    run = copy_of(mid_epoch_two, tmp_path / "runs")
    before, listed = folder_bytes(run.path), row(run.path.parent)
    assert listed[:3] == ("interrupted", 1, 2)
    expected = (
        f"run {run.id} cannot be cut back to 1 epoch: it has trained 1 epoch and 2 batches "
        "of epoch 2 already; give a total of 2 or more"
    )
    with pytest.raises(CheckpointError) as refused:
        Trainer.resume(run, epochs=1).fit()
    assert str(refused.value).startswith(expected)
    assert folder_bytes(run.path) == before and row(run.path.parent) == listed
    capsys.readouterr()
    assert resume(run, "--epochs", "1") == 2
    assert one_line(capsys.readouterr().err).startswith(f"fmnist-tui: error: {expected}")
    assert folder_bytes(run.path) == before and row(run.path.parent) == listed


def test_a_resume_refused_for_a_damaged_checkpoint_leaves_state_and_progress(
    mid_epoch_two: Run, tmp_path: Path, capsys
) -> None:
    run = copy_of(mid_epoch_two, tmp_path / "runs")
    run.last_path.write_bytes(b"not a checkpoint at all")
    assert row(run.path.parent)[:2] == ("interrupted", 1)
    assert_refused_untouched(run, capsys, "last.pt: not a readable checkpoint")
