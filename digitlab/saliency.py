"""Why did the model say that? Saliency maps over the 28×28 input.

Two classic, cheap answers, both giving a (28, 28) map in [0, 1] where 1 marks the pixels that
mattered most for the chosen digit:

- **gradient × input**: how much the digit's score would rise if each pixel's ink grew, times the
  ink that is there. One backward pass. The score is the logit (before softmax) when the model ends
  in a softmax ``Dense`` layer, because the softmax saturates near 100 % and its gradient vanishes.
- **occlusion**: blank out a small patch at a time and measure how far the digit's score falls.
  One forward pass over a batch of occluded copies; no gradients. The same score is used (the
  logit), for the same reason: a probability stuck at 100 % does not move when a patch is hidden.

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


class Explainer:
    """Saliency maps for one model, fast enough to redraw on every stroke.

    The score and its gradient are traced into TensorFlow graphs when it is made (a few hundred
    milliseconds), after which a map costs a few milliseconds instead of the 50–150 ms of an
    eager ``GradientTape``.
    Safe to share between threads: it only reads the model.
    """

    def __init__(self, model_or_predictor: keras.Model | Predictor):
        is_predictor = isinstance(model_or_predictor, Predictor)
        self.model = model_or_predictor.model if is_predictor else model_or_predictor
        score = _score_function(self.model)
        batch_spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE], tf.float32)
        self._scores = tf.function(score, input_signature=[batch_spec], autograph=False)

        @tf.function(input_signature=[tf.TensorSpec([1, IMAGE_SIZE, IMAGE_SIZE], tf.float32),
                                      tf.TensorSpec([], tf.int32)], autograph=False)
        def gradient(x, digit):
            with tf.GradientTape() as tape:
                tape.watch(x)
                target = tf.gather(score(x)[0], digit)
            return tape.gradient(target, x)

        @tf.function(input_signature=[tf.TensorSpec([1, IMAGE_SIZE, IMAGE_SIZE], tf.float32),
                                      tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)], autograph=False)
        def contrast_gradient(x, digit, other):
            with tf.GradientTape() as tape:
                tape.watch(x)
                scores = score(x)[0]
                margin = tf.gather(scores, digit) - tf.gather(scores, other)
            return tape.gradient(margin, x)

        self._gradient = gradient
        self._contrast_gradient = contrast_gradient
        blank = np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), np.float32)
        self.scores(blank)  # trace the graphs now, not on the first drawing
        self.gradient_times_input(blank[0], 0)
        self.contrast(blank[0], 0, 1)

    def saliency(self, image: np.ndarray, digit: int, method: str = "gradient") -> np.ndarray:
        """Like :func:`saliency_map`, for this explainer's model."""
        if method not in METHODS:
            raise ValueError(f"unknown saliency method {method!r}; choose one of {', '.join(METHODS)}")
        if not 0 <= int(digit) < NUM_CLASSES:
            raise ValueError(f"digit must be 0–9, got {digit}")
        batch = as_batch(image)
        if len(batch) != 1:
            raise ValueError("a saliency map explains one image; got a batch")
        if method == "occlusion":
            return normalise(occlusion(self.scores, batch[0], int(digit)))
        return normalise(self.gradient_times_input(batch[0], int(digit)))

    def contrast(self, image: np.ndarray, digit: int, other: int) -> tuple[np.ndarray, np.ndarray]:
        """"Why ``digit`` and not ``other``?": two (28, 28) maps in [0, 1].

        The first marks the ink that raises ``digit``'s score over ``other``'s (the evidence for
        the answer against the alternative), the second the ink that would favour ``other``:
        gradient × input of the score difference, split by sign.

        Raises:
            ValueError: a digit outside 0–9, the same digit twice, or an image that is not 28×28.
        """
        digit, other = int(digit), int(other)
        if not (0 <= digit < NUM_CLASSES and 0 <= other < NUM_CLASSES):
            raise ValueError(f"digits must be 0–9, got {digit} and {other}")
        if digit == other:
            raise ValueError("pick a different digit to contrast with")
        batch = as_batch(image)
        if len(batch) != 1:
            raise ValueError("a saliency map explains one image; got a batch")
        gradient = self._contrast_gradient(tf.constant(batch), tf.constant(digit, tf.int32),
                                           tf.constant(other, tf.int32))
        raw = np.zeros(batch[0].shape, np.float32) if gradient is None else gradient.numpy()[0] * batch[0]
        return normalise(raw), normalise(-raw)

    def scores(self, images: np.ndarray) -> np.ndarray:
        """The class scores (logits, or log-probabilities), shape (N, 10), for a float batch."""
        return self._scores(tf.constant(images, tf.float32)).numpy()

    def gradient_times_input(self, image: np.ndarray, digit: int) -> np.ndarray:
        """d(score of ``digit``)/d(pixel) × pixel, signed, shape (28, 28)."""
        gradient = self._gradient(tf.constant(image[np.newaxis]), tf.constant(digit, tf.int32))
        if gradient is None:  # the output does not depend on the input at all
            return np.zeros(image.shape, np.float32)
        return (gradient.numpy()[0] * image).astype(np.float32)


def saliency_map(
    model_or_predictor: keras.Model | Predictor,
    image: np.ndarray,
    digit: int,
    method: str = "gradient",
) -> np.ndarray:
    """A heat map of the pixels that made the model choose ``digit`` for ``image``.

    For many maps of one model, keep an :class:`Explainer` instead: it traces the gradient once.

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
    return Explainer(model_or_predictor).saliency(image, digit, method)


def occlusion(scores, image: np.ndarray, digit: int,
              patch: int = OCCLUSION_PATCH, stride: int = OCCLUSION_STRIDE) -> np.ndarray:
    """Mean drop in ``digit``'s score when a ``patch``-sized square covering each pixel is blanked.

    Args:
        scores: a function from a (N, 28, 28) float batch to (N, 10) class scores (logits or
            probabilities).
        image: (28, 28) float32 in [0, 1].
        digit: the class to explain.
        patch, stride: the blanked square's side and step, in pixels.

    Returns:
        (28, 28) float32, signed: positive where hiding the ink lowers the digit's score.
    """
    starts = range(0, IMAGE_SIZE - patch + 1, stride)
    corners = [(row, col) for row in starts for col in starts]
    copies = np.repeat(image[np.newaxis], len(corners) + 1, axis=0)
    for number, (row, col) in enumerate(corners, start=1):
        copies[number, row : row + patch, col : col + patch] = 0.0
    targets = np.asarray(scores(copies))[:, digit]
    drops = targets[0] - targets[1:]
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
