"""Pictures for people: enlarge 28×28 inputs without blurring, lay saliency over a digit.

A browser scales a 28×28 image up with smoothing, which hides the very pixels a learner should
see; these helpers enlarge by repeating pixels instead. Everything returns ``uint8`` arrays ready
for ``st.image`` or PIL.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# How strongly the heat map covers the digit where saliency is highest (0..1).
HEAT_OPACITY = 0.75
# The digit under a heat map is dimmed so the colours stay readable.
DIGIT_BRIGHTNESS = 0.6


def to_uint8(image: np.ndarray) -> np.ndarray:
    """A float [0, 1] (or uint8) picture as uint8 0..255."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        return array
    return np.rint(np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


def enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """Scale a (H, W) or (H, W, C) picture so its longer side is about ``size`` pixels.

    Small pictures are enlarged by repeating each pixel a whole number of times (crisp pixels);
    pictures already larger than ``size`` are returned unchanged.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    pixels = to_uint8(image)
    factor = max(1, size // max(pixels.shape[:2]))
    return np.repeat(np.repeat(pixels, factor, axis=0), factor, axis=1)


def png_data_url(image: np.ndarray) -> str:
    """A picture as a ``data:image/png;base64,…`` address, for a chart that draws pictures."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def tile(image: np.ndarray, size: int) -> np.ndarray:
    """A grey picture fitted into a black ``size``×``size`` square, centred.

    Small pictures grow by whole-pixel repetition as in ``enlarge``; larger ones shrink with
    area averaging, so a 280 px canvas and a 28 px input can sit side by side at one size.
    """
    pixels = enlarge(image, size)
    if max(pixels.shape[:2]) > size:
        height, width = pixels.shape[:2]
        scale = size / max(height, width)
        shrunk = Image.fromarray(pixels).resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                                Image.Resampling.BOX)
        pixels = np.asarray(shrunk)
    square = np.zeros((size, size), np.uint8)
    top, left = (size - pixels.shape[0]) // 2, (size - pixels.shape[1]) // 2
    square[top:top + pixels.shape[0], left:left + pixels.shape[1]] = pixels
    return square


def strip(images: list[np.ndarray], size: int, gap: int = 8, gap_colour: int = 128) -> np.ndarray:
    """Grey pictures as ``size``-pixel tiles in one row, separated by ``gap`` grey pixels.

    One image instead of several keeps a page light: one element and one download, not five.
    """
    if not images:
        raise ValueError("strip needs at least one picture")
    separator = np.full((size, gap), gap_colour, np.uint8)
    row: list[np.ndarray] = []
    for image in images:
        row += [separator, tile(image, size)] if row else [tile(image, size)]
    return np.concatenate(row, axis=1)


def map_grid(maps: np.ndarray, columns: int = 8, cell: int = 48, gap: int = 2) -> np.ndarray:
    """(count, h, w) pictures in [0, 1] as one uint8 grid image, ``columns`` wide, each ``cell`` px.

    One image per layer, not one per map: a page with 64 small images per stroke is slow to send.
    Pixels are repeated, not smoothed, so a 7×7 map still shows its 49 values.
    """
    if maps.ndim != 3 or len(maps) == 0:
        raise ValueError(f"need a (count, height, width) stack of pictures, got shape {maps.shape}")
    count, height, width = maps.shape
    factor = max(1, cell // max(height, width))
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    tile_h, tile_w = height * factor, width * factor
    grid = np.full((rows * (tile_h + gap) - gap, columns * (tile_w + gap) - gap), 96, np.uint8)
    pixels = np.rint(np.clip(maps, 0, 1) * 255).astype(np.uint8)
    for number in range(count):
        row, column = divmod(number, columns)
        top, left = row * (tile_h + gap), column * (tile_w + gap)
        grid[top:top + tile_h, left:left + tile_w] = np.repeat(np.repeat(pixels[number], factor, 0), factor, 1)
    return grid


def heat_overlay(image: np.ndarray, heat: np.ndarray, size: int = 280) -> np.ndarray:
    """The digit in grey with ``heat`` (same shape, [0, 1]) on top in warm colours, RGB uint8.

    Low heat is transparent, so the digit shows through; high heat is bright yellow over red.
    """
    gray = to_uint8(image).astype(np.float32) / 255.0
    heat = np.clip(np.asarray(heat, np.float32), 0.0, 1.0)
    if gray.shape != heat.shape:
        raise ValueError(f"image {gray.shape} and heat map {heat.shape} differ in shape")
    base = np.repeat((gray * DIGIT_BRIGHTNESS)[..., np.newaxis], 3, axis=2)
    colour = np.stack([np.ones_like(heat), heat, np.zeros_like(heat)], axis=2)  # red → yellow
    alpha = (HEAT_OPACITY * heat)[..., np.newaxis]
    return enlarge(base * (1.0 - alpha) + colour * alpha, size)


def confusion_styles(confusion: list[list[int]] | np.ndarray) -> list[list[str]]:
    """CSS backgrounds for a confusion-matrix table: green diagonal, red mistakes by count.

    Mistakes are shaded on a log scale, so a cell with 3 errors is visible next to one with 40.
    """
    matrix = np.asarray(confusion, dtype=np.float64)
    off_diagonal = matrix * (1 - np.eye(len(matrix)))
    peak = np.log1p(off_diagonal.max(initial=0.0))
    styles = []
    for row in range(len(matrix)):
        line = []
        for col in range(len(matrix)):
            if row == col:
                line.append("background-color: rgba(46, 160, 67, 0.35)")
            elif matrix[row, col] > 0 and peak > 0:
                strength = 0.12 + 0.78 * np.log1p(matrix[row, col]) / peak
                line.append(f"background-color: rgba(228, 87, 46, {strength:.2f})")
            else:
                line.append("")
        styles.append(line)
    return styles
