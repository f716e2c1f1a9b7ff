"""Architectures by name, and the augmentation that makes drawn digits work."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from digitlab.architectures import ARCHITECTURES, build_model, get_architecture
from digitlab.augment import augment_batch


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_maps_digits_to_ten_probabilities(name):
    model = build_model(name)
    probabilities = model(np.zeros((3, 28, 28), np.float32), training=False).numpy()
    assert model.input_shape == (None, 28, 28)
    assert probabilities.shape == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_layer_names_do_not_depend_on_what_the_process_built_before(name):
    """The Look inside page keys its widgets by layer name: a model trained in a server that has
    trained others must show the same names as one trained first."""
    first = [layer.name for layer in build_model(name).layers]
    for other in ("lenet", "cnn"):
        build_model(other)
    assert [layer.name for layer in build_model(name).layers] == first
    assert len(set(first)) == len(first)


def test_lenet_has_the_classic_layer_sizes():
    model = build_model("lenet")
    convs = [layer for layer in model.layers if "conv" in layer.name]
    assert [c.filters for c in convs] == [20, 50] and all(c.kernel_size == (5, 5) for c in convs)
    assert any(getattr(layer, "units", None) == 500 for layer in model.layers)


def test_tutorial_mlp_is_the_512_512_network():
    dense = [layer.units for layer in build_model("tutorial_mlp").layers if hasattr(layer, "units")]
    assert dense == [512, 512, 10]


def test_hyperparameters_override_defaults_and_typos_are_caught():
    assert build_model("mlp", units=64).count_params() < build_model("mlp").count_params()
    with pytest.raises(ValueError, match="no hyperparameter"):
        build_model("mlp", unitz=64)
    with pytest.raises(ValueError, match="choose one of"):
        get_architecture("resnet")


def _digits(mnist, count=16):
    return tf.constant(mnist.x_train[:count].astype(np.float32) / 255.0)


def test_augmentation_keeps_shape_range_and_most_of_the_ink(mnist):
    images = _digits(mnist)
    augmented = augment_batch(images, tf.random.Generator.from_seed(0)).numpy()
    assert augmented.shape == images.shape and augmented.min() >= 0 and augmented.max() <= 1
    ink_ratio = augmented.sum(axis=(1, 2)) / images.numpy().sum(axis=(1, 2))
    assert np.all((ink_ratio > 0.4) & (ink_ratio < 2.5))  # stroke width and scale change it
    assert not np.allclose(augmented, images.numpy(), atol=0.05)


def test_augmentation_is_deterministic_for_a_seed(mnist):
    images = _digits(mnist)
    first = augment_batch(images, tf.random.Generator.from_seed(7)).numpy()
    second = augment_batch(images, tf.random.Generator.from_seed(7)).numpy()
    other = augment_batch(images, tf.random.Generator.from_seed(8)).numpy()
    assert np.array_equal(first, second) and not np.array_equal(first, other)


def test_augmented_digits_stay_roughly_centred(mnist):
    augmented = augment_batch(_digits(mnist, 64), tf.random.Generator.from_seed(1)).numpy()
    rows, cols = np.mgrid[:28, :28]
    mass = augmented.sum(axis=(1, 2))
    centre_row = (augmented * rows).sum(axis=(1, 2)) / mass
    centre_col = (augmented * cols).sum(axis=(1, 2)) / mass
    assert np.all(np.abs(centre_row - 13.5) < 5) and np.all(np.abs(centre_col - 13.5) < 5)
