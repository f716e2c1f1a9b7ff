"""Heavy pens: training digits redrawn with a marker's stroke, kept in MNIST's frame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf

from digitlab.augment import AugmentSettings, augment_examples
from digitlab.config import TrainConfig
from digitlab.heavy_pen import HeavyPenSettings, heavy_pen_batch
from digitlab.widening import stroke_width


def thin_seven(size: int = 28) -> np.ndarray:
    """A 7 in MNIST's frame with a 2 px pen: a bar and a stem, 20 px tall."""
    image = np.zeros((size, size), np.float32)
    image[4:6, 8:20] = 1.0
    for row in range(4, 24):
        column = int(round(19 - (row - 4) * 0.4))
        image[row, column:column + 2] = 1.0
    return image


def stroke_ratio(image: np.ndarray) -> float:
    """The stroke's width over the digit's longer side."""
    ink = image > 0.5
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return stroke_width(ink) / max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)


def test_a_heavy_pen_thickens_the_stroke_against_the_digit_and_keeps_mnists_frame():
    digits = tf.constant(np.stack([thin_seven()] * 6))
    out = heavy_pen_batch(digits, tf.random.Generator.from_seed(1), HeavyPenSettings(rate=1.0, grow=(2, 2))).numpy()
    rows, cols = np.indices((28, 28))
    for image in out:
        assert stroke_ratio(image) > 2 * stroke_ratio(thin_seven())
        ink = image >= 0.3
        height = np.flatnonzero(ink.any(axis=1))
        assert height[-1] - height[0] + 1 == pytest.approx(20, abs=1)
        mass = image.sum()
        assert abs((image * rows).sum() / mass - 14.0) < 1.0 and abs((image * cols).sum() / mass - 14.0) < 1.0


def test_heavier_grows_give_heavier_strokes():
    digits = tf.constant(np.stack([thin_seven()]))
    ratios = [stroke_ratio(heavy_pen_batch(digits, tf.random.Generator.from_seed(2),
                                           HeavyPenSettings(rate=1.0, grow=(grow, grow))).numpy()[0])
              for grow in (1, 2, 3)]
    assert ratios[0] < ratios[1] < ratios[2]


def test_heavy_pens_come_at_their_rate_and_leave_the_rest_alone():
    digits = tf.constant(np.stack([thin_seven()] * 2000))
    out = heavy_pen_batch(digits, tf.random.Generator.from_seed(3), HeavyPenSettings(rate=0.1)).numpy()
    changed = np.abs(out - thin_seven()).max(axis=(1, 2)) > 1e-6
    assert changed.mean() == pytest.approx(0.1, abs=0.02)


def test_heavy_pens_are_off_by_default_reproducible_and_recorded_in_the_recipe():
    assert TrainConfig("lenet").resolved().augmentation["heavy_pen"] is None
    digits = tf.constant(np.stack([thin_seven()] * 16))
    first = heavy_pen_batch(digits, tf.random.Generator.from_seed(4), HeavyPenSettings(rate=0.5)).numpy()
    again = heavy_pen_batch(digits, tf.random.Generator.from_seed(4), HeavyPenSettings(rate=0.5)).numpy()
    assert np.array_equal(first, again)
    recipe = AugmentSettings(heavy_pen=HeavyPenSettings(rate=0.2)).to_dict()
    assert recipe["heavy_pen"] == {"rate": 0.2, "grow": (1, 3), "styled_only": False}
    assert AugmentSettings.from_dict({**recipe, "heavy_pen": {"rate": 0.2, "grow": [1, 3]}}).heavy_pen == \
        HeavyPenSettings(rate=0.2)
    older = {key: value for key, value in recipe.items() if key != "heavy_pen"}
    assert AugmentSettings.from_dict(older).heavy_pen is None  # a card written before heavy pens


def test_a_batch_with_heavy_pens_keeps_its_labels_and_range():
    images = tf.constant(np.stack([thin_seven()] * 32))
    labels = tf.fill([32], 7)
    out, new_labels = augment_examples(images, labels, tf.random.Generator.from_seed(5),
                                       AugmentSettings(styles=None, coarse=None, heavy_pen=HeavyPenSettings(rate=1.0)))
    assert out.shape == (32, 28, 28) and set(new_labels.numpy()) == {7}
    assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0


@pytest.mark.parametrize("settings", [{"rate": 1.5}, {"rate": -0.1}, {"grow": (0, 2)}, {"grow": (3, 2)},
                                      {"grow": (1, 9)}])
def test_impossible_heavy_pen_settings_are_refused_in_one_line(settings):
    with pytest.raises(ValueError, match="heavy pen"):
        HeavyPenSettings(**settings)


def test_a_heavy_pen_for_the_styled_only_leaves_the_other_digits_alone():
    digits = tf.constant(np.stack([thin_seven()] * 8))
    styled = tf.constant([True, False] * 4)
    out = heavy_pen_batch(digits, tf.random.Generator.from_seed(6), HeavyPenSettings(rate=1.0, styled_only=True),
                          styled).numpy()
    assert all(stroke_ratio(image) > 1.5 * stroke_ratio(thin_seven()) for image in out[0::2])
    assert np.array_equal(out[1::2], np.stack([thin_seven()] * 4))
    assert HeavyPenSettings.from_dict({"rate": 0.1, "grow": [1, 3]}).styled_only is False  # an older card


def test_without_styled_digits_a_styled_only_heavy_pen_widens_nothing():
    images = tf.constant(np.stack([thin_seven()] * 16))
    still = AugmentSettings(rotation_degrees=0.0, scale_range=(1.0, 1.0), shear_degrees=0.0, translate_pixels=0.0,
                            stroke_probability=0.0, styles=None, coarse=None)
    ratios = {}
    for styled_only in (False, True):
        settings = replace(still, heavy_pen=HeavyPenSettings(rate=1.0, styled_only=styled_only))
        out, _ = augment_examples(images, tf.fill([16], 7), tf.random.Generator.from_seed(7), settings)
        ratios[styled_only] = [stroke_ratio(image) for image in out.numpy()]
    assert min(ratios[False]) > 1.5 * stroke_ratio(thin_seven())
    assert max(ratios[True]) < 1.2 * stroke_ratio(thin_seven())
