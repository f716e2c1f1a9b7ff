"""Widening strokes thinner than MNIST's, so that a fine pen reaches the model as a pen stroke.

A 3 px pen on a 200 px digit would shrink to a faint 0.3 px line in MNIST's 20 px box; MNIST's
strokes are about an eighth of the box. The growth is sized from the stroke's own width, and
capped by the gaps between strokes so that a narrow 0's loop stays a loop
(docs/handwriting.md, "Preprocessing").
"""

from __future__ import annotations

import math

import numpy as np

# Stroke width over the longer side of the digit: MNIST's median is 0.125, its 10th percentile
# 0.09 (measured on x_train). Thinner drawings are thickened to the median before downscaling.
MNIST_STROKE_RATIO = 0.125
# Strokes are widened at about this many times the 20 px box (enough detail, little work).
THICKENING_SCALE = 3
# Widening grows each stroke by at most this share of the typical gap between strokes, so that
# (growing from both sides) half of a loop's or an opening's width stays open.
GAP_KEPT_OPEN = 0.25


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the ink area over its perimeter.

    A stroke of length L and width w has area L·w and perimeter about 2·L. Counting pixel edges
    measures the perimeter in city-block length, 4/π times the true length on average over
    directions (Crofton), hence the π/4.
    """
    padded = np.pad(mask, 1)
    edges = np.count_nonzero(padded[1:] != padded[:-1]) + np.count_nonzero(padded[:, 1:] != padded[:, :-1])
    return 2.0 * np.count_nonzero(mask) / (edges * np.pi / 4.0)


def widen_thin_strokes(cropped: np.ndarray, box: int) -> np.ndarray:
    """Widen strokes thinner than MNIST's, without closing a loop or merging two strokes.

    The growth is what the stroke's own width lacks to reach MNIST's ratio, but never more than
    a quarter of the digit's typical gap between strokes (so at least half of every such gap
    stays open). Large crops are max-pooled first (which keeps thin lines at full strength) so
    the dilation stays cheap. ``box`` is the side (px) the digit will be shrunk to. Returns ``cropped`` itself when the
    strokes are thick enough; otherwise the widened ink, possibly with empty margins to crop.
    """
    if _growth_radius(cropped > 0) < 1.0:
        return cropped
    pooled = _max_pool(cropped, max(1, max(cropped.shape) // (THICKENING_SCALE * box)))
    mask = pooled > 0
    radius = min(_growth_radius(mask), GAP_KEPT_OPEN * _typical_gap(mask))
    if radius <= 0.0:
        return cropped
    return _dilate(pooled, radius)


def _growth_radius(mask: np.ndarray) -> float:
    """How far to grow the strokes on each side (px) to reach MNIST's stroke ratio."""
    longer_side = max(mask.shape)
    width = stroke_width(mask)
    # Solve width + 2r = ratio · (longer_side + 2r) for r.
    return (MNIST_STROKE_RATIO * longer_side - width) / (2.0 * (1.0 - MNIST_STROKE_RATIO))


def _typical_gap(mask: np.ndarray) -> float:
    """The digit's typical gap between strokes (px): the smaller of the row-wise and column-wise
    medians of each line's widest background run between two inks (a loop's width, the space
    between a 4's arms). ``inf`` when no line crosses two strokes, as in a 1."""
    medians = [_median_widest_gap(lines) for lines in (mask, mask.T)]
    return min(medians)


def _median_widest_gap(lines: np.ndarray) -> float:
    """Median over the lines (rows of ``lines``) that have one of their widest inner background run."""
    ink = np.flatnonzero(lines)
    line = ink // lines.shape[1]
    gaps = np.diff(ink) - 1
    inner = (line[1:] == line[:-1]) & (gaps > 0)
    if not inner.any():
        return math.inf
    widest = np.zeros(lines.shape[0], np.int64)
    np.maximum.at(widest, line[1:][inner], gaps[inner])
    return float(np.median(widest[widest > 0]))


def _max_pool(image: np.ndarray, factor: int) -> np.ndarray:
    """The maximum of each factor×factor block (the image is zero-padded to whole blocks)."""
    if factor <= 1:
        return image
    height, width = (-(-side // factor) * factor for side in image.shape)
    padded = np.pad(image, ((0, height - image.shape[0]), (0, width - image.shape[1])))
    pooled = padded[::factor, ::factor].copy()
    for row in range(factor):
        for col in range(factor):
            np.maximum(pooled, padded[row::factor, col::factor], out=pooled)
    return pooled


def _dilate(image: np.ndarray, radius: float) -> np.ndarray:
    """Grey dilation by a near-octagon (alternating 3×3 cross and square steps).

    A square alone would widen diagonal strokes 1.4 times more than straight ones. A fractional
    radius blends the last two steps, so the width changes smoothly with the digit's size.
    """
    steps = max(0, math.ceil(radius))
    grown = np.pad(image, steps)
    before = grown
    for step in range(steps):
        before, grown = grown, _grow_one_pixel(grown, square=step % 2 == 1)
    last_step_weight = np.float32(radius - (steps - 1)) if steps else np.float32(0)
    return before + last_step_weight * (grown - before)


def _grow_one_pixel(image: np.ndarray, *, square: bool) -> np.ndarray:
    """One step of grey dilation by a 3×3 square or a 3×3 cross."""
    grown = image.copy()
    np.maximum(grown[1:], image[:-1], out=grown[1:])
    np.maximum(grown[:-1], image[1:], out=grown[:-1])
    # A square spreads the rows just grown sideways too; a cross spreads only the original.
    source = grown.copy() if square else image
    np.maximum(grown[:, 1:], source[:, :-1], out=grown[:, 1:])
    np.maximum(grown[:, :-1], source[:, 1:], out=grown[:, :-1])
    return grown
