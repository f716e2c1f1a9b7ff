"""Comparing models from their run cards: one table, overlaid learning curves, per-class scores.

Everything here reads the cards written by :mod:`digitlab.runs` (the test evaluation is already in
them); only the inference time is measured, by :func:`inference_ms`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from digitlab.card import RunCard
from digitlab.data import NUM_CLASSES

CURVE_METRICS = {"accuracy": "accuracy", "val_accuracy": "accuracy", "loss": "loss", "val_loss": "loss"}
TIMING_REPEATS = 30


def comparison_row(name: str, card: RunCard, inference_ms: float | None = None) -> dict[str, Any]:
    """One model's line in the comparison table (what the card does not know is ``None``)."""
    test = card.test
    return {
        "model": name,
        "architecture": card.architecture,
        "test accuracy": None if test is None else test.accuracy,
        "test loss": None if test is None else test.loss,
        "parameters": card.parameters,
        "file MB": round(card.model_bytes / 2**20, 2) if card.model_bytes else None,
        "training s": card.train_seconds,
        "epochs": card.epochs_run,
        "inference ms": None if inference_ms is None else round(inference_ms, 2),
        "correct": None if test is None else test.correct,
        "incorrect": None if test is None else test.incorrect,
    }


def learning_curve_rows(histories: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    """Long-form history of every model: {model, epoch, metric, split, value}.

    ``metric`` is "accuracy" or "loss"; ``split`` is "train" or "validation".
    """
    rows = []
    for name, history in histories.items():
        for entry in history:
            for key, metric in CURVE_METRICS.items():
                value = entry.get(key)
                if value is None or not np.isfinite(value):
                    continue
                split = "validation" if key.startswith("val_") else "train"
                rows.append({"model": name, "epoch": int(entry["epoch"]), "metric": metric,
                             "split": split, "value": float(value)})
    return rows


def per_class_rows(test: dict[str, Any]) -> list[dict[str, Any]]:
    """Precision, recall and sample count for each digit, from a card's ``test`` section."""
    confusion = np.asarray(test["confusion"])
    return [
        {"digit": str(digit), "precision": float(test["precision"][digit]),
         "recall": float(test["recall"][digit]), "test images": int(confusion[digit].sum()),
         "missed": int(confusion[digit].sum() - confusion[digit, digit])}
        for digit in range(NUM_CLASSES)
    ]


def most_confused(confusion: list[list[int]] | np.ndarray) -> tuple[int, int] | None:
    """The (true, predicted) pair with the most mistakes, or ``None`` when there are none."""
    matrix = np.array(confusion, dtype=np.int64)
    np.fill_diagonal(matrix, 0)
    if matrix.max(initial=0) == 0:
        return None
    true, predicted = np.unravel_index(int(matrix.argmax()), matrix.shape)
    return int(true), int(predicted)


def top_guesses(probabilities: list[float] | np.ndarray, count: int = 3) -> list[tuple[int, float]]:
    """The ``count`` most probable digits, best first, as (digit, probability)."""
    values = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-values, kind="stable")[:count]
    return [(int(digit), float(values[digit])) for digit in order]


def inference_ms(predictor, repeats: int = TIMING_REPEATS) -> float:
    """Median wall time of one single-image prediction, in milliseconds (after a warm-up)."""
    image = np.zeros((28, 28), np.float32)
    predictor.predict_one(image)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict_one(image)
        timings.append(time.perf_counter() - start)
    return float(np.median(timings) * 1000.0)
