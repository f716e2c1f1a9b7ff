"""Synthetic training styles: flagged 1s, 7s and 4s from the same stems, warped digits; by seed."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from digitlab.augment import AugmentSettings, augment_examples
from digitlab.preprocess import preprocess
from digitlab.styles import ELIGIBLE, KINDS, StyleSettings, choose_kinds, style_batch
from digitlab.training import TrainConfig


def drawn_digit(label: int, lean: float) -> np.ndarray:
    """A plain 1, 7, 9 or 0 drawn on the pad and preprocessed: an MNIST-style input without MNIST."""
    pad = Image.new("L", (280, 280), 0)
    pen = ImageDraw.Draw(pad)
    if label == 1:
        pen.line([(140 + lean, 40), (140 - lean, 240)], fill=255, width=18)
    elif label == 7:
        pen.line([(80, 50), (200, 50), (110 + lean, 240)], fill=255, width=18, joint="curve")
    elif label == 9:
        pen.ellipse([80, 40, 190, 140], outline=255, width=18)
        pen.line([(181, 90), (170 - lean, 240)], fill=255, width=18)
    else:
        pen.ellipse([80, 40, 200 + lean, 240], outline=255, width=18)
    return preprocess(np.asarray(pad)).image


def batch(labels: list[int]) -> tuple[tf.Tensor, tf.Tensor]:
    leans = np.linspace(-20, 20, len(labels))
    images = np.stack([drawn_digit(label, lean) for label, lean in zip(labels, leans, strict=True)])
    return tf.constant(images), tf.constant(labels, tf.int32)


# Chances that style nearly every 1 and 7 (and 60 % of other digits), for looking at many styles.
HEAVY = (0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.0)


def styled(labels: list[int], seed: int, rates: tuple[float, ...] = HEAVY) -> tuple[np.ndarray, np.ndarray]:
    images, tensor_labels = batch(labels)
    out, new_labels = style_batch(images, tensor_labels, tf.random.Generator.from_seed(seed),
                                  StyleSettings(rates=rates))
    return out.numpy(), new_labels.numpy()


def test_styles_are_reproducible_by_seed():
    labels = [1, 7, 0] * 8
    first, second, other = styled(labels, 3), styled(labels, 3), styled(labels, 4)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.allclose(first[0], other[0])


def test_each_style_comes_at_its_rate_and_only_to_the_digits_it_fits():
    labels = np.arange(20000) % 10
    rates = StyleSettings().rates
    kinds = choose_kinds(tf.constant(labels, tf.int32), tf.random.Generator.from_seed(0), rates).numpy()
    allowed = np.array(ELIGIBLE)
    chosen = kinds >= 0
    assert allowed[labels[chosen], kinds[chosen]].all()
    for kind, rate in enumerate(rates):
        fits = allowed[labels, kind]
        assert (kinds[fits] == kind).mean() == pytest.approx(rate, abs=0.02), KINDS[kind]
    # A 1's stem becomes a flagged 1 as often as a 7: no bias to either answer.
    assert rates[KINDS.index("flagged_one")] == rates[KINDS.index("seven_from_stem")]


def test_impossible_rates_are_refused():
    labels = tf.constant([1, 7], tf.int32)
    with pytest.raises(ValueError, match="more than 1"):
        choose_kinds(labels, tf.random.Generator.from_seed(0), (0.5, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="one per kind"):
        choose_kinds(labels, tf.random.Generator.from_seed(0), (0.1, 0.1))


def test_rate_zero_leaves_the_batch_alone():
    images, labels = batch([1, 7, 0, 1])
    out, new_labels = style_batch(images, labels, tf.random.Generator.from_seed(0),
                                  StyleSettings(rates=(0.0,) * len(KINDS)))
    assert np.array_equal(out.numpy(), images.numpy()) and np.array_equal(new_labels.numpy(), labels.numpy())


def _top_width(image: np.ndarray) -> int:
    """Pixels of ink in the digit's two topmost rows (the wider of the two)."""
    rows = np.flatnonzero((image > 0.5).any(axis=1))
    return max(int((image[row] > 0.5).sum()) for row in rows[:2])


def test_a_stem_becomes_a_flagged_one_a_long_barred_seven_or_a_four_and_says_which():
    images, labels = styled([1] * 120, seed=5)
    kinds = choose_kinds(tf.constant([1] * 120, tf.int32), tf.random.Generator.from_seed(5), HEAVY).numpy()
    names = np.array(KINDS)[kinds]
    assert set(labels[names == "flagged_one"]) == {1} and set(labels[names == "slant"]) == {1}
    assert set(labels[names == "seven_from_stem"]) == {7} and set(labels[names == "four_from_stem"]) == {4}
    # The 7's bar is long and flat at the top; the 1's flag leaves the top steeply.
    sevens = [_top_width(image) for image in images[names == "seven_from_stem"]]
    ones = [_top_width(image) for image in images[names == "flagged_one"]]
    assert np.median(sevens) >= np.median(ones) + 3


def _rows_through_a_loop(image: np.ndarray) -> int:
    """Rows of the digit's upper half that cross two strokes or more (a closed loop's rows)."""
    ink = image > 0.3
    rows = np.flatnonzero(ink.any(axis=1))
    upper = ink[rows[0]:rows[0] + (rows[-1] - rows[0]) // 2]
    starts = upper & ~np.pad(upper[:, :-1], ((0, 0), (1, 0)))
    return int((starts.sum(axis=1) >= 2).sum())


def test_an_open_nine_loses_its_loops_upper_left_and_keeps_its_stem_and_label():
    only_open = tuple(1.0 if kind == "open_nine" else 0.0 for kind in KINDS)
    plain, _ = batch([9] * 6)
    opened, labels = styled([9] * 6, seed=4, rates=only_open)
    assert set(labels) == {9}
    for before, after in zip(plain.numpy(), opened, strict=True):
        # The loop is open over a quarter of its rows or more, and its bottom is still there.
        assert 0 < _rows_through_a_loop(after) <= 0.75 * _rows_through_a_loop(before)
        ink_rows = np.flatnonzero((after > 0.3).any(axis=1))
        lower_half = after[(ink_rows[0] + ink_rows[-1]) // 2:]
        assert lower_half.sum() > 0.15 * after.sum()  # the stem is untouched
    # A 1 or a 7 never gets the style.
    assert not ELIGIBLE[1][KINDS.index("open_nine")] and not ELIGIBLE[7][KINDS.index("open_nine")]


def _bottom_width(image: np.ndarray) -> int:
    """Pixels of ink in the digit's two lowest rows (the wider of the two)."""
    rows = np.flatnonzero((image > 0.5).any(axis=1))
    return max(int((image[row] > 0.5).sum()) for row in rows[-2:])


def test_a_seven_with_a_base_becomes_a_z_shaped_two_and_is_labelled_two():
    only_z = tuple(1.0 if kind == "z_two" else 0.0 for kind in KINDS)
    plain, _ = batch([7] * 8)  # their feet lean from well left of the bar's middle to under it
    zs, labels = styled([7] * 8, seed=2, rates=only_z)
    assert labels[0] == 2 and labels[-1] == 7 and set(labels) == {2, 7}
    for before, after, label in zip(plain.numpy(), zs, labels, strict=True):
        # The foot of a 7 is a stroke's width; a 2's base runs a good part of the digit's width. A
        # 7 standing upright would be a continental 1 with a base: it stays a plain 7.
        assert (_bottom_width(after) >= 2 * _bottom_width(before)) == (label == 2)
    assert ELIGIBLE[7][KINDS.index("z_two")] and sum(row[KINDS.index("z_two")] for row in ELIGIBLE) == 1
    assert StyleSettings().rates[KINDS.index("z_two")] == 0.0  # off unless a recipe asks for it


def test_styled_digits_are_framed_like_mnist():
    images, _ = styled([1, 7, 0, 7, 1, 0] * 6, seed=2)
    rows, cols = np.indices((28, 28))
    for image in images:
        mass = image.sum()
        assert abs((image * rows).sum() / mass - 14.0) < 1.0 and abs((image * cols).sum() / mass - 14.0) < 1.0
        ink_rows, ink_cols = np.flatnonzero((image > 0.3).any(axis=1)), np.flatnonzero((image > 0.3).any(axis=0))
        longer = max(ink_rows[-1] - ink_rows[0], ink_cols[-1] - ink_cols[0]) + 1
        assert 18 <= longer <= 22
        assert image.max() == pytest.approx(1.0)


def test_training_batches_carry_the_new_labels_and_the_run_card_the_recipe():
    images, labels = batch([1] * 16)
    _, new_labels = augment_examples(images, labels, tf.random.Generator.from_seed(1),
                                     AugmentSettings(styles=StyleSettings(rates=HEAVY)))
    assert set(new_labels.numpy()) <= {1, 4, 7} and len(set(new_labels.numpy())) > 1
    recipe = TrainConfig("cnn").resolved().augmentation
    assert tuple(recipe["styles"]["rates"]) == StyleSettings().rates
    assert AugmentSettings.from_dict(recipe) == AugmentSettings()  # the card's recipe rebuilds the run's
    assert TrainConfig("cnn_fast").resolved().augmentation == {}  # no augmentation, no recipe


def test_an_unknown_recipe_is_refused_before_training():
    config = TrainConfig("mlp", epochs=1, train_size=500, augmentation={"styles": {"rates": [0.1] * 8, "sparkle": 1}})
    with pytest.raises(ValueError, match="augmentation recipe"):
        config.validate(1000)


def test_a_recipe_from_before_open_nines_existed_never_draws_them():
    recipe = TrainConfig("cnn").resolved().augmentation
    recipe["styles"]["rates"] = recipe["styles"]["rates"][:8]
    rates = AugmentSettings.from_dict(recipe).styles.rates
    assert len(rates) == len(KINDS) and rates[KINDS.index("open_nine")] == rates[KINDS.index("z_two")] == 0.0


def test_a_recipe_from_before_coarse_scans_existed_reads_them_as_never_drawn():
    recipe = TrainConfig("cnn").resolved().augmentation
    recipe.pop("coarse")
    assert AugmentSettings.from_dict(recipe).coarse is None
