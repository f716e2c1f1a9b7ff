"""Inside a network: every layer's output for one drawing, its shape and parameters, the first filters.

A learner reads a network best as a stack of named steps, each turning one array into the next:
a convolution's feature maps, the smaller maps after pooling, the dense layers' activations and,
last, the ten softmax probabilities. :class:`LayerInspector` traces one graph that returns all of
them at once (a few milliseconds per drawing) and labels each with what the layer is.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from digitlab.inference import INPUT_SHAPE, as_batch

# What each Keras layer type does, in a learner's words.
ROLES = {
    "Reshape": "adds a channel axis: the 28×28 picture becomes a 28×28×1 stack",
    "Conv2D": "convolution: each filter slides over its input and lights up where its pattern is",
    "BatchNormalization": "batch normalisation: rescales each channel to the range training saw",
    "ReLU": "ReLU: negative values become 0",
    "MaxPooling2D": "max pooling: keeps the strongest value of each 2×2 square, halving the size",
    "Dropout": "dropout: switched off when answering, so its output equals its input",
    "Flatten": "flatten: lays every value out in one long row for the dense layers",
    "Dense": "dense: every unit weighs every value of the layer before",
}


@dataclass(frozen=True)
class LayerOutput:
    """One layer of a model and what it made of one drawing."""

    name: str
    kind: str  # the Keras class name, e.g. "Conv2D"
    role: str  # what the layer does, for a person
    shape: tuple[int, ...]  # the output's shape without the batch axis, e.g. (14, 14, 32)
    parameters: int
    activation: str | None  # e.g. "relu", "softmax" for layers with one
    values: np.ndarray  # the output for the drawing, float32, of ``shape``

    @property
    def is_map(self) -> bool:
        """The output is a stack of 2-D feature maps (height, width, channels)."""
        return len(self.shape) == 3

    def feature_maps(self) -> np.ndarray:
        """(channels, height, width) maps of a map layer, each scaled to [0, 1] on its own."""
        if not self.is_map:
            raise ValueError(f"{self.name} outputs {self.shape}, not feature maps")
        maps = np.moveaxis(self.values, -1, 0)
        low = maps.min(axis=(1, 2), keepdims=True)
        span = maps.max(axis=(1, 2), keepdims=True) - low
        return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1), 0).astype(np.float32)


class LayerInspector:
    """Every layer's output of one model for one drawing, from one traced graph.

    Safe to share between threads: it only reads the model.
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        outputs = keras.Model(model.inputs, [layer.output for layer in self.layers])
        self._outputs = tf.function(lambda x: outputs(x, training=False),
                                    input_signature=[tf.TensorSpec([None, *INPUT_SHAPE], tf.float32)],
                                    autograph=False)
        self._outputs(tf.zeros([1, *INPUT_SHAPE]))  # trace now, not on the first drawing

    def outputs(self, image: np.ndarray) -> list[LayerOutput]:
        """Each layer in order, with its output for ``image`` (28×28, float in [0, 1] or uint8)."""
        batch = as_batch(image)
        if len(batch) != 1:
            raise ValueError("the layer view shows one drawing; got a batch")
        values = self._outputs(tf.constant(batch))
        return [_describe(layer, value.numpy()[0]) for layer, value in zip(self.layers, values, strict=True)]

    def summary(self) -> list[tuple[str, str, tuple[int, ...], int]]:
        """(name, kind, output shape, parameters) per layer: the architecture at a glance."""
        return [(layer.name, type(layer).__name__, tuple(layer.output.shape[1:]), int(layer.count_params()))
                for layer in self.layers]


def _describe(layer: keras.layers.Layer, values: np.ndarray) -> LayerOutput:
    kind = type(layer).__name__
    activation = getattr(layer, "activation", None)
    activation_name = getattr(activation, "__name__", None) if activation is not None else None
    return LayerOutput(layer.name, kind, ROLES.get(kind, kind), tuple(values.shape), int(layer.count_params()),
                       None if activation_name == "linear" else activation_name, values.astype(np.float32))


def first_filters(model: keras.Model) -> tuple[str, np.ndarray]:
    """The first learned layer's weights as pictures: (its name, (count, height, width) in [0, 1]).

    A convolution gives its kernels (e.g. 32 of 5×5); a dense first layer (the MLP) gives each
    unit's 784 weights as a 28×28 template of the ink it looks for. Each picture is scaled on its
    own so 0.5 is a zero weight, brighter positive, darker negative.

    Raises:
        ValueError: the model has no convolution or dense layer.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel = np.asarray(layer.kernel.numpy())  # (h, w, in, out)
            pictures = np.moveaxis(kernel.mean(axis=2), -1, 0)
            return layer.name, _centred_scale(pictures)
        if isinstance(layer, keras.layers.Dense):
            kernel = np.asarray(layer.kernel.numpy())  # (784, units) after the flattened input
            if kernel.shape[0] != INPUT_SHAPE[0] * INPUT_SHAPE[1]:
                raise ValueError(f"{layer.name} does not read the 28×28 picture directly")
            return layer.name, _centred_scale(kernel.T.reshape(-1, *INPUT_SHAPE))
    raise ValueError("the model has no convolution or dense layer to show")


def _centred_scale(pictures: np.ndarray) -> np.ndarray:
    """Each picture to [0, 1] with zero at 0.5, by its own largest absolute weight."""
    peak = np.abs(pictures).max(axis=(1, 2), keepdims=True)
    return (0.5 + 0.5 * pictures / np.where(peak > 0, peak, 1)).astype(np.float32)
