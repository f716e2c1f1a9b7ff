"""The robustness probe: each sweep changes the input as named, and its neutral step is the plain answer."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from digitlab.architectures import build_model
from digitlab.inference import Predictor
from digitlab.probe import erased, pen, probe, shifted, sweeps


@pytest.fixture()
def seven() -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    image[6:9, 8:20] = 1.0  # the bar
    image[9:22, 16:19] = 1.0  # the stem
    return image


@pytest.fixture(scope="module")
def predictors() -> dict[str, Predictor]:
    keras.utils.set_random_seed(0)
    return {"mlp": Predictor(build_model("mlp")), "lenet": Predictor(build_model("lenet"))}


def test_the_neutral_step_of_every_sweep_is_the_plain_prediction(seven, predictors):
    plain = {name: predictor.probabilities(seven)[0] for name, predictor in predictors.items()}
    for result, sweep in zip(probe(seven, predictors), sweeps(seven), strict=True):
        at = result.values.index(result.neutral)
        np.testing.assert_array_equal(sweep.images[at], seven)
        for name in predictors:
            digit = result.digit[name]
            assert digit == int(plain[name].argmax())
            assert result.probability[name][at] == pytest.approx(float(plain[name][digit]), abs=1e-5)
            assert result.answer[name][at] == digit


def test_shift_moves_the_ink_and_loses_what_leaves_the_field(seven):
    moved = shifted(seven, 3, -2)
    assert moved.sum() == seven.sum()
    np.testing.assert_array_equal(moved[4:7, 11:23], 1.0)  # the bar, 3 right and 2 up
    assert shifted(seven, 12, 0).sum() < seven.sum()


def test_scale_rotation_pen_and_erasing_change_the_ink_as_named(seven):
    by_name = {sweep.name: sweep for sweep in sweeps(seven)}
    scale = by_name["scale"]
    assert scale.images[scale.values.index(0.5)].sum() == pytest.approx(seven.sum() / 4, rel=0.2)
    rotation = by_name["rotation"]
    assert not np.allclose(rotation.images[0], seven)
    assert rotation.images[0].sum() == pytest.approx(seven.sum(), rel=0.15)
    assert pen(seven, 1).sum() > seven.sum() > pen(seven, -1).sum()
    half = erased(seven, 0.5)
    assert half[:14].sum() == 0 and half[14:].sum() == seven[14:].sum()


def test_a_chosen_digit_is_followed_by_every_model(seven, predictors):
    results = probe(seven, predictors, digit=4)
    assert all(result.digit == {"mlp": 4, "lenet": 4} for result in results)
    with pytest.raises(ValueError, match="0–9"):
        probe(seven, predictors, digit=12)
    with pytest.raises(ValueError, match="28×28"):
        probe(np.zeros((20, 20)), predictors)


def test_probe_command_prints_every_sweep(tmp_path, capsys, seven):
    from PIL import Image

    from digitlab.cli import main
    from digitlab.store import ModelStore

    keras.utils.set_random_seed(0)
    store = ModelStore(tmp_path / "models")
    store.save("plain", build_model("mlp"), {"architecture": "mlp"})
    picture = tmp_path / "seven.png"
    Image.fromarray(np.rint(seven * 255).astype(np.uint8)).resize((200, 200)).save(picture)
    assert main(["probe", str(picture), "--models", str(store.root), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [sweep["name"] for sweep in payload["sweeps"]][:2] == ["shift right", "shift down"]
    assert len(payload["sweeps"][0]["probability"]["plain"]) == 13
    assert main(["probe", str(tmp_path / "missing.png"), "--models", str(store.root)]) == 1
    assert "error" in capsys.readouterr().err
