"""Coarse scans: digits that reach the model through a few pixels, made from MNIST's own digits.

A digit photographed small, scanned at low resolution or stored as a thumbnail arrives as a
handful of blocks that smoothing turns back into soft, thick blobs. MNIST's own test digits
reduced the way the UCI digits were (8×8 blocks of ink counts) lose 2.4 points of ``cnn``'s
accuracy (97.4 %, measured 2026-12-01). ``coarsen_batch`` gives a share of each training batch
that treatment inside the ``tf.data`` pipeline: sometimes binarised as a scanner would, sometimes
with a heavier pen, reduced to a few blocks across the digit by area averaging, counted in a few
ink levels, smoothed back up, stretched in contrast and put in MNIST's frame again, as the
preprocessing would put it.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from digitlab.framing import reframe
from digitlab.recipe import RecipePart

FRAME = 28
DIGIT_SIDE = 20.0  # px: the longer side of a digit in MNIST's frame
PAD = 6  # smoothing spreads the ink: room for it before re-framing


@dataclass(frozen=True)
class CoarseSettings(RecipePart):
    """How often a digit is coarsened and how coarse (uniform ranges, drawn once per batch).

    ``blocks`` counts the blocks across the digit's longer side: the UCI digits have about 8, a
    16×16 scan about 14.
    """

    rate: float = 0.12
    blocks: tuple[float, float] = (5.0, 16.0)
    binarize_probability: float = 0.5
    heavy_pen_probability: float = 0.5  # the pen widened by 1 or 2 px all round before the reduction
    levels: int = 16  # ink counts per block, 0 to ``levels`` (the UCI digits count 0–16)
    # Smoothing leaves soft edges; the preprocessing's contrast stretch makes the core solid ink
    # again. Ink below ``floor`` becomes 0 and above ``ceiling`` 1, each drawn per digit.
    floor: tuple[float, float] = (0.05, 0.25)
    ceiling: tuple[float, float] = (0.5, 0.8)


def coarsen_batch(images: tf.Tensor, generator: tf.random.Generator, settings: CoarseSettings) -> tf.Tensor:
    """Coarsen a random ``settings.rate`` share of a batch of (N, 28, 28) digits in [0, 1].

    Returns the same shape; the others are untouched.
    """
    batch = tf.shape(images)[0]
    chosen = tf.where(generator.uniform([batch]) < settings.rate)
    picked = tf.gather_nd(images, chosen)
    blocks = generator.uniform([], settings.blocks[0], settings.blocks[1])
    side = tf.cast(tf.round(blocks * FRAME / DIGIT_SIDE), tf.int32)
    picked = _heavier_pen(picked, generator, settings.heavy_pen_probability)
    binary = tf.cast(picked >= 0.5, tf.float32)
    scanned = tf.where(generator.uniform([tf.shape(picked)[0], 1, 1]) < settings.binarize_probability,
                       binary, picked)
    small = tf.image.resize(scanned[..., None], tf.stack([side, side]), method="area")
    counted = tf.round(small * settings.levels) / settings.levels
    smooth = tf.image.resize(counted, [FRAME, FRAME], method="bicubic")[..., 0]
    count = tf.shape(picked)[0]
    floor = generator.uniform([count, 1, 1], *settings.floor)
    ceiling = generator.uniform([count, 1, 1], *settings.ceiling)
    stretched = tf.clip_by_value((smooth - floor) / (ceiling - floor), 0.0, 1.0)
    padded = tf.pad(stretched, [[0, 0], [PAD, PAD], [PAD, PAD]])
    return tf.tensor_scatter_nd_update(images, chosen, reframe(padded))


def _heavier_pen(images: tf.Tensor, generator: tf.random.Generator, probability: float) -> tf.Tensor:
    """Widen the strokes of a ``probability`` share of (M, 28, 28) digits by 1 or 2 px all round
    (grey dilation): a felt pen or a bold scan, which the reduction turns into a solid blob."""
    once = tf.nn.max_pool2d(images[..., None], 3, 1, "SAME")
    twice = tf.nn.max_pool2d(once, 3, 1, "SAME")
    draw = generator.uniform([tf.shape(images)[0], 1, 1, 1])
    heavier = tf.where(draw < probability / 2, once, tf.where(draw < probability, twice, images[..., None]))
    return heavier[..., 0]
