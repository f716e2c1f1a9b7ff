"""Metrics a user reads on the Evaluate page and in `digitlab evaluate`."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from digitlab.evaluation import Evaluation, confusion_matrix, evaluate, evaluate_probabilities
from digitlab.inference import Predictor, as_batch


def _one_hot(predicted, confidence=0.9):
    probabilities = np.full((len(predicted), 10), (1 - confidence) / 9, np.float32)
    probabilities[np.arange(len(predicted)), predicted] = confidence
    return probabilities


def test_metrics_on_a_known_set_of_answers():
    labels = np.array([0, 0, 1, 1, 4, 4, 4, 9])
    predicted = np.array([0, 0, 1, 7, 4, 9, 9, 9])
    result = evaluate_probabilities(_one_hot(predicted), labels)
    assert (result.correct, result.incorrect) == (5, 3) and result.accuracy == pytest.approx(5 / 8)
    assert result.loss == pytest.approx(-(5 * np.log(0.9) + 3 * np.log(0.1 / 9)) / 8, rel=1e-5)
    assert result.confusion[4][9] == 2 and result.confusion[1][7] == 1
    assert result.precision[9] == pytest.approx(1 / 3, abs=1e-4) and result.recall[4] == pytest.approx(1 / 3, abs=1e-4)
    assert [m.index for m in result.mistakes_for(4, 9)] == [5, 6]
    assert result.mistakes_for(4, 9)[0].probabilities[9] == pytest.approx(0.9)


def test_confusion_matrix_rows_sum_to_class_counts(rng):
    labels = rng.integers(0, 10, 500)
    predicted = rng.integers(0, 10, 500)
    matrix = confusion_matrix(labels, predicted)
    assert matrix.sum(axis=1).tolist() == np.bincount(labels, minlength=10).tolist()


def test_evaluation_round_trips_through_json_data():
    result = evaluate_probabilities(_one_hot(np.array([1, 2, 3])), np.array([1, 2, 2]))
    assert Evaluation.from_dict(result.to_dict()) == result


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError):
        evaluate_probabilities(np.zeros((3, 10)), np.zeros(2))


def _model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inputs)))


def test_predictor_matches_a_direct_model_call_for_one_image_and_batches(small_data):
    model = _model()
    predictor = Predictor(model, batch_size=64)
    images = small_data.x_test[:150]
    expected = model(images.astype(np.float32) / 255.0, training=False).numpy()
    assert np.allclose(predictor.probabilities(images), expected, atol=1e-5)
    digit, probabilities = predictor.predict_one(images[0].astype(np.float32) / 255.0)
    assert digit == int(expected[0].argmax()) and np.allclose(probabilities, expected[0], atol=1e-5)


def test_evaluate_uses_the_predictor(small_data):
    result = evaluate(Predictor(_model()), small_data.x_test[:200], small_data.y_test[:200])
    assert result.correct + result.incorrect == 200 and 0 <= result.accuracy <= 1


@pytest.mark.parametrize("shape", [(27, 28), (2, 28, 27), (28, 28, 1, 1), ()])
def test_wrong_input_shapes_get_a_clear_message(shape):
    with pytest.raises(ValueError, match="28×28"):
        as_batch(np.zeros(shape, np.float32))
