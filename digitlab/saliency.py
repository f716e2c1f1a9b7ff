"""Why did the model say that? Saliency maps over the 28×28 input.

Two classic, cheap answers, both giving a (28, 28) map in [0, 1] where 1 marks the pixels that
mattered most for the chosen digit:

- **gradient × input**: how much the digit's score would rise if each pixel's ink grew, times the
  ink that is there. One backward pass. The score is the logit (before softmax) when the model ends
  in a softmax ``Dense`` layer, because the softmax saturates near 100 % and its gradient vanishes.
- **occlusion**: blank out a small patch at a time and measure how far the digit's probability
  falls. One forward pass over a batch of occluded copies; no gradients, any model works.

Both show evidence *for* the digit: negative contributions are dropped, then the map is scaled so
its peak is 1.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from digitlab.inference import Predictor, as_batch

METHODS = ("gradient", "occlusion")
IMAGE_SIZE = 28
NUM_CLASSES = 10
# Occlusion patch: 4×4 px is about one stroke width of an MNIST digit; stride 2 gives 13×13 = 169
# occluded copies, one small batch.
OCCLUSION_PATCH = 4
OCCLUSION_STRIDE = 2


def saliency_map(
    model_or_predictor: keras.Model | Predictor,
    image: np.ndarray,
    digit: int,
    method: str = "gradient",
) -> np.ndarray:
    """A heat map of the pixels that made the model choose ``digit`` for ``image``.

    Args:
        model_or_predictor: a Keras model mapping (N, 28, 28) to (N, 10) probabilities, or a
            :class:`~digitlab.inference.Predictor` wrapping one.
        image: the (28, 28) model input, float in [0, 1] (uint8 is rescaled).
        digit: the class to explain, 0–9 (usually the prediction).
        method: ``"gradient"`` (gradient × input) or ``"occlusion"``.

    Returns:
        (28, 28) float32 in [0, 1]; all zeros when nothing in the picture supports ``digit``.

    Raises:
        ValueError: an unknown method, a digit outside 0–9 or an image that is not 28×28.
    """
    if method not in METHODS:
        raise ValueError(f"unknown saliency method {method!r}; choose one of {', '.join(METHODS)}")
    if not 0 <= int(digit) < NUM_CLASSES:
        raise ValueError(f"digit must be 0–9, got {digit}")
    batch = as_batch(image)
    if len(batch) != 1:
        raise ValueError("saliency_map explains one image; got a batch")
    if method == "occlusion":
        predictor = model_or_predictor if isinstance(model_or_predictor, Predictor) else None
        probabilities = predictor.probabilities if predictor else _probabilities_of(model_or_predictor)
        raw = occlusion(probabilities, batch[0], int(digit))
    else:
        model = model_or_predictor.model if isinstance(model_or_predictor, Predictor) else model_or_predictor
        raw = gradient_times_input(model, batch[0], int(digit))
    return normalise(raw)


def gradient_times_input(model: keras.Model, image: np.ndarray, digit: int) -> np.ndarray:
    """d(score of ``digit``)/d(pixel) × pixel, signed, shape (28, 28)."""
    score = _score_function(model)
    x = tf.constant(image[np.newaxis], dtype=tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        target = score(x)[0, digit]
    gradient = tape.gradient(target, x)
    if gradient is None:  # the output does not depend on the input at all
        return np.zeros(image.shape, np.float32)
    return (gradient.numpy()[0] * image).astype(np.float32)


def occlusion(probabilities, image: np.ndarray, digit: int,
              patch: int = OCCLUSION_PATCH, stride: int = OCCLUSION_STRIDE) -> np.ndarray:
    """Mean drop in P(``digit``) when a ``patch``-sized square covering each pixel is blanked.

    Args:
        probabilities: a function from a (N, 28, 28) float batch to (N, 10) probabilities.
        image: (28, 28) float32 in [0, 1].
        digit: the class to explain.
        patch, stride: the blanked square's side and step, in pixels.

    Returns:
        (28, 28) float32, signed: positive where hiding the ink lowers the digit's probability.
    """
    starts = range(0, IMAGE_SIZE - patch + 1, stride)
    corners = [(row, col) for row in starts for col in starts]
    copies = np.repeat(image[np.newaxis], len(corners) + 1, axis=0)
    for number, (row, col) in enumerate(corners, start=1):
        copies[number, row : row + patch, col : col + patch] = 0.0
    scores = np.asarray(probabilities(copies))[:, digit]
    drops = scores[0] - scores[1:]
    total = np.zeros(image.shape, np.float32)
    covered = np.zeros(image.shape, np.float32)
    for (row, col), drop in zip(corners, drops, strict=True):
        total[row : row + patch, col : col + patch] += drop
        covered[row : row + patch, col : col + patch] += 1.0
    return total / np.maximum(covered, 1.0)


def normalise(raw: np.ndarray) -> np.ndarray:
    """Keep the positive evidence and scale its peak to 1 (all zeros stay zeros)."""
    positive = np.maximum(np.nan_to_num(np.asarray(raw, np.float32)), 0.0)
    peak = float(positive.max(initial=0.0))
    return positive / np.float32(peak) if peak > 0 else positive


def _score_function(model: keras.Model):
    """The pre-softmax logits when the last layer is a softmax ``Dense``, else log-probabilities."""
    last = model.layers[-1] if model.layers else None
    if isinstance(last, keras.layers.Dense) and last.activation is keras.activations.softmax:
        features = keras.Model(model.inputs, last.input)
        return lambda x: tf.matmul(features(x, training=False), last.kernel) + last.bias
    return lambda x: tf.math.log(model(x, training=False) + 1e-12)


def _probabilities_of(model: keras.Model):
    return lambda batch: model(tf.constant(batch), training=False).numpy()
