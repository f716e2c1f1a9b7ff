"""Synthetic handwriting styles that MNIST's writers rarely use, made from MNIST's own digits.

MNIST's writers were mostly American: their 1 is a bare stroke, their 7 has a slanted stem, their
4s and 0s are of middling width. People elsewhere write a 1 with a flag (and often a base), cross
their 7s, draw very narrow or very wide digits and slant them strongly. A model that never saw
those reads a flagged 1 as 7 and a narrow 0 as 1.

``style_batch`` turns a random share of a training batch into such styles, with batched
TensorFlow ops inside the ``tf.data`` pipeline:

- strokes drawn onto MNIST's own stems: a 1 gets a short, steep flag (with or without a base);
  the same stem with a long, near-flat bar becomes a 7 (so the cue that separates the two is the
  bar's length and angle, never the stem), and with a crossbar and a left arm an open- or
  closed-top 4;
- strokes drawn onto MNIST's 7s: a bar through the stem (the crossed 7);
- image warps of any digit: a curved stem (7s), narrow and wide digits, strong slant;
- strokes taken away: a 9 whose loop is left open on its upper left, as a quick hand leaves it
  (off by default: its rate is 0 unless a recipe sets it).

Each styled digit is then put back in MNIST's frame (longer side 20 px, centre of mass at the
centre), as the preprocessing would put a drawing. The generator makes it reproducible by seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

from digitlab.framing import INK_LEVEL, MNIST_SIZE, centre_of_mass, grid, reframe
from digitlab.recipe import RecipePart

# Styles are drawn on a larger canvas so that a wide 4 or a slanted 7 is never cut off.
CANVAS = 40
MARGIN = (CANVAS - MNIST_SIZE) // 2

# The kinds of style, in the column order of ``ELIGIBLE``.
KINDS = ("flagged_one", "seven_from_stem", "four_from_stem", "crossed_seven", "curved_seven",
         "narrow", "wide", "slant", "open_nine", "z_two")
# Which kinds each label (row) may get; a 1's stem may become a 7 or a 4 (its label changes).
ELIGIBLE = [[kind in allowed for kind in KINDS] for allowed in (
    ("narrow", "wide", "slant"),  # 0
    ("flagged_one", "seven_from_stem", "four_from_stem", "slant"),  # 1
    *[("narrow", "wide", "slant")] * 5,  # 2 3 4 5 6
    ("crossed_seven", "curved_seven", "narrow", "wide", "slant", "z_two"),  # 7 (a 7 with a base is a 2)
    ("narrow", "wide", "slant"),  # 8
    ("narrow", "wide", "slant", "open_nine"),  # 9
)]
NEW_LABEL = {"seven_from_stem": 7, "four_from_stem": 4, "z_two": 2}
Z_MIN_LEAN = 0.1  # a 7 becomes a Z-shaped 2 only if its foot is this share of its height left of its bar


@dataclass(frozen=True)
class StyleSettings(RecipePart):
    """How often each style is drawn and the ranges each is drawn from (uniform).

    ``rates`` holds, per kind of ``KINDS``, the chance that a digit allowed that kind gets it: a
    1's stem becomes a flagged 1 as often as a long-barred 7, so neither answer is favoured.
    Lengths are fractions of the digit's height; angles are degrees below the horizontal, towards
    the left of the stem's top. A 1's flag (steep, ≥ 20°) and a 7's bar (near flat, ≤ 8°) never
    overlap in angle, and the 7's bar is the longer, so the label follows from what is drawn.
    """

    rates: tuple[float, ...] = (0.16, 0.16, 0.06, 0.08, 0.06, 0.05, 0.04, 0.05, 0.0, 0.0)
    flag_length: tuple[float, float] = (0.12, 0.5)
    flag_degrees: tuple[float, float] = (20.0, 70.0)
    base_probability: float = 0.4
    base_half_length: tuple[float, float] = (0.15, 0.35)
    bar_length: tuple[float, float] = (0.3, 0.9)
    bar_degrees: tuple[float, float] = (-12.0, 8.0)
    bar_overshoot: tuple[float, float] = (0.0, 0.1)  # the bar goes on past the stem, to the right
    cross_probability: float = 0.3  # a 7 made from a stem also gets a crossbar
    cross_half_length: tuple[float, float] = (0.12, 0.25)
    cross_height: tuple[float, float] = (0.45, 0.62)
    four_bar_height: tuple[float, float] = (0.55, 0.72)
    four_left: tuple[float, float] = (0.5, 0.8)
    four_right: tuple[float, float] = (0.1, 0.25)
    open_four_probability: float = 0.7
    bend: tuple[float, float] = (0.08, 0.18)  # a curved stem's bulge, either side
    narrow_scale: tuple[float, float] = (0.4, 0.7)
    wide_scale: tuple[float, float] = (1.3, 1.8)
    slant_degrees: tuple[float, float] = (15.0, 35.0)  # either way
    # An open 9 loses the left stroke of its loop from the loop's top down to this share of the
    # loop's depth; the loop's bottom stays, reaching left from the stem like the top of a 3.
    open_depth: tuple[float, float] = (0.25, 0.6)
    # A Z-shaped 2 is a 7 (top bar and diagonal) with a flat base to the right of its foot, often
    # crossed through the diagonal: the base, not the bar, is what tells it from a 7.
    z_base_length: tuple[float, float] = (0.45, 0.8)
    z_base_degrees: tuple[float, float] = (-6.0, 6.0)  # below the horizontal, going right
    z_cross_probability: float = 0.5

    @classmethod
    def from_dict(cls, values: dict) -> StyleSettings:
        """The inverse of ``to_dict``. A recipe written before a kind of style existed never drew
        it: its missing rates are 0."""
        values = dict(values)
        if "rates" in values:
            values["rates"] = tuple(values["rates"]) + (0.0,) * (len(KINDS) - len(values["rates"]))
        return super().from_dict(values)


def style_batch(
    images: tf.Tensor, labels: tf.Tensor, generator: tf.random.Generator, settings: StyleSettings
) -> tuple[tf.Tensor, tf.Tensor]:
    """Give each digit of a batch a synthetic style at the recipe's rates.

    Args:
        images: (N, 28, 28) float32 in [0, 1], MNIST digits.
        labels: (N,) int32.
        generator: the seeded random source.
        settings: the recipe.

    Returns:
        (images, labels) of the same shapes; styled digits are re-framed the MNIST way, and a 1's
        stem that became a 7 or a 4 carries its new label.
    """
    kind = choose_kinds(labels, generator, settings.rates)
    chosen = tf.where(kind >= 0)  # (M, 1): only the styled few are worked on
    styled_kind = tf.gather_nd(kind, chosen)
    canvas = tf.pad(tf.gather_nd(images, chosen), [[0, 0], [MARGIN, MARGIN], [MARGIN, MARGIN]])
    geometry = _Geometry.measure(canvas)
    if settings.rates[KINDS.index("z_two")] > 0:
        styled_kind = _fit_for_z(styled_kind, geometry)
        kind = tf.tensor_scatter_nd_update(kind, chosen, styled_kind)
    drawn = _draw_strokes(canvas, styled_kind, geometry, generator, settings)
    if settings.rates[KINDS.index("open_nine")] > 0:  # a recipe without it draws the same numbers as before it
        drawn = _open_loops(drawn, styled_kind, geometry, generator, settings)
    if settings.rates[KINDS.index("z_two")] > 0:  # likewise
        drawn = _z_bases(drawn, styled_kind, geometry, generator, settings)
    framed = reframe(_warp(drawn, styled_kind, geometry, generator, settings))
    images = tf.tensor_scatter_nd_update(images, chosen, framed)
    for name, label in NEW_LABEL.items():
        labels = tf.where(kind == KINDS.index(name), tf.constant(label, labels.dtype), labels)
    return images, labels


def choose_kinds(labels: tf.Tensor, generator: tf.random.Generator, rates: tuple[float, ...]) -> tf.Tensor:
    """Per image, the index into ``KINDS`` of its style, or -1 for none.

    Each kind its label allows comes with its chance from ``rates``; at most one is drawn.

    Raises:
        ValueError: ``rates`` has the wrong length, or some label's chances add up to more than 1.
    """
    allowed = tf.constant(ELIGIBLE, tf.float32) * tf.constant(_checked(rates), tf.float32)
    chances = tf.gather(tf.math.cumsum(allowed, axis=1), tf.cast(labels, tf.int32))
    draw = generator.uniform([tf.shape(labels)[0], 1])
    below = draw < chances
    first = tf.argmax(tf.cast(below, tf.int32), axis=1, output_type=tf.int32)
    return tf.where(tf.reduce_any(below, axis=1), first, -1)


def _checked(rates: tuple[float, ...]) -> list[float]:
    if len(rates) != len(KINDS) or any(not 0.0 <= rate <= 1.0 for rate in rates):
        raise ValueError(f"rates must be {len(KINDS)} chances in [0, 1], one per kind of style {KINDS}")
    for label, allowed in enumerate(ELIGIBLE):
        if sum(rate for rate, ok in zip(rates, allowed, strict=True) if ok) > 1.0 + 1e-9:
            raise ValueError(f"the style chances of a {label} add up to more than 1")
    return list(rates)


@dataclass(frozen=True)
class _Geometry:
    """Where each digit's ink starts and ends: its top and bottom points, height, stroke width."""

    top: tf.Tensor  # (N,) row of the topmost ink
    bottom: tf.Tensor
    top_x: tf.Tensor  # (N,) mean column of the ink in the top rows
    bottom_x: tf.Tensor
    height: tf.Tensor
    pen: tf.Tensor  # (N,) stroke width in px

    @classmethod
    def measure(cls, canvas: tf.Tensor) -> _Geometry:
        """Measure a batch of (N, H, W) digits."""
        size = tf.shape(canvas)[1]
        mask = canvas >= INK_LEVEL
        rows = tf.reduce_any(mask, axis=2)
        top = tf.cast(tf.argmax(tf.cast(rows, tf.int32), axis=1), tf.float32)
        bottom = tf.cast(size - 1, tf.float32) - tf.cast(
            tf.argmax(tf.cast(rows[:, ::-1], tf.int32), axis=1), tf.float32)
        height = tf.maximum(bottom - top, 1.0)
        return cls(top, bottom, _mean_column(canvas, top, top + 2.0), _mean_column(canvas, bottom - 2.0, bottom),
                   height, _pen_width(mask))


def _mean_column(canvas: tf.Tensor, first_row: tf.Tensor, last_row: tf.Tensor) -> tf.Tensor:
    """The ink-weighted mean column of each image between two rows (inclusive)."""
    rows, cols = grid(CANVAS)
    band = tf.cast((rows >= first_row[:, None, None]) & (rows <= last_row[:, None, None]), tf.float32)
    weight = canvas * band
    return tf.reduce_sum(weight * cols, axis=[1, 2]) / tf.maximum(tf.reduce_sum(weight, axis=[1, 2]), 1e-6)


def _pen_width(mask: tf.Tensor) -> tf.Tensor:
    """Mean stroke width: twice the ink area over its perimeter (city-block edges × π/4)."""
    ink = tf.cast(mask, tf.float32)
    edges = (tf.reduce_sum(tf.abs(ink[:, 1:] - ink[:, :-1]), axis=[1, 2])
             + tf.reduce_sum(tf.abs(ink[:, :, 1:] - ink[:, :, :-1]), axis=[1, 2]))
    width = 2.0 * tf.reduce_sum(ink, axis=[1, 2]) / tf.maximum(edges * math.pi / 4.0, 1.0)
    return tf.clip_by_value(width, 1.5, 4.0)


def _segment(start_x: tf.Tensor, start_y: tf.Tensor, end_x: tf.Tensor, end_y: tf.Tensor,
             pen: tf.Tensor) -> tf.Tensor:
    """Anti-aliased strokes of width ``pen`` from start to end, one per image (all (N,) tensors):
    (N, CANVAS, CANVAS)."""
    rows, cols = grid(CANVAS)
    sx, sy, ex, ey, width = (value[:, None, None] for value in (start_x, start_y, end_x, end_y, pen))
    dx, dy = ex - sx, ey - sy
    along = ((cols - sx) * dx + (rows - sy) * dy) / tf.maximum(dx * dx + dy * dy, 1e-6)
    along = tf.clip_by_value(along, 0.0, 1.0)
    distance = tf.sqrt((cols - sx - along * dx) ** 2 + (rows - sy - along * dy) ** 2)
    return tf.clip_by_value(width / 2.0 + 0.5 - distance, 0.0, 1.0)


def _uniform(generator: tf.random.Generator, batch: tf.Tensor, bounds: tuple[float, float]) -> tf.Tensor:
    """(N,) uniform draws in ``bounds``."""
    return generator.uniform([batch], bounds[0], bounds[1])


def _chance(generator: tf.random.Generator, batch: tf.Tensor, probability: float) -> tf.Tensor:
    """(N, 1, 1) of 1.0 with ``probability``, else 0.0: switches a stroke on or off per image."""
    return tf.cast(generator.uniform([batch]) < probability, tf.float32)[:, None, None]


def _bar_from_top(geometry: _Geometry, length: tf.Tensor, degrees: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The far end of a stroke from the stem's top, ``length`` × height long, going left and down."""
    angle = degrees * (math.pi / 180.0)
    reach = length * geometry.height
    return geometry.top_x - reach * tf.cos(angle), geometry.top + reach * tf.sin(angle)


def _draw_strokes(canvas: tf.Tensor, kind: tf.Tensor, geometry: _Geometry, generator: tf.random.Generator,
                  settings: StyleSettings) -> tf.Tensor:
    """Add the strokes of the stroke-level styles (flag, bar, crossbar, a 4's arms) to their images."""
    batch = tf.shape(canvas)[0]
    g, pen = geometry, geometry.pen
    # A 1: a short, steep flag from the top, sometimes a base.
    flag_x, flag_y = _bar_from_top(g, _uniform(generator, batch, settings.flag_length),
                                   _uniform(generator, batch, settings.flag_degrees))
    half_base = _uniform(generator, batch, settings.base_half_length) * g.height
    one = tf.maximum(_segment(g.top_x, g.top, flag_x, flag_y, pen),
                     _chance(generator, batch, settings.base_probability)
                     * _segment(g.bottom_x - half_base, g.bottom, g.bottom_x + half_base, g.bottom, pen))
    # A 7 from the same kind of stem: a long, near-flat bar, sometimes crossed.
    bar_x, bar_y = _bar_from_top(g, _uniform(generator, batch, settings.bar_length),
                                 _uniform(generator, batch, settings.bar_degrees))
    overshoot = _uniform(generator, batch, settings.bar_overshoot) * g.height
    seven = tf.maximum(_segment(bar_x, bar_y, g.top_x + overshoot, g.top, pen),
                       _chance(generator, batch, settings.cross_probability)
                       * _crossbar(g, generator, settings))
    strokes = tf.stack([one, seven, _four_strokes(g, generator, settings),
                        _crossbar(g, generator, settings, canvas)], axis=1)
    # Kinds 0..3 of KINDS are the stroke-level ones; others add nothing.
    choice = tf.one_hot(kind, len(KINDS))[:, :4, None, None]
    return tf.maximum(canvas, tf.reduce_sum(choice * strokes, axis=1))


def _crossbar(g: _Geometry, generator: tf.random.Generator, settings: StyleSettings,
              canvas: tf.Tensor | None = None) -> tf.Tensor:
    """A short, near-horizontal bar through the stem, about halfway down.

    Without ``canvas`` the stem is the straight line from top to bottom; with it (an MNIST 7),
    the bar is centred on the ink's mean column at that height.
    """
    batch = tf.shape(g.top)[0]
    fraction = _uniform(generator, batch, settings.cross_height)
    row = g.top + fraction * g.height
    if canvas is None:
        column = g.top_x + fraction * (g.bottom_x - g.top_x)
    else:
        column = _mean_column(canvas, row - 1.0, row + 1.0)
    half = _uniform(generator, batch, settings.cross_half_length) * g.height
    tilt = _uniform(generator, batch, (-0.12, 0.12)) * half
    return _segment(column - half, row + tilt, column + half, row - tilt, g.pen)


def _four_strokes(g: _Geometry, generator: tf.random.Generator, settings: StyleSettings) -> tf.Tensor:
    """A crossbar and a left arm on a stem: an open-top 4 (arm up on its own) or closed (arm to the top)."""
    batch = tf.shape(g.top)[0]
    fraction = _uniform(generator, batch, settings.four_bar_height)
    row = g.top + fraction * g.height
    stem_x = g.top_x + fraction * (g.bottom_x - g.top_x)
    left = stem_x - _uniform(generator, batch, settings.four_left) * g.height
    right = stem_x + _uniform(generator, batch, settings.four_right) * g.height
    bar = _segment(left, row, right, row, g.pen)
    open_top = _chance(generator, batch, settings.open_four_probability)
    arm_top_x = left + _uniform(generator, batch, (0.0, 0.15)) * g.height
    arm_top_y = g.top + _uniform(generator, batch, (0.0, 0.2)) * g.height
    open_arm = _segment(left, row, arm_top_x, arm_top_y, g.pen)
    closed_arm = _segment(left, row, g.top_x, g.top, g.pen)
    return tf.maximum(bar, open_top * open_arm + (1.0 - open_top) * closed_arm)


def _open_loops(canvas: tf.Tensor, kind: tf.Tensor, g: _Geometry, generator: tf.random.Generator,
                settings: StyleSettings) -> tf.Tensor:
    """Open the loop of each ``open_nine``: in the rows of the loop's upper part, everything up to
    the end of the row's first stroke is taken away, so the loop's left side is gone.

    The loop's rows are those of the digit's upper 60 % that cross two strokes or more; the rows
    below the drawn depth keep their left stroke, so the loop's bottom still reaches from the stem.
    """
    batch = tf.shape(canvas)[0]
    rows, cols = grid(CANVAS)
    ink = canvas >= INK_LEVEL
    starts = ink & ~tf.pad(ink[:, :, :-1], [[0, 0], [0, 0], [1, 0]])
    run = tf.cumsum(tf.cast(starts, tf.int32), axis=2)  # which stroke of its row a pixel belongs to
    crossings = tf.reduce_max(run, axis=2)  # (N, H): strokes in each row
    row_index = rows[:, :, 0]  # (1, H)
    upper = row_index <= (g.top + 0.6 * g.height)[:, None]
    loop_rows = (crossings >= 2) & upper
    first_loop_row = tf.cast(tf.argmax(tf.cast(loop_rows, tf.int32), axis=1), tf.float32)
    last_loop_row = tf.cast(CANVAS - 1, tf.float32) - tf.cast(
        tf.argmax(tf.cast(loop_rows[:, ::-1], tf.int32), axis=1), tf.float32)
    depth = first_loop_row + _uniform(generator, batch, settings.open_depth) * (last_loop_row - first_loop_row)
    opened = loop_rows & (row_index <= depth[:, None])
    first_stroke_end = tf.reduce_max(tf.where(ink & (run == 1), cols, -1.0), axis=2)  # (N, H)
    # One pixel past the stroke's end takes its anti-aliased edge too.
    erase = opened[:, :, None] & (cols <= first_stroke_end[:, :, None] + 1.0)
    chosen = (kind == KINDS.index("open_nine"))[:, None, None]
    return tf.where(chosen & erase, 0.0, canvas)


def _fit_for_z(kind: tf.Tensor, g: _Geometry) -> tf.Tensor:
    """``kind`` without the ``z_two`` of 7s too upright for one: with a base, a 7 whose foot is not
    well left of its bar's middle is a continental 1 with a base, not a 2. They stay plain 7s."""
    upright = (g.top_x - g.bottom_x) < Z_MIN_LEAN * g.height
    return tf.where((kind == KINDS.index("z_two")) & upright, -1, kind)


def _z_bases(canvas: tf.Tensor, kind: tf.Tensor, g: _Geometry, generator: tf.random.Generator,
             settings: StyleSettings) -> tf.Tensor:
    """Give each ``z_two`` (an MNIST 7) a flat base from its foot to the right, and half of them a
    bar through the diagonal: the 2 many people write like a Z."""
    batch = tf.shape(canvas)[0]
    length = _uniform(generator, batch, settings.z_base_length) * g.height
    angle = _uniform(generator, batch, settings.z_base_degrees) * (math.pi / 180.0)
    start_x = g.bottom_x - 0.5 * g.pen
    base = _segment(start_x, g.bottom, start_x + length * tf.cos(angle), g.bottom + length * tf.sin(angle), g.pen)
    crossed = _chance(generator, batch, settings.z_cross_probability) * _crossbar(g, generator, settings, canvas)
    chosen = tf.cast(kind == KINDS.index("z_two"), tf.float32)[:, None, None]
    return tf.maximum(canvas, chosen * tf.maximum(base, crossed))


def _warp(canvas: tf.Tensor, kind: tf.Tensor, g: _Geometry, generator: tf.random.Generator,
          settings: StyleSettings) -> tf.Tensor:
    """Resample each row sideways for the image-level styles: curved stem, narrow, wide, slant."""
    batch = tf.shape(canvas)[0]
    rows, cols = grid(CANVAS)
    centre_x = centre_of_mass(canvas)[1][:, None, None]
    centre_y = (g.top + g.bottom)[:, None, None] / 2.0
    side = tf.where(generator.uniform([batch]) < 0.5, -1.0, 1.0)[:, None, None]
    progress = tf.clip_by_value((rows - g.top[:, None, None]) / g.height[:, None, None], 0.0, 1.0)
    bulge = side * _uniform(generator, batch, settings.bend)[:, None, None] * g.height[:, None, None]
    narrow = _uniform(generator, batch, settings.narrow_scale)[:, None, None]
    wide = _uniform(generator, batch, settings.wide_scale)[:, None, None]
    slant = side * tf.tan(_uniform(generator, batch, settings.slant_degrees) * (math.pi / 180.0))[:, None, None]
    sources = tf.stack([
        cols - bulge * tf.sin(math.pi * progress),  # curved_seven
        centre_x + (cols - centre_x) / narrow,  # narrow
        centre_x + (cols - centre_x) / wide,  # wide
        cols + slant * (rows - centre_y),  # slant
    ], axis=1)
    choice = tf.one_hot(kind - KINDS.index("curved_seven"), 4)[:, :, None, None]
    identity = 1.0 - tf.reduce_sum(choice, axis=1)
    source_x = identity * cols + tf.reduce_sum(choice * sources, axis=1)
    warped = _sample_rows(canvas, source_x)
    # Squeezing sideways thins the upright strokes; a narrow digit drawn with a pen keeps its width.
    widened = tf.nn.max_pool2d(warped[..., None], [1, 3], 1, "SAME")[..., 0]
    thicken = tf.where(kind == KINDS.index("narrow"), 1.0 - narrow[:, 0, 0], 0.0)[:, None, None]
    return warped + thicken * (widened - warped)


def _sample_rows(canvas: tf.Tensor, source_x: tf.Tensor) -> tf.Tensor:
    """Linear interpolation of each row at fractional columns ``source_x`` (0 outside)."""
    left = tf.floor(source_x)
    weight = source_x - left
    left = tf.cast(left, tf.int32)

    def column(index: tf.Tensor) -> tf.Tensor:
        inside = tf.cast((index >= 0) & (index < CANVAS), tf.float32)
        return inside * tf.gather(canvas, tf.clip_by_value(index, 0, CANVAS - 1), axis=2, batch_dims=2)

    return (1.0 - weight) * column(left) + weight * column(left + 1)
