"""Honest answers on the one reading path: calibrated probabilities, a measured "not sure", "not a digit"."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from digitlab.calibration import Calibration
from digitlab.cli import main
from digitlab.novelty import FILLED_SHAPE, NoveltyDetector
from digitlab.reading import judge, read_input, vote


class Fixed:
    """A stand-in model that always gives the same probabilities."""

    def __init__(self, probabilities):
        self.probabilities = np.asarray(probabilities, np.float32)

    def predict_one(self, image):
        return int(np.argmax(self.probabilities)), self.probabilities


def calibration(temperature: float, not_sure_below: float) -> Calibration:
    return Calibration(temperature, 100, 0.1, 0.09, not_sure_below)


def solidity_only_detector() -> NoveltyDetector:
    """Flags filled shapes only: the likeness test is switched off with an infinite threshold."""
    return NoveltyDetector(np.zeros((10, 784), np.float32), np.zeros((10, 1, 784), np.float32),
                           np.ones((10, 1), np.float32), np.ones(10, np.float32), np.inf, 0.3)


def stroke() -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    image[4:24, 13:15] = 1.0
    return image


def blob() -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    image[6:22, 8:20] = 1.0
    return image


PEAKED = [0.9] + [0.1 / 9] * 9


def test_calibrated_reading_is_softer_and_uses_the_measured_threshold():
    raw = judge("m", PEAKED)
    soft = judge("m", PEAKED, calibration=calibration(2.0, 0.5))
    assert raw.sure and raw.confidence == pytest.approx(0.9)
    assert soft.digit == 0 and soft.confidence < 0.9
    assert not soft.sure and soft.reason == "low confidence"  # ~0.48 is at or under the measured 0.5
    assert judge("m", PEAKED, calibration=calibration(1.0, 0.0)).sure


def test_a_filled_shape_gets_no_digit_from_any_model():
    predictors = {"a": Fixed(PEAKED), "b": Fixed(PEAKED[::-1])}
    readings = read_input(blob(), predictors, novelty=solidity_only_detector())
    assert all(r.digit is None and r.reason == FILLED_SHAPE and not r.sure for r in readings.values())
    assert readings["b"].top_digit == 9
    assert vote(readings).camps == []  # nobody named a digit


def test_a_stroke_is_read_as_before():
    readings = read_input(stroke(), {"a": Fixed(PEAKED)}, novelty=solidity_only_detector())
    assert readings["a"].digit == 0 and readings["a"].reason is None


@pytest.fixture(scope="module")
def blank_store(tmp_path_factory):
    """A store with an untrained MLP and the solidity-only detector."""
    import keras

    from digitlab.architectures import build_model
    from digitlab.novelty import default_path
    from digitlab.store import ModelStore

    keras.utils.set_random_seed(0)
    store = ModelStore(tmp_path_factory.mktemp("honest"))
    store.save("plain", build_model("mlp"), {"architecture": "mlp"})
    solidity_only_detector().save(default_path(store.root))
    return store


def png(image: np.ndarray, path) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.rint(image * 255).astype(np.uint8)).resize((200, 200)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return str(path)


def test_predict_json_gives_a_shape_a_null_digit_with_the_reason(blank_store, tmp_path, capsys):
    from digitlab.nondigits import generate

    drawn_blob = generate(4, seed=0)[3]  # a filled blob the preprocessing takes (not a dot)
    assert drawn_blob.kind == "blob"
    shape = png(drawn_blob.picture / 255.0, tmp_path / "blob.png")
    line = png(stroke(), tmp_path / "one.png")
    assert main(["predict", shape, line, "--model", "plain", "--models", str(blank_store.root), "--json"]) == 0
    shape_result, line_result = json.loads(capsys.readouterr().out)
    assert shape_result["digit"] is None and shape_result["reason"] == FILLED_SHAPE
    assert 0 <= shape_result["closest_digit"] <= 9
    assert isinstance(line_result["digit"], int)
