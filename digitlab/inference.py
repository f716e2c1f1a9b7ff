"""Fast predictions: one drawing or a batch, through a direct, compiled model call.

``model.predict`` spends 50–150 ms per call on this kind of machine building its data pipeline;
a direct call on a traced function costs a few milliseconds, which is what makes the drawing
page feel instant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from digitlab.calibration import apply_temperature

INPUT_SHAPE = (28, 28)


def as_batch(images: np.ndarray) -> np.ndarray:
    """One (28, 28) image or a (N, 28, 28) batch as float32 in [0, 1]; uint8 is rescaled."""
    array = np.asarray(images)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = array.astype(np.float32, copy=False)
    if array.shape == INPUT_SHAPE:
        array = array[np.newaxis]
    if array.ndim != 3 or array.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"expected a 28×28 image or a batch of them, got shape {array.shape}")
    return array


def feature_width(model: tf.keras.Model) -> int:
    """How many values a model's penultimate layer (its softmax layer's input) holds."""
    return int(model.layers[-1].input.shape[-1])


class Predictor:
    """A model wrapped for inference: traced once, warmed up, thread-safe to call.

    One traced call gives both the softmax and the penultimate layer (the softmax layer's input).
    The last layer of every architecture here is a plain weighted vote over that layer, so it is
    where a model's idea of "what digit this looks like" lives: the nearest neighbours and the
    per-model "not a digit" test measure distances in it, and the page reads a drawing's answer
    and its features in the same pass.
    """

    def __init__(self, model: tf.keras.Model, batch_size: int = 1000):
        import keras  # the functional sub-model needs Keras's own API, not tf.keras's alias

        self.model = model
        self.batch_size = batch_size
        both = keras.Model(model.inputs, [model.layers[-1].input, model.outputs[0]])
        self._call = tf.function(lambda x: both(x, training=False),
                                 input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)], autograph=False)
        self._call(tf.zeros([1, *INPUT_SHAPE]))  # trace and warm up now, not on the first drawing
        self.feature_dimensions = feature_width(model)

    def _run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = as_batch(images)
        chunks = [self._call(tf.constant(batch[start:start + self.batch_size]))
                  for start in range(0, len(batch), self.batch_size)]
        if not chunks:
            return np.zeros((0, self.feature_dimensions), np.float32), np.zeros((0, 10), np.float32)
        return (np.concatenate([features.numpy() for features, _ in chunks]),
                np.concatenate([probabilities.numpy() for _, probabilities in chunks]))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Softmax probabilities, shape (N, 10), for one image or a batch."""
        return self._run(images)[1]

    def features(self, images: np.ndarray) -> np.ndarray:
        """Penultimate-layer vectors, (N, feature_dimensions), for one image or a batch."""
        return self._run(images)[0]

    def predict_one(self, image: np.ndarray) -> tuple[int, np.ndarray]:
        """(digit, probabilities) for one 28×28 image."""
        probabilities = self.probabilities(image)[0]
        return int(np.argmax(probabilities)), probabilities

    def read_one(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (10,), penultimate features) of one 28×28 image, from one pass."""
        features, probabilities = self._run(image)
        return probabilities[0], features[0]


ENSEMBLE_SEPARATOR = "+"  # ``cnn+lenet+mlp`` names the three read as one
TOO_FEW_TO_AVERAGE = "an average needs at least two different models, e.g. cnn+lenet+mlp"


def model_names(text: str) -> list[str]:
    """The models a command-line name stands for: ``cnn`` → one, ``cnn+lenet+mlp`` → three.

    Raises:
        ValueError: a ``+`` name with fewer than two different models in it.
    """
    names = list(dict.fromkeys(name.strip() for name in text.split(ENSEMBLE_SEPARATOR)))
    if ENSEMBLE_SEPARATOR in text and (len(names) < 2 or not all(names)):
        raise ValueError(TOO_FEW_TO_AVERAGE)
    return names


class Averaged:
    """Several models read as one: each one's probabilities at its calibration temperature,
    averaged. The shipped three, averaged, read the hard styles best and are never far from the best
    model on any test set (docs/handwriting.md, "An ensemble"); Compare mode gives this answer when
    they disagree."""

    def __init__(self, members: Mapping[str, Predictor], temperatures: Mapping[str, float]):
        if len(members) < 2:
            raise ValueError(TOO_FEW_TO_AVERAGE)
        self.members = dict(members)
        self.temperatures = {name: float(temperatures.get(name, 1.0)) for name in members}

    @classmethod
    def from_store(cls, store, names: Sequence[str]) -> Averaged:
        """The named models of ``store``, each with its card's temperature (1 without one).

        Raises:
            StoreError: a name is missing or its model cannot be loaded.
            ValueError: fewer than two distinct names.
        """
        from digitlab.card import RunCard

        unique = list(dict.fromkeys(names))
        if len(unique) < 2:
            raise ValueError(TOO_FEW_TO_AVERAGE)
        calibrations = {name: RunCard.from_dict(store.read_card(name)).calibration for name in unique}
        temperatures = {name: calibration.temperature for name, calibration in calibrations.items() if calibration}
        return cls({name: Predictor(store.load(name)) for name in unique}, temperatures)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """The averaged calibrated probabilities, shape (N, 10), for one image or a batch."""
        return np.mean([apply_temperature(predictor.probabilities(images), self.temperatures[name])
                        for name, predictor in self.members.items()], axis=0)
