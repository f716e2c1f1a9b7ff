"""Coarse scans: training digits reduced to a few blocks and smoothed back, as a low-resolution
picture reaches the model."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from digitlab.augment import AugmentSettings, augment_examples
from digitlab.coarse import CoarseSettings, coarsen_batch
from digitlab.config import TrainConfig


def ring(size: int = 28) -> np.ndarray:
    """A thin 0 in MNIST's frame: a ring 20 px tall."""
    rows, cols = np.indices((size, size))
    radius = np.hypot((rows - 13.5) / 10, (cols - 13.5) / 7)
    return np.clip(1.0 - np.abs(radius - 0.85) * 8, 0.0, 1.0).astype(np.float32)


def test_a_coarse_digit_loses_its_fine_detail_but_stays_in_mnists_frame():
    digits = tf.constant(np.stack([ring()] * 8))
    out = coarsen_batch(digits, tf.random.Generator.from_seed(1), CoarseSettings(rate=1.0, blocks=(6.0, 6.0))).numpy()
    rows, cols = np.indices((28, 28))
    for image in out:
        mass = image.sum()
        assert abs((image * rows).sum() / mass - 14.0) < 1.0 and abs((image * cols).sum() / mass - 14.0) < 1.0
        assert image.max() == pytest.approx(1.0)
        assert not np.allclose(image, ring(), atol=0.2)


def test_coarse_scans_come_at_their_rate_and_leave_the_rest_alone():
    digits = tf.constant(np.stack([ring()] * 2000))
    out = coarsen_batch(digits, tf.random.Generator.from_seed(2), CoarseSettings(rate=0.12)).numpy()
    changed = np.abs(out - ring()).max(axis=(1, 2)) > 1e-6
    assert changed.mean() == pytest.approx(0.12, abs=0.02)


def test_coarse_scans_are_reproducible_by_seed_and_recorded_in_the_recipe():
    digits = tf.constant(np.stack([ring()] * 16))
    first = coarsen_batch(digits, tf.random.Generator.from_seed(3), CoarseSettings(rate=0.5)).numpy()
    again = coarsen_batch(digits, tf.random.Generator.from_seed(3), CoarseSettings(rate=0.5)).numpy()
    assert np.array_equal(first, again)
    recipe = TrainConfig("lenet").resolved().augmentation
    assert recipe["coarse"] == CoarseSettings().to_dict()
    assert AugmentSettings.from_dict(recipe).coarse == CoarseSettings()


def test_a_batch_with_coarse_scans_keeps_its_labels():
    images = tf.constant(np.stack([ring()] * 32))
    labels = tf.zeros([32], tf.int32)
    out, new_labels = augment_examples(images, labels, tf.random.Generator.from_seed(4),
                                       AugmentSettings(styles=None, coarse=CoarseSettings(rate=1.0)))
    assert out.shape == (32, 28, 28) and set(new_labels.numpy()) == {0}
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0
