"""Test-set metrics: accuracy, loss, confusion matrix, per-class precision and recall, mistakes."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from digitlab.data import NUM_CLASSES


@dataclass(frozen=True)
class Mistake:
    """One misclassified test image."""

    index: int
    label: int
    predicted: int
    probabilities: list[float]


@dataclass(frozen=True)
class Evaluation:
    """How a model does on a labelled set; every field is plain data, ready for JSON."""

    accuracy: float
    loss: float
    correct: int
    incorrect: int
    confusion: list[list[int]]  # rows: true digit, columns: predicted digit
    precision: list[float]
    recall: list[float]
    mistakes: list[Mistake]

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Evaluation:
        """Inverse of :meth:`to_dict`."""
        mistakes = [Mistake(**item) for item in data.get("mistakes", [])]
        return cls(**{**data, "mistakes": mistakes})

    def mistakes_for(self, label: int, predicted: int) -> list[Mistake]:
        """The test images of digit ``label`` taken for ``predicted`` (one confusion cell)."""
        return [m for m in self.mistakes if m.label == label and m.predicted == predicted]


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """10×10 counts: rows are true digits, columns predicted digits."""
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(matrix, (labels.astype(int), predicted.astype(int)), 1)
    return matrix


def evaluate_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Metrics from already computed probabilities (N, 10) and true labels (N,)."""
    if len(probabilities) != len(labels) or len(labels) == 0:
        raise ValueError("need the same, non-zero number of probabilities and labels")
    labels = labels.astype(int)
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted)
    true_probs = np.clip(probabilities[np.arange(len(labels)), labels], 1e-7, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(np.diag(matrix) / matrix.sum(axis=0))
        recall = np.nan_to_num(np.diag(matrix) / matrix.sum(axis=1))
    wrong = np.flatnonzero(predicted != labels)
    mistakes = [
        Mistake(int(i), int(labels[i]), int(predicted[i]), [round(float(p), 4) for p in probabilities[i]])
        for i in wrong
    ]
    correct = int(len(labels) - len(wrong))
    return Evaluation(
        accuracy=correct / len(labels),
        loss=float(-np.log(true_probs).mean()),
        correct=correct,
        incorrect=int(len(wrong)),
        confusion=matrix.tolist(),
        precision=[round(float(v), 5) for v in precision],
        recall=[round(float(v), 5) for v in recall],
        mistakes=mistakes,
    )


def evaluate(predictor, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Run ``predictor`` (a :class:`~digitlab.inference.Predictor`) over a labelled set."""
    return evaluate_probabilities(predictor.probabilities(images), labels)
