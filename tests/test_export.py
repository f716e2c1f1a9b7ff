"""``digitlab export NAME --format keras|tflite``: the file is written whole and answers like the model."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from handwriting_support import store_tiny_model, uci_inputs

import digitlab.export as export
from digitlab.cli import main
from digitlab.export import ExportError, export_model, tflite_probabilities
from digitlab.inference import Predictor
from digitlab.store import ModelStore


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    return store_tiny_model(tmp_path_factory.mktemp("export-models"))


def test_keras_export_is_the_stored_model(store_root, tmp_path, capsys):
    out = tmp_path / "tiny.keras"
    assert main(["export", "tiny", "--format", "keras", "--output", str(out), "--models", str(store_root)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    images, _ = uci_inputs(50)
    copy = keras.saving.load_model(out, compile=False, safe_mode=True)
    expected = Predictor(ModelStore(store_root).load("tiny")).probabilities(images)
    np.testing.assert_allclose(Predictor(copy).probabilities(images), expected, atol=1e-6)


def test_tflite_export_is_checked_against_the_keras_answers(store_root, tmp_path, capsys):
    out = tmp_path / "tiny.tflite"
    assert main(["export", "tiny", "--format", "tflite", "--output", str(out), "--models", str(store_root),
                 "--data", str(tmp_path / "no-mnist.npz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checked_on"] == "UCI digits" and report["checked"] == 1797 == report["agreeing"]
    assert report["max_difference"] < 1e-4
    images, _ = uci_inputs(40, start=500)
    expected = Predictor(ModelStore(store_root).load("tiny")).probabilities(images)
    np.testing.assert_allclose(tflite_probabilities(out.read_bytes(), images), expected, atol=1e-4)


def test_a_tflite_file_that_answers_differently_is_not_written(store_root, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "tflite_probabilities", lambda content, images: np.roll(
        np.eye(10, dtype=np.float32)[np.zeros(len(images), int)], 1, axis=1))
    out = tmp_path / "bad.tflite"
    images, _ = uci_inputs(30)
    with pytest.raises(ExportError, match="differently from the Keras model; nothing was written"):
        export_model(ModelStore(store_root), "tiny", "tflite", out, images)
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_a_wrong_suffix_or_a_missing_model_is_one_line(store_root, tmp_path, capsys):
    assert main(["export", "tiny", "--format", "tflite", "--output", str(tmp_path / "x.keras"),
                 "--models", str(store_root)]) == 1
    assert "must end in .tflite" in capsys.readouterr().err
    assert main(["export", "nope", "--output", str(tmp_path / "x.keras"), "--models", str(store_root)]) == 1
    err = capsys.readouterr().err
    assert "no model named 'nope'" in err and err.count("\n") == 1
