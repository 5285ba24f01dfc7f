"""Precision, recall and F1 per class and macro-averaged: the pure function on
hand-computed matrices (and scikit-learn's, where it is installed), the epoch events and
status a run writes, the Monitor's figures and ``runs --json``."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from pane_helpers import wait_for

from engine.classification import class_scores
from engine.events import EpochEnd, event_from_dict
from engine.runs import Run
from engine.trainer import Trainer
from helpers import cfg, synthetic
from tui.app import FmnistApp
from tui.cli import main
from tui.widgets.confusion import ConfusionTable


def approx(values: list[Fraction | None]) -> list[object]:
    return [None if v is None else pytest.approx(float(v), abs=1e-12) for v in values]


def test_a_full_matrix_by_hand() -> None:
    matrix = [
        [5, 1, 0],  # true 0: tp 5, fn 1
        [2, 3, 1],  # true 1: tp 3, fn 3
        [0, 0, 4],  # true 2: tp 4, fn 0
    ]
    scores = class_scores(matrix)
    precision = [Fraction(5, 7), Fraction(3, 4), Fraction(4, 5)]  # tp / column sum
    recall = [Fraction(5, 6), Fraction(3, 6), Fraction(4, 4)]  # tp / row sum
    f1 = [2 * p * r / (p + r) for p, r in zip(precision, recall, strict=True)]
    assert scores.precision == approx(precision)
    assert scores.recall == approx(recall)
    assert scores.f1 == approx(f1)
    assert scores.macro_precision == pytest.approx(float(sum(precision) / 3))
    assert scores.macro_recall == pytest.approx(float(sum(recall) / 3))
    assert scores.macro_f1 == pytest.approx(float(sum(f1) / 3))


def test_empty_classes_na_never_predicted_and_never_true() -> None:
    matrix = [
        [4, 0, 0, 1],  # class 0: measured on both sides
        [2, 0, 0, 1],  # class 1: true images, never predicted
        [0, 0, 0, 0],  # class 2: no true and no predicted images: n/a
        [0, 0, 0, 0],  # class 3: predicted (twice) but no true images: recall n/a
    ]
    scores = class_scores(matrix)
    assert scores.precision == approx([Fraction(4, 6), Fraction(0), None, Fraction(0)])
    assert scores.recall == approx([Fraction(4, 5), Fraction(0), None, None])
    assert scores.f1 == approx([Fraction(8, 11), Fraction(0), None, Fraction(0)])
    # The n/a figures are left out of the averages: three classes, two for recall.
    assert scores.macro_precision == pytest.approx(2 / 3 / 3)
    assert scores.macro_recall == pytest.approx(4 / 5 / 2)
    assert scores.macro_f1 == pytest.approx(8 / 11 / 3)


def test_nothing_measured_and_perfect_and_refused_matrices() -> None:
    nothing = class_scores([[0] * 4 for _ in range(4)])
    assert nothing.precision == nothing.recall == nothing.f1 == [None] * 4
    assert nothing.macro_precision is nothing.macro_recall is nothing.macro_f1 is None
    perfect = class_scores([[7 if i == j else 0 for j in range(3)] for i in range(3)])
    assert perfect.f1 == [1.0, 1.0, 1.0] and perfect.macro_f1 == 1.0
    with pytest.raises(ValueError, match="square"):
        class_scores([[1, 2], [3]])
    with pytest.raises(ValueError, match="negative"):
        class_scores([[1, -2], [3, 4]])


# Matrices with a class never true or never predicted: scikit-learn warns, as it should.
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.filterwarnings("ignore:A single label was found")
def test_agrees_with_scikit_learn() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(5)
    for _ in range(20):
        size = int(rng.integers(2, 8))
        matrix = rng.integers(0, 6, (size, size)) * (rng.random((size, size)) < 0.6)
        empty = rng.integers(0, size)
        matrix[empty, :] = 0  # one class with no true images, perhaps no predictions
        if rng.random() < 0.5:
            matrix[:, empty] = 0
        true, predicted = np.nonzero(matrix)
        y_true = np.repeat(true, matrix[true, predicted])
        y_pred = np.repeat(predicted, matrix[true, predicted])
        present = [k for k in range(size) if matrix[k, :].any() or matrix[:, k].any()]
        if not present:
            continue
        scores = class_scores(matrix.tolist())
        # Precision's 0/0 is 0, recall's n/a (nan, left out of its average); F1 has none.
        zero = {"labels": present, "zero_division": 0}
        nan = {"labels": present, "zero_division": np.nan}
        p = metrics.precision_score(y_true, y_pred, average=None, **zero)
        r = metrics.recall_score(y_true, y_pred, average=None, **nan)
        f = metrics.f1_score(y_true, y_pred, average=None, **zero)
        assert [scores.precision[k] for k in present] == pytest.approx(list(p))
        assert [scores.recall[k] for k in present] == pytest.approx(
            [None if np.isnan(v) else v for v in r]
        )
        assert [scores.f1[k] for k in present] == pytest.approx(list(f))
        assert scores.macro_precision == pytest.approx(
            metrics.precision_score(y_true, y_pred, average="macro", **zero)
        )
        assert scores.macro_recall == pytest.approx(
            metrics.recall_score(y_true, y_pred, average="macro", **nan)
        )
        assert scores.macro_recall == pytest.approx(metrics.balanced_accuracy_score(y_true, y_pred))
        assert scores.macro_f1 == pytest.approx(
            metrics.f1_score(y_true, y_pred, average="macro", **zero)
        )


def test_old_epoch_lines_still_read_and_bad_scores_are_bad_lines() -> None:
    line = {
        "event": "epoch", "epoch": 1, "epochs": 1, "train_loss": 0.5, "train_accuracy": 0.8,
        "test_loss": 0.6, "test_accuracy": 0.75, "per_class_accuracy": [0.5, None],
        "confusion_matrix": [[1, 1], [0, 0]], "lr": 0.001, "grad_norm": 1.0,
        "samples_per_second": 10.0, "epoch_seconds": 1.0, "memory_bytes": 0,
        "best_accuracy": 0.75, "is_best": True,
    }  # fmt: skip
    old = event_from_dict(line)
    assert isinstance(old, EpochEnd) and old.macro_f1 is None and old.per_class_f1 is None
    new = event_from_dict({**line, "per_class_f1": [0.5, None], "macro_f1": 0.5})
    assert isinstance(new, EpochEnd) and new.per_class_f1 == [0.5, None]
    assert event_from_dict({**line, "macro_f1": "high"}) is None


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A two-epoch run on synthetic data, without a validation split: 64 training
    images, too few to learn every class (figures of all kinds, 0 among them)."""
    tmp_path = tmp_path_factory.mktemp("metrics")
    config = cfg(tmp_path, epochs=2, val_fraction=0.0)
    return Run(Trainer(config, data=synthetic(64, 128)).fit().run_dir)


def test_each_logged_epoch_carries_the_scores_of_its_confusion_matrix(trained: Run) -> None:
    epochs = trained.read_metrics().epochs
    assert len(epochs) == 2
    for event in epochs:
        scores = class_scores(event.confusion_matrix)
        assert sum(map(sum, event.confusion_matrix)) == 128
        assert event.per_class_precision == scores.precision
        assert event.per_class_recall == scores.recall
        assert event.per_class_recall == event.per_class_accuracy  # n/a where it is
        assert event.per_class_f1 == scores.f1
        assert (event.macro_precision, event.macro_recall, event.macro_f1) == (
            scores.macro_precision,
            scores.macro_recall,
            scores.macro_f1,
        )
        assert event.macro_f1 is not None and 0 < event.macro_f1 < 1
    # metrics.jsonl itself holds them, as written.
    lines = [json.loads(line) for line in trained.metrics_path.read_text().splitlines()]
    assert [line["macro_f1"] for line in lines if line["event"] == "epoch"] == [
        e.macro_f1 for e in epochs
    ]


def test_runs_json_carries_the_best_epochs_macro_f1(
    trained: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    best = [e for e in trained.read_metrics().epochs if e.is_best][-1]
    assert main(["runs", "--runs-dir", str(trained.path.parent), "--json"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["id"] == trained.id and row["macro_f1"] == best.macro_f1


async def test_the_monitor_shows_macro_and_per_class_f1_after_an_epoch(tmp_path: Path) -> None:
    data = synthetic(64, 64)
    config = cfg(tmp_path, epochs=1, val_fraction=0.0)
    app = FmnistApp(config, runs_dir=config.runs_dir, data=data)
    app.image_mode = "blocks"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3", "s")
        await wait_for(pilot, lambda: app.monitor.progress.state == "finished", 60)
        [epoch] = Run(next(Path(config.runs_dir).iterdir())).read_metrics().epochs
        assert epoch.macro_f1 is not None and epoch.per_class_f1 is not None
        # Labelled with their epoch: the best figures beside them are the best epoch's.
        # At 80 columns they head the confusion table (the figures line has no room),
        # and the per-class figures are its last columns.
        p, r, f1 = epoch.macro_precision, epoch.macro_recall, epoch.macro_f1
        confusion = app.query_one(ConfusionTable)
        await wait_for(pilot, lambda: confusion.matrix == epoch.confusion_matrix)
        assert f"epoch 1: macro P {p:.1%} R {r:.1%} F1 {f1:.1%}" in str(confusion.render())
        table = str(confusion.render())
        assert table.splitlines()[1].endswith(" P%  R% F1%")
        rows = [line.split() for line in table.splitlines()[2:]]
        assert [row[-1] for row in rows] == [
            "n/a" if f is None else f"{f:.0%}".rstrip("%") for f in epoch.per_class_f1
        ]
