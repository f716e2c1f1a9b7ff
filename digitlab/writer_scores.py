"""Every model scored on one writer's labelled digits: overall, per digit, and the misread ones.

The page's "Your digits" section and ``digitlab evaluate NAME --on writer:NAME`` both come here.
Models are run on the stored 28×28 inputs, so a model trained after the digits were labelled is
scored on exactly what the others saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from digitlab.digits_db import NUM_CLASSES, DigitsDb, StoredDigit, validate_writer
from digitlab.evaluation import Evaluation, evaluate


@dataclass(frozen=True)
class WriterDigits:
    """One writer's labelled digits as a test set."""

    writer: str
    digits: tuple[StoredDigit, ...]
    images: np.ndarray  # (N, 28, 28) float32
    labels: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Misread:
    """A digit at least one model got wrong, and what each model said."""

    digit: StoredDigit
    said: dict[str, int]


@dataclass(frozen=True)
class WriterScores:
    """How each model does on one writer's digits."""

    writer: str
    evaluations: dict[str, Evaluation]
    per_digit: dict[str, list[float | None]]  # model → accuracy on each digit 0–9 (None: no digits)
    counts: list[int]  # the writer's digits per label
    misread: list[Misread]


def load_writer_digits(db: DigitsDb, writer: str) -> WriterDigits:
    """``writer``'s digits as a test set; ``ValueError`` when there are none."""
    writer = validate_writer(writer)
    stored = tuple(db.digits(writer))
    if not stored:
        raise ValueError(f"the writer {writer!r} has no labelled digits yet: label some on the Draw page "
                         "or import a file with `digitlab digits import`")
    images = np.stack([digit.model_input for digit in stored]).astype(np.float32)
    labels = np.array([digit.label for digit in stored], dtype=np.int64)
    return WriterDigits(writer, stored, images, labels)


def score_writer(predictors: Mapping[str, object], digits: WriterDigits) -> WriterScores:
    """Run every predictor (a :class:`~digitlab.inference.Predictor`) over the writer's digits."""
    evaluations = {name: evaluate(predictor, digits.images, digits.labels) for name, predictor in predictors.items()}
    counts = np.bincount(digits.labels, minlength=NUM_CLASSES)
    per_digit = {name: [_digit_accuracy(evaluation, label, counts[label]) for label in range(NUM_CLASSES)]
                 for name, evaluation in evaluations.items()}
    wrong: dict[int, dict[str, int]] = {}
    for name, evaluation in evaluations.items():
        for mistake in evaluation.mistakes:
            wrong.setdefault(mistake.index, {})[name] = mistake.predicted
    misread = []
    for index in sorted(wrong):
        said = {name: wrong[index].get(name, int(digits.labels[index])) for name in evaluations}
        misread.append(Misread(digits.digits[index], said))
    return WriterScores(digits.writer, evaluations, per_digit, counts.tolist(), misread)


def _digit_accuracy(evaluation: Evaluation, label: int, count: int) -> float | None:
    return None if count == 0 else evaluation.confusion[label][label] / count
