"""Handwriting that is not MNIST: the UCI digits load, look like drawings, and are read well."""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

from digitlab.cli import main
from digitlab.evaluation import evaluate
from digitlab.inference import Predictor
from digitlab.other_handwriting import MissingDatasetError, load_uci_digits, squashed_inputs, to_picture
from digitlab.store import SHIPPED_MODELS, ModelStore

# Measured with the shipped models (98.22 / 97.50 / 95.72 %, docs/handwriting.md), less a margin.
UCI_TARGETS = {"cnn": 0.98, "lenet": 0.97, "mlp": 0.955}


@pytest.fixture(scope="module")
def uci():
    return load_uci_digits()


def test_a_block_becomes_a_smooth_picture_with_bright_ink():
    block = np.zeros((8, 8))
    block[1:7, 3:5] = 16  # a "1"
    picture = to_picture(block)
    assert picture.shape == (64, 64) and picture.dtype == np.uint8
    assert picture[32, 32] > 200 and picture[32, 2] < 20  # ink on the stroke, none beside it
    assert len(np.unique(picture)) > 10  # smoothed, not blocks


def test_the_uci_digits_load_as_model_inputs(uci):
    assert uci.images.shape == (1797, 28, 28) and uci.images.dtype == np.float32
    assert np.bincount(uci.labels).min() >= 170  # every digit, about evenly
    assert uci.images.max() == pytest.approx(1.0) and uci.images.min() == 0.0
    # Through the MNIST recipe: the ink's centre of mass sits at the middle of the field.
    rows, cols = np.indices((28, 28))
    weights = uci.images[0] / uci.images[0].sum()
    assert abs((rows * weights).sum() - 14) < 1.5 and abs((cols * weights).sum() - 14) < 1.5


def test_a_missing_scikit_learn_is_named(monkeypatch):
    real_import = builtins.__import__

    def without_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_sklearn)
    load_uci_digits.cache_clear()  # a set made earlier in this process would be handed back
    with pytest.raises(MissingDatasetError, match="pip install scikit-learn"):
        load_uci_digits()


def test_the_uci_digits_are_made_once_and_shared_read_only():
    first, second = load_uci_digits(), load_uci_digits()
    assert first is second
    with pytest.raises(ValueError, match="read-only"):
        first.images[0, 0, 0] = 1.0


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_models_read_other_writers_and_the_preprocessing_helps(uci, name):
    predictor = Predictor(ModelStore().load(name))
    result = evaluate(predictor, uci.images, uci.labels)
    squashed = evaluate(predictor, squashed_inputs(uci), uci.labels)
    assert result.accuracy >= UCI_TARGETS[name]
    assert result.accuracy > squashed.accuracy + 0.03


def test_the_cli_evaluates_on_the_uci_digits(capsys):
    assert main(["evaluate", "mlp", "--on", "uci", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "uci" and result["correct"] + result["incorrect"] == 1797
    assert result["accuracy"] >= UCI_TARGETS["mlp"] and result["squashed_accuracy"] < result["accuracy"]
    assert main(["evaluate", "mlp", "--on", "uci"]) == 0
    text = capsys.readouterr().out
    assert "1,797 digits by other writers" in text and "without the preprocessing" in text
