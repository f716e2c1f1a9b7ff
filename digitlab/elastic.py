"""Elastic distortions: every writer's wobble, made from MNIST's own digits.

An affine distortion tilts or squeezes a whole digit; a hand does more. Loops come out
lopsided, a stroke bows, a tail flicks. Simard, Steinkraus and Platt (2003) showed that smooth
random displacement fields teach a network that variety. ``elastic_batch`` draws one field per
digit as a few random control points smoothed up to the whole frame, then resamples the digit
along it, as batched TensorFlow ops inside the ``tf.data`` pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from digitlab.recipe import RecipePart

FRAME = 28


@dataclass(frozen=True)
class ElasticSettings(RecipePart):
    """How often a digit is warped and how much.

    ``grid`` control points a side set how local the wobble is (3: the digit bends as a whole,
    6: single strokes bow); ``pixels`` is the largest displacement, drawn uniformly per digit.
    """

    rate: float = 0.5
    pixels: float = 2.5
    grid: int = 4


def displacement_fields(batch: int | tf.Tensor, settings: ElasticSettings,
                        generator: tf.random.Generator) -> tf.Tensor:
    """Smooth random (batch, 28, 28, 2) displacements in pixels (rows, columns), at most ``pixels``."""
    control = generator.uniform([batch, settings.grid, settings.grid, 2], -1.0, 1.0)
    smooth = tf.image.resize(control, [FRAME, FRAME], method="bicubic")
    strength = generator.uniform([batch, 1, 1, 1], 0.0, settings.pixels)
    return tf.clip_by_value(smooth, -1.0, 1.0) * strength


def warp(images: tf.Tensor, fields: tf.Tensor) -> tf.Tensor:
    """Resample (N, 28, 28) images at each pixel plus its displacement, bilinearly; ink
    from outside the frame is background."""
    batch = tf.shape(images)[0]
    side = FRAME + 2  # a border of background to sample from
    padded = tf.reshape(tf.pad(images, [[0, 0], [1, 1], [1, 1]]), [batch, side * side])
    rows, cols = tf.meshgrid(tf.range(FRAME, dtype=tf.float32), tf.range(FRAME, dtype=tf.float32),
                             indexing="ij")
    y = tf.clip_by_value(rows + fields[..., 0] + 1.0, 0.0, side - 1.0)
    x = tf.clip_by_value(cols + fields[..., 1] + 1.0, 0.0, side - 1.0)
    y0, x0 = tf.floor(y), tf.floor(x)
    wy, wx = y - y0, x - x0
    y0, x0 = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1, x1 = tf.minimum(y0 + 1, side - 1), tf.minimum(x0 + 1, side - 1)

    def at(yi: tf.Tensor, xi: tf.Tensor) -> tf.Tensor:
        index = tf.reshape(yi * side + xi, [batch, FRAME * FRAME])
        return tf.reshape(tf.gather(padded, index, batch_dims=1), [batch, FRAME, FRAME])

    top = (1.0 - wx) * at(y0, x0) + wx * at(y0, x1)
    bottom = (1.0 - wx) * at(y1, x0) + wx * at(y1, x1)
    return (1.0 - wy) * top + wy * bottom


def elastic_batch(images: tf.Tensor, generator: tf.random.Generator, settings: ElasticSettings) -> tf.Tensor:
    """Warp a ``settings.rate`` share of a batch of (N, 28, 28) float images; the rest pass as they are."""
    batch = tf.shape(images)[0]
    chosen = generator.uniform([batch, 1, 1]) < settings.rate
    return tf.where(chosen, warp(images, displacement_fields(batch, settings, generator)), images)
