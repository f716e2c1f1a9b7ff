"""MNIST's frame for batches of digits in TensorFlow: the longer side 20 px, the centre of mass at
the centre of a 28×28 picture, as MNIST's digits were framed and as the preprocessing frames a
drawing. Training styles and coarse scans that reshape a digit put it back in this frame.
"""

from __future__ import annotations

import tensorflow as tf

MNIST_SIZE = 28
DIGIT_BOX = 20.0
MNIST_CENTRE = 14.0  # MNIST's centres of mass, pixel-index coordinates
INK_LEVEL = 0.3  # pixels at least this bright count as the digit's extent


def grid(size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """(rows, cols) pixel-index coordinates, each (1, size, size)."""
    axis = tf.range(size, dtype=tf.float32)
    rows, cols = tf.meshgrid(axis, axis, indexing="ij")
    return rows[None], cols[None]


def centre_of_mass(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(row, column) of each image's centre of mass."""
    size = images.shape[1]
    rows, cols = grid(size)
    total = tf.maximum(tf.reduce_sum(images, axis=[1, 2]), 1e-6)
    return tf.reduce_sum(images * rows, axis=[1, 2]) / total, tf.reduce_sum(images * cols, axis=[1, 2]) / total


def reframe(canvas: tf.Tensor) -> tf.Tensor:
    """Back to 28×28 the MNIST way: the ink's longer side to 20 px, centre of mass at the centre."""
    mask = canvas >= INK_LEVEL
    cols_used = _extent(tf.reduce_any(mask, axis=1))
    rows_used = _extent(tf.reduce_any(mask, axis=2))
    scale = DIGIT_BOX / tf.maximum(tf.maximum(rows_used, cols_used), 1.0)
    # Shrinking by much would skip thin strokes between samples: sample a smoothed copy then.
    smoothed = tf.nn.avg_pool2d(canvas[..., None], 2, 1, "SAME")[..., 0]
    source = tf.where((scale < 0.75)[:, None, None], smoothed, canvas)
    centre_row, centre_col = centre_of_mass(source)
    rows, cols = grid(MNIST_SIZE)
    factor = scale[:, None, None]
    source_rows = (rows - MNIST_CENTRE) / factor + centre_row[:, None, None]
    source_cols = (cols - MNIST_CENTRE) / factor + centre_col[:, None, None]
    framed = _sample(source, source_rows, source_cols)
    peak = tf.reduce_max(framed, axis=[1, 2], keepdims=True)
    return tf.clip_by_value(framed / tf.maximum(peak, 1e-6), 0.0, 1.0)


def _extent(used: tf.Tensor) -> tf.Tensor:
    """Number of pixels from the first to the last True along the last axis, per image."""
    size = tf.shape(used)[1]
    as_int = tf.cast(used, tf.int32)
    first = tf.argmax(as_int, axis=1, output_type=tf.int32)
    last = size - 1 - tf.argmax(as_int[:, ::-1], axis=1, output_type=tf.int32)
    return tf.cast(tf.maximum(last - first + 1, 1), tf.float32)


def _sample(images: tf.Tensor, source_rows: tf.Tensor, source_cols: tf.Tensor) -> tf.Tensor:
    """Bilinear samples of (N, H, W) images at fractional (row, col) positions (0 outside)."""
    size = images.shape[1]
    top, left = tf.floor(source_rows), tf.floor(source_cols)
    down, right = source_rows - top, source_cols - left
    top, left = tf.cast(top, tf.int32), tf.cast(left, tf.int32)

    def pixel(row: tf.Tensor, col: tf.Tensor) -> tf.Tensor:
        inside = tf.cast((row >= 0) & (row < size) & (col >= 0) & (col < size), tf.float32)
        index = tf.stack([tf.clip_by_value(row, 0, size - 1), tf.clip_by_value(col, 0, size - 1)], axis=-1)
        return inside * tf.gather_nd(images, index, batch_dims=1)

    upper = (1.0 - right) * pixel(top, left) + right * pixel(top, left + 1)
    lower = (1.0 - right) * pixel(top + 1, left) + right * pixel(top + 1, left + 1)
    return (1.0 - down) * upper + down * lower
