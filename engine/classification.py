"""Per-class and macro precision, recall and F1, from a confusion matrix.

The matrix is the one evaluation gathers (``engine.loop.evaluate``): ``C x C`` counts,
rows the true class, columns the predicted class. For class ``k``, with ``tp`` its
diagonal count, ``fp`` the rest of its column and ``fn`` the rest of its row:
precision is ``tp / (tp + fp)``, recall ``tp / (tp + fn)`` (the class's accuracy) and
F1 ``2 tp / (2 tp + fp + fn)``, the harmonic mean of the two (0 when both are 0), as
scikit-learn's ``sklearn.metrics.precision_recall_fscore_support`` computes them.

Where a ratio is 0/0 (scikit-learn's ``zero_division``):

- a class with no true and no predicted images is n/a (None) in all three, and left out
  of the macro averages;
- a class never predicted but with true images has precision 0 (``zero_division=0``),
  recall 0 and F1 0;
- a class predicted but with no true images has recall n/a (``zero_division=np.nan``,
  which leaves it out of the macro recall, as it leaves the class's accuracy n/a),
  precision 0 and F1 0 (its predictions are all wrong).

So recall is the per-class accuracy, n/a where that is, and the macro recall is the
balanced accuracy (``sklearn.metrics.balanced_accuracy_score``). Each macro average is
the unweighted mean over the classes whose figure is not n/a, None when none is. Plain
Python: neither torch nor numpy is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ClassScores:
    """Per-class precision, recall and F1 (``C`` fractions 0..1 each; None: n/a, for a
    class with no true and no predicted images, and in recall for one with no true
    images) and their macro averages over the classes not n/a (None when none is)."""

    precision: list[float | None]
    recall: list[float | None]
    f1: list[float | None]
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None


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
        precision.append(tp / predicted if predicted else 0.0)
        recall.append(tp / true if true else None)
        f1.append(2 * tp / (true + predicted))  # 2 tp / (2 tp + fp + fn); never 0/0 here
    return ClassScores(
        precision=precision,
        recall=recall,
        f1=f1,
        macro_precision=_mean(precision),
        macro_recall=_mean(recall),
        macro_f1=_mean(f1),
    )
