"""Per-class and macro precision, recall and F1, from a confusion matrix.

The matrix is the one evaluation gathers (``engine.loop.evaluate``): ``C x C`` counts,
rows the true class, columns the predicted class. For class ``k``, with ``tp`` its
diagonal count, ``fp`` the rest of its column and ``fn`` the rest of its row:
precision is ``tp / (tp + fp)``, recall ``tp / (tp + fn)`` (the class's accuracy) and
F1 ``2 tp / (2 tp + fp + fn)``, the harmonic mean of the two (0 when both are 0).

Where a ratio is 0/0 the figure is 0, scikit-learn's ``zero_division=0`` in
``sklearn.metrics.precision_recall_fscore_support``, except for a class with nothing
to measure:

- a class with no true and no predicted images is n/a (None) in all three, and left out
  of the macro averages (scikit-learn counts it as 0 unless ``labels`` leaves it out);
- a class never predicted but with true images has precision 0 (0/0), recall 0 and F1 0;
- a class with predictions but no true images has recall 0 (0/0), precision 0 and F1 0.

Macro averages are the unweighted means over the classes that are not n/a, None when
every class is. Plain Python: neither torch nor numpy is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ClassScores:
    """Per-class precision, recall and F1 (``C`` fractions 0..1 each, None for a class
    with no true and no predicted images) and their macro averages (None when every
    class is n/a)."""

    precision: list[float | None]
    recall: list[float | None]
    f1: list[float | None]
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None


def _ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator``, 0.0 for 0/0 (scikit-learn's ``zero_division=0``)."""
    return numerator / denominator if denominator else 0.0


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def class_scores(confusion_matrix: Sequence[Sequence[int]]) -> ClassScores:
    """Precision, recall and F1 per class and their macro averages from a ``C x C``
    matrix of non-negative int counts (rows: true class, columns: predicted class).

    The rules for empty classes are the module's. Raises ``ValueError`` for a matrix
    that is not square or holds a negative count. An empty matrix (``C = 0``) gives
    empty lists and None averages.
    """
    size = len(confusion_matrix)
    if any(len(row) != size for row in confusion_matrix):
        raise ValueError(
            f"the confusion matrix must be square ({size} rows, rows of other lengths)"
        )
    if any(count < 0 for row in confusion_matrix for count in row):
        raise ValueError("the confusion matrix holds a negative count")
    precision: list[float | None] = []
    recall: list[float | None] = []
    f1: list[float | None] = []
    for k in range(size):
        tp = int(confusion_matrix[k][k])
        true = sum(int(c) for c in confusion_matrix[k])  # tp + fn
        predicted = sum(int(row[k]) for row in confusion_matrix)  # tp + fp
        if true == 0 and predicted == 0:
            precision.append(None)
            recall.append(None)
            f1.append(None)
            continue
        precision.append(_ratio(tp, predicted))
        recall.append(_ratio(tp, true))
        f1.append(_ratio(2 * tp, true + predicted))  # 2 tp / (2 tp + fp + fn)
    return ClassScores(
        precision=precision,
        recall=recall,
        f1=f1,
        macro_precision=_mean(precision),
        macro_recall=_mean(recall),
        macro_f1=_mean(f1),
    )
