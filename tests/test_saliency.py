"""Saliency maps: shape and range, known answers on hand-made linear models, bad arguments."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from digitlab.inference import Predictor
from digitlab.saliency import METHODS, Explainer, normalise, occlusion, saliency_map

LEFT = (slice(None), slice(0, 14))
RIGHT = (slice(None), slice(14, 28))


def linear_model(weights_for_three: np.ndarray, scale: float = 1.0) -> keras.Model:
    """Flatten → Dense(10, softmax) whose only non-zero weights feed class 3."""
    inputs = keras.Input((28, 28))
    dense = keras.layers.Dense(10, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    kernel = np.zeros((784, 10), np.float32)
    kernel[:, 3] = scale * weights_for_three.reshape(-1)
    dense.set_weights([kernel, np.zeros(10, np.float32)])
    return model


@pytest.fixture(scope="module")
def left_half_model() -> keras.Model:
    """Class 3's score is the ink in the left half of the picture."""
    weights = np.zeros((28, 28), np.float32)
    weights[LEFT] = 1.0
    return linear_model(weights)


@pytest.mark.parametrize("method", METHODS)
def test_map_is_28x28_in_unit_range(left_half_model, method):
    image = np.random.default_rng(0).random((28, 28), dtype=np.float32)
    heat = saliency_map(left_half_model, image, 3, method)
    assert heat.shape == (28, 28) and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0)


def test_gradient_times_input_finds_exactly_the_weighted_ink(left_half_model):
    image = np.zeros((28, 28), np.float32)
    image[5:23, 4:24] = 1.0  # a block of ink across both halves
    heat = saliency_map(left_half_model, image, 3, "gradient")
    expected = np.zeros((28, 28), np.float32)
    expected[5:23, 4:14] = 1.0  # only the ink on the left counts for class 3
    np.testing.assert_allclose(heat, expected, atol=1e-6)


def test_occlusion_blames_the_left_half(left_half_model):
    image = np.zeros((28, 28), np.float32)
    image[5:23, 4:24] = 1.0
    heat = saliency_map(left_half_model, image, 3, "occlusion")
    assert heat[LEFT].mean() > 5 * heat[RIGHT].mean()
    assert heat[:, 18:].max() == 0.0  # patches there never touch a weighted pixel


def test_a_saturated_softmax_still_gives_a_map():
    """At ~100 % confidence the softmax gradient vanishes; the logit's does not."""
    weights = np.zeros((28, 28), np.float32)
    weights[LEFT] = 1.0
    model = linear_model(weights, scale=1000.0)
    image = np.ones((28, 28), np.float32)
    assert Predictor(model).predict_one(image)[1][3] == pytest.approx(1.0)
    heat = saliency_map(model, image, 3)
    assert heat[LEFT].min() == pytest.approx(1.0) and heat[RIGHT].max() == 0.0


def test_explainer_accepts_a_predictor_and_matches_the_function(left_half_model):
    image = np.random.default_rng(1).random((28, 28), dtype=np.float32)
    explainer = Explainer(Predictor(left_half_model))
    for method in METHODS:
        np.testing.assert_allclose(explainer.saliency(image, 3, method),
                                   saliency_map(left_half_model, image, 3, method), atol=1e-5)
    uint8 = (image * 255).astype(np.uint8)
    assert explainer.saliency(uint8, 3).shape == (28, 28)


def test_a_blank_picture_gives_an_empty_map(left_half_model):
    heat = saliency_map(left_half_model, np.zeros((28, 28), np.float32), 3)
    assert not heat.any()


@pytest.mark.parametrize(("image", "digit", "method"), [
    (np.zeros((28, 28)), 3, "lime"),
    (np.zeros((28, 28)), 10, "gradient"),
    (np.zeros((28, 28)), -1, "gradient"),
    (np.zeros((32, 32)), 3, "gradient"),
    (np.zeros((2, 28, 28)), 3, "gradient"),
])
def test_bad_arguments_are_refused(left_half_model, image, digit, method):
    with pytest.raises(ValueError):
        saliency_map(left_half_model, image, digit, method)


def test_occlusion_with_a_constant_score_is_zero():
    constant = lambda batch: np.full((len(batch), 10), 0.1, np.float32)  # noqa: E731
    assert not occlusion(constant, np.ones((28, 28), np.float32), 0).any()


def test_normalise_keeps_positive_evidence_only():
    raw = np.array([[-2.0, 0.0], [1.0, 4.0]], np.float32)
    np.testing.assert_allclose(normalise(raw), [[0.0, 0.0], [0.25, 1.0]])
    assert not normalise(-np.ones((2, 2))).any()
    assert not normalise(np.full((2, 2), np.nan)).any()


def test_why_not_another_digit_splits_the_ink_by_the_digit_it_favours():
    """Class 3 reads ink on the left, class 5 ink on the right: the contrast tells them apart."""
    inputs = keras.Input((28, 28))
    dense = keras.layers.Dense(10, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    kernel = np.zeros((28, 28, 10), np.float32)
    kernel[LEFT + (3,)] = 1.0
    kernel[RIGHT + (5,)] = 1.0
    dense.set_weights([kernel.reshape(784, 10), np.zeros(10, np.float32)])
    image = np.zeros((28, 28), np.float32)
    image[5:23, 4:24] = 1.0
    for_three, for_five = Explainer(model).contrast(image, 3, 5)
    assert for_three[LEFT].sum() > 0 and for_three[RIGHT].max() == 0.0
    assert for_five[RIGHT].sum() > 0 and for_five[LEFT].max() == 0.0
    with pytest.raises(ValueError, match="different digit"):
        Explainer(model).contrast(image, 3, 3)
