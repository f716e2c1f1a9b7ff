"""Comparing models from their run cards."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.card import RunCard
from digitlab.report import (
    comparison_row,
    inference_ms,
    learning_curve_rows,
    most_confused,
    per_class_rows,
    top_guesses,
)

CONFUSION = np.diag([10] * 10)
CONFUSION[4, 9] = 3
CONFUSION[7, 1] = 1
CARD = {
    "architecture": "mlp", "parameters": 1234, "model_bytes": 3 * 2**20, "train_seconds": 12.5,
    "epochs_run": 2,
    "history": [
        {"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85},
        {"epoch": 2, "loss": 0.3, "accuracy": 0.9, "val_loss": float("nan")},
    ],
    "test": {"accuracy": 0.96, "loss": 0.12, "correct": 100, "incorrect": 4,
             "confusion": CONFUSION.tolist(), "precision": [0.9] * 10, "recall": [0.8] * 10},
}


def test_comparison_row():
    row = comparison_row("m", RunCard.from_dict(CARD), 1.23456)
    assert row["test accuracy"] == 0.96 and row["file MB"] == 3.0 and row["inference ms"] == 1.23
    assert row["correct"] == 100 and row["incorrect"] == 4 and row["parameters"] == 1234
    assert comparison_row("bare", RunCard())["test accuracy"] is None


def test_learning_curve_rows_skip_missing_and_nan():
    rows = learning_curve_rows({"m": CARD["history"]})
    assert len(rows) == 4 + 2
    assert {"model": "m", "epoch": 1, "metric": "accuracy", "split": "validation", "value": 0.85} in rows
    assert not [r for r in rows if r["epoch"] == 2 and r["split"] == "validation"]


def test_per_class_rows():
    rows = per_class_rows(CARD["test"])
    assert rows[4] == {"digit": "4", "precision": 0.9, "recall": 0.8, "test images": 13, "missed": 3}


def test_most_confused():
    assert most_confused(CONFUSION) == (4, 9)
    assert most_confused(np.diag([5] * 10)) is None


def test_top_guesses():
    assert top_guesses([0.1, 0.6, 0.3], 2) == [(1, pytest.approx(0.6)), (2, pytest.approx(0.3))]


def test_inference_ms_times_single_predictions():
    calls = []

    class FakePredictor:
        def predict_one(self, image):
            calls.append(image.shape)
            return 0, np.zeros(10)

    assert inference_ms(FakePredictor(), repeats=5) >= 0.0
    assert calls == [(28, 28)] * 6  # one warm-up, then the timed calls
