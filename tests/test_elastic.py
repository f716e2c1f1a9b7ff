"""Elastic distortions: smooth random warps of training digits, reproducible and recorded."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from digitlab.augment import AugmentSettings, augment_examples
from digitlab.config import TrainConfig
from digitlab.elastic import ElasticSettings, displacement_fields, elastic_batch, warp


def bar(column: int = 10) -> np.ndarray:
    """A vertical stroke two pixels wide in a 28×28 frame."""
    image = np.zeros((28, 28), np.float32)
    image[4:24, column:column + 2] = 1.0
    return image


def test_no_displacement_leaves_a_digit_as_it_is():
    digits = np.stack([bar(), bar(15)])
    assert np.array_equal(warp(tf.constant(digits), tf.zeros([2, 28, 28, 2])).numpy(), digits)


def test_a_displacement_moves_the_ink_by_that_many_pixels_and_brings_in_background():
    fields = np.zeros((1, 28, 28, 2), np.float32)
    fields[..., 1] = -3.0  # each pixel takes its ink from 3 columns to its left
    moved = warp(tf.constant(bar(0)[np.newaxis]), tf.constant(fields)).numpy()[0]
    assert np.array_equal(moved, np.pad(bar(0), [[0, 0], [3, 0]])[:, :28])


def test_fields_are_smooth_and_never_move_a_pixel_further_than_the_limit():
    settings = ElasticSettings(rate=1.0, pixels=2.5, grid=4)
    fields = displacement_fields(64, settings, tf.random.Generator.from_seed(1)).numpy()
    assert np.abs(fields).max() <= 2.5 + 1e-6 and np.abs(fields).max() > 1.0
    steps = max(np.abs(np.diff(fields, axis=axis)).max() for axis in (1, 2))
    assert steps < 1.25  # neighbours move nearly together; unsmoothed, they would differ by up to 5 px


def test_warps_come_at_their_rate_are_reproducible_and_stay_in_range():
    digits = tf.constant(np.stack([bar()] * 1000))
    settings = ElasticSettings(rate=0.5)
    first = elastic_batch(digits, tf.random.Generator.from_seed(2), settings).numpy()
    again = elastic_batch(digits, tf.random.Generator.from_seed(2), settings).numpy()
    assert np.array_equal(first, again)
    changed = np.abs(first - bar()).max(axis=(1, 2)) > 1e-6
    assert changed.mean() == pytest.approx(0.5, abs=0.05)
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.abs(first.sum(axis=(1, 2)) - bar().sum()).max() < 0.35 * bar().sum()  # warped, not erased


def test_the_run_card_records_the_warp_asked_for_and_an_older_recipe_reads_as_never_warped():
    recipe = TrainConfig("cnn").resolved().augmentation
    assert recipe["elastic"] is None  # off unless asked for
    asked = {**recipe, "elastic": ElasticSettings(rate=0.3).to_dict()}
    config = TrainConfig("cnn", augmentation=asked).resolved()
    assert AugmentSettings.from_dict(config.augmentation).elastic == ElasticSettings(rate=0.3)
    older = {key: value for key, value in recipe.items() if key != "elastic"}
    assert AugmentSettings.from_dict(older).elastic is None


def test_a_recipe_that_asks_for_the_warp_gets_it_in_its_training_batches():
    still = {"rotation_degrees": 0.0, "scale_range": (1.0, 1.0), "shear_degrees": 0.0, "translate_pixels": 0.0,
             "stroke_probability": 0.0, "styles": None, "coarse": None}
    digits, labels = tf.constant(np.stack([bar()] * 8)), tf.zeros([8], tf.int32)
    plain, _ = augment_examples(digits, labels, tf.random.Generator.from_seed(5), AugmentSettings(**still))
    warped, _ = augment_examples(digits, labels, tf.random.Generator.from_seed(5),
                                 AugmentSettings(**still, elastic=ElasticSettings(rate=1.0)))
    def bent(images: tf.Tensor) -> np.ndarray:  # ink outside the bar's two columns
        outside = np.delete(images.numpy(), [10, 11], axis=2)
        return outside.max(axis=(1, 2)) > 0.05

    assert not bent(plain).any()  # only stretched up or down: the bar stays in its columns
    assert bent(warped).sum() >= 6
