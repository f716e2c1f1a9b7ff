"""Drawings as strokes: a digit drawn small with a wide brush is redrawn with MNIST's pen, its loops open."""

from __future__ import annotations

import pytest
from strokes_support import assert_cli_floors, holes, narrow_eight

from digitlab.hard_styles import HEAVY_PAD_NAME, load_heavy_pen_styles
from digitlab.preprocess import preprocess
from digitlab.strokes import HEAVY_PEN_RATIO, MAX_POINTS, MNIST_PEN_RATIO, Drawing, Stroke

# Measured 99.17 / 99.63 / 99.26 % on the 1,080 drawings (docs/handwriting.md, "Heavy pens
# redrawn from their strokes"); read from the pixels alone the same drawings give 92.31 / 91.85 /
# 96.94 %.
HEAVY_PAD_FLOORS = {"cnn": 0.985, "lenet": 0.985, "mlp": 0.985}


def eight(width: float) -> Drawing:
    return Drawing.from_message(narrow_eight(width), side=280)


def test_a_heavy_pen_fills_a_small_eights_loops_and_the_redrawn_eight_has_them_back():
    heavy = eight(width=34)
    assert heavy.is_heavy and heavy.pen_ratio > HEAVY_PEN_RATIO
    assert holes(heavy.picture()) == 0  # in the pixels the loops are gone for good
    redrawn = heavy.for_reading()
    assert redrawn.pen_ratio == pytest.approx(MNIST_PEN_RATIO)
    assert holes(redrawn.picture()) == 2
    assert [stroke.points for stroke in redrawn.strokes] == [stroke.points for stroke in heavy.strokes]
    assert not preprocess(redrawn.picture()).advice  # and no "draw it larger" hint is due


def test_a_digit_drawn_with_a_pen_fit_for_its_size_is_read_as_drawn():
    regular = eight(width=8)
    assert not regular.is_heavy and regular.for_reading() is regular
    assert holes(regular.picture()) == 2


def test_a_dot_is_not_redrawn():
    dot = Drawing.from_message([{"width": 30, "points": [140, 140]}], side=280)
    assert not dot.is_heavy and dot.for_reading() is dot
    assert dot.picture().max() == 255  # a single point is drawn as the pen's dot, as the pad does


@pytest.mark.parametrize(("strokes", "message"), [
    ("not strokes", "not a list of strokes"),
    ([], "not a list of strokes"),
    ([[30, [1, 2]]], "not a {width, points} object"),
    ([{"width": 0, "points": [1, 2]}], "width is not a number"),
    ([{"width": True, "points": [1, 2]}], "width is not a number"),
    ([{"width": 20, "points": [1, 2, 3]}], "flat list of x, y pairs"),
    ([{"width": 20, "points": [1, float("nan")]}], "not all finite numbers"),
    ([{"width": 20, "points": [1, "2"]}], "not all finite numbers"),
    ([{"width": 20, "points": [0, 0] * (MAX_POINTS + 1)}], "is no digit"),
    ([{"width": 20, "points": [0, 0]}] * 501, "is no digit"),
])
def test_a_forged_stroke_message_is_refused_in_one_line(strokes, message):
    with pytest.raises(ValueError, match=message) as refused:
        Drawing.from_message(strokes, side=280)
    assert "\n" not in str(refused.value)


def test_the_heavy_pen_set_as_the_pad_reads_it_has_the_same_digits_with_mnists_pen():
    pictures = load_heavy_pen_styles(pictures_per_style=2)
    as_read = load_heavy_pen_styles(pictures_per_style=2, as_the_pad_reads=True)
    assert as_read.name == HEAVY_PAD_NAME and as_read.labels.tolist() == pictures.labels.tolist()
    # The same strokes in the same places, each with a thinner pen: inside the heavy ink (but for a
    # few pixels where the wide pen's segments meet), and far less of it.
    thin, thick = as_read.pictures > 0, pictures.pictures > 0
    assert (thin & ~thick).sum() < 1e-3 * thin.sum()
    assert as_read.pictures.sum() < 0.7 * pictures.pictures.sum()


def test_a_stroke_is_kept_exactly_as_sent():
    drawing = Drawing.from_message([{"width": 22, "points": [10, 20.5, 30, 40]}], side=280)
    assert drawing.strokes == (Stroke(22.0, ((10.0, 20.5), (30.0, 40.0))),) and drawing.side == 280


@pytest.mark.slow
def test_the_cli_reads_the_heavy_pen_set_as_the_pad_does_and_the_shipped_models_keep_their_floors(capsys):
    assert_cli_floors(capsys, "heavy-pad", HEAVY_PAD_FLOORS)
