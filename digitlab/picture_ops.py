"""Small operations on grey pictures (float (H, W) arrays) that the photo modules share.

Area reduction and enlarging, the border's frame, running statistics over square windows, a 3×3
average, binary erosion and dilation, what is joined to the edge, and filling unknown pixels from
known ones. All of it is numpy and PIL.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

REDUCED_SIDE = 96  # px: a photo's paper and light are estimated on a picture at most this large


def reduced(gray: np.ndarray, side: int = REDUCED_SIDE) -> np.ndarray:
    """Area-averaged to at most ``side`` px a side (which also averages out noise)."""
    factor = -(-max(gray.shape) // side)
    if factor <= 1:
        return gray.astype(np.float32)
    return np.asarray(Image.fromarray(gray.astype(np.float32)).reduce(factor), np.float32)


def enlarge(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``image`` resized (bilinear) to ``shape`` = (height, width)."""
    if image.shape == shape:
        return image
    return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.Resampling.BILINEAR), np.float32)


def frame(image: np.ndarray, width: int) -> np.ndarray:
    """The pixels of a ``width``-pixel frame along the image's edges."""
    return np.concatenate([image[:width].ravel(), image[-width:].ravel(),
                           image[:, :width].ravel(), image[:, -width:].ravel()])


def running(image: np.ndarray, window: int, statistic) -> np.ndarray:
    """``statistic`` (np.min, np.max, np.median, np.mean) over a ``window``-wide square, done
    along the rows and then the columns (exact for min and max, close enough for the others).

    Beyond the edges the picture is continued by odd reflection, which carries a slope on as a
    straight line: the light going on darkening into a corner is then not mistaken for ink.
    """
    half = window // 2
    padded = np.pad(image, ((half, half), (0, 0)), mode="reflect", reflect_type="odd")
    rows = statistic(sliding_window_view(padded, window, axis=0), axis=-1)
    padded = np.pad(rows, ((0, 0), (half, half)), mode="reflect", reflect_type="odd")
    return statistic(sliding_window_view(padded, window, axis=1), axis=-1).astype(np.float32)


def box_blur(image: np.ndarray) -> np.ndarray:
    """The mean over each pixel's 3×3 square (the edge pixels repeated), from shifted sums."""
    padded = np.pad(image.astype(np.float32), 1, mode="edge")
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / np.float32(9.0)


def binary(mask: np.ndarray, window: int, statistic) -> np.ndarray:
    """Erosion (``np.min``) or dilation (``np.max``) of a boolean mask by a ``window``-wide square;
    beyond the edges the mask goes on as at the edge."""
    half = window // 2
    padded = np.pad(mask, half, mode="edge")
    rows = statistic(sliding_window_view(padded, window, axis=0), axis=-1)
    return statistic(sliding_window_view(rows, window, axis=1), axis=-1)


def joined_to_border(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` joined to the picture's edge through ``mask`` (4-neighbours)."""
    reached = np.zeros_like(mask)
    reached[[0, -1], :], reached[:, [0, -1]] = mask[[0, -1], :], mask[:, [0, -1]]
    while True:
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= mask
        if np.array_equal(grown, reached):
            return reached
        reached = grown


def carried_on(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``image`` with its unknown pixels filled from the known ones, a ring at a time: each takes
    the mean of its known 4-neighbours."""
    image, known = image.astype(np.float32).copy(), known.copy()
    while known.any() and not known.all():
        values, weights = np.pad(np.where(known, image, 0.0), 1), np.pad(known, 1).astype(np.float32)
        total = values[:-2, 1:-1] + values[2:, 1:-1] + values[1:-1, :-2] + values[1:-1, 2:]
        count = weights[:-2, 1:-1] + weights[2:, 1:-1] + weights[1:-1, :-2] + weights[1:-1, 2:]
        ring = ~known & (count > 0)
        image[ring] = total[ring] / count[ring]
        known |= ring
    return image
