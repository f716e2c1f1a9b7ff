"""Model definitions, by name.

Every model takes a batch of (28, 28) float32 images in [0, 1] (white ink on black, as the
preprocessing produces) and returns ten softmax probabilities. Ours (``mlp``, ``lenet``, ``cnn``)
sit next to the tutorials' exact recipes so a user can reproduce the baselines and compare.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

from digitlab.config import INPUT_SHAPE, NUM_CLASSES, SPECS, ArchitectureSpec, Recipe, get_spec


@dataclass(frozen=True)
class Architecture:
    """A named architecture (its :class:`~digitlab.config.ArchitectureSpec`) with its builder."""

    spec: ArchitectureSpec
    build_fn: Callable[..., keras.Model]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def recipe(self) -> Recipe:
        return self.spec.recipe

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return self.spec.hyperparameters

    def build(self, **overrides: Any) -> keras.Model:
        """Build a fresh, uncompiled model; ``overrides`` replace named hyperparameters."""
        unknown = set(overrides) - set(self.spec.hyperparameters)
        if unknown:
            raise ValueError(f"{self.spec.name} has no hyperparameter(s) {sorted(unknown)}")
        return self.build_fn(**{**self.spec.hyperparameters, **overrides})


# Every layer is named here, not by Keras's process-wide counters: a model built after others in
# the same process (a server that has trained before) would otherwise have a "conv2d_19", and the
# Look inside page's layer names and widget keys would change from one training to the next.

def _inputs() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    return inputs, layers.Reshape((*INPUT_SHAPE, 1), name="channel")(inputs)


def build_mlp(units: int = 512, depth: int = 2, dropout: float = 0.2, name: str = "mlp") -> keras.Model:
    """The Keras tutorial's multilayer perceptron: ``depth`` ReLU layers of ``units`` with dropout."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    for number in range(1, depth + 1):
        x = layers.Dense(units, activation="relu", name=f"dense{number}")(x)
        x = layers.Dropout(dropout, name=f"dropout{number}")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def build_lenet(
    conv1_filters: int = 20,
    conv2_filters: int = 50,
    dense_units: int = 500,
    dropout: float = 0.0,
    name: str = "lenet",
) -> keras.Model:
    """LeNet-5 style: conv 20@5×5 → pool → conv 50@5×5 → pool → dense 500 → softmax."""
    inputs, x = _inputs()
    x = layers.Conv2D(conv1_filters, 5, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(conv2_filters, 5, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def _conv_bn(x: keras.KerasTensor, name: str, filters: int, kernel: int, strides: int = 1) -> keras.KerasTensor:
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_cnn(
    width: int = 32, dense_units: int = 128, dropout: float = 0.25, head_dropout: float = 0.4,
    name: str = "cnn",
) -> keras.Model:
    """Our small CNN: a strided 5×5 stem, conv-BN blocks, a dense head over the 7×7 map.

    The strided stem keeps full-resolution activations out of the network, which is what
    costs time on a CPU; flattening (not global pooling) keeps where each stroke is, which
    tells a 6 from a 9. Batch norm and dropout let it train hard on augmented digits.
    """
    inputs, x = _inputs()
    x = _conv_bn(x, "stem", width, 5, strides=2)
    x = _conv_bn(x, "block1", width * 2, 3)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = _conv_bn(x, "block2", width * 4, 3)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(head_dropout, name="head_dropout1")(x)
    x = layers.Dense(dense_units, use_bias=False, name="dense")(x)
    x = layers.BatchNormalization(name="dense_bn")(x)
    x = layers.ReLU(name="dense_relu")(x)
    x = layers.Dropout(head_dropout, name="head_dropout2")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def build_keras_example_cnn(dropout: float = 0.5, name: str = "keras_cnn") -> keras.Model:
    """keras-io ``mnist_convnet.py``: conv 32 → pool → conv 64 → pool → dropout → softmax."""
    inputs, x = _inputs()
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def build_small_cnn(name: str = "small_cnn") -> keras.Model:
    """The classic blog tutorial's "simple CNN": conv 32@5×5 → pool → dropout → dense 128."""
    inputs, x = _inputs()
    x = layers.Conv2D(32, 5, activation="relu", name="conv")(x)
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "mlp": build_mlp,
    "lenet": build_lenet,
    "cnn": build_cnn,
    "cnn_fast": build_cnn,
    "tutorial_mlp": build_mlp,
    "tutorial_lenet": build_lenet,
    "tutorial_small_cnn": build_small_cnn,
    "keras_cnn": build_keras_example_cnn,
}
ARCHITECTURES: dict[str, Architecture] = {name: Architecture(spec, BUILDERS[name]) for name, spec in SPECS.items()}


def get_architecture(name: str) -> Architecture:
    """Look an architecture up by name, with the list of valid names in the error."""
    return ARCHITECTURES[get_spec(name).name]


def build_model(name: str, **hyperparameters: Any) -> keras.Model:
    """Build architecture ``name`` with its defaults, overridden by ``hyperparameters``."""
    return get_architecture(name).build(**hyperparameters)
