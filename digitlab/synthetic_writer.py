"""A synthetic writer whose style MNIST lacks: continental 1s and crossed 7s, drawn like pad pictures.

MNIST's writers were mostly American: their 1 is a bare stroke and their 7 has no bar. Many
Europeans write a 1 with a long up-stroke (a flag) and cross their 7s. This module draws such a
writer's digits stroke by stroke on a 280×280 black pad with a round white brush, each one
jittered (tilt, size, slant, position, brush width, wobble), so fine-tuning can be measured on a
style the base models have not seen, without collecting real drawings.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

PAD_SIDE = 280

Stroke = list[tuple[float, float]]  # points in the unit square, x right, y down


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, steps: int = 24) -> Stroke:
    """Points along an ellipse from angle ``start`` to ``end`` (degrees, 0 = right, 90 = down)."""
    angles = np.radians(np.linspace(start, end, steps))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def digit_strokes(digit: int, rng: np.random.Generator) -> list[Stroke]:
    """The strokes of one digit in this writer's style, with small random variations of shape."""
    wobble = rng.uniform(-0.03, 0.03, size=4)
    if digit == 0:
        return [_arc(0.5, 0.5, 0.2 + wobble[0], 0.34, -90, 275)]
    if digit == 1:  # continental: a long flag up to the top, then straight down
        flag = rng.uniform(0.2, 0.3)
        return [[(0.55 - flag, 0.12 + flag * rng.uniform(0.7, 1.1)), (0.55, 0.1), (0.55 + wobble[0], 0.9)]]
    if digit == 2:
        return [_arc(0.5, 0.33, 0.2, 0.18, 180, 360) + [(0.3 + wobble[0], 0.86), (0.74, 0.86 + wobble[1])]]
    if digit == 3:
        return [_arc(0.48, 0.3, 0.19, 0.17, 200, 450) + _arc(0.48, 0.68, 0.22, 0.2, 270, 520)]
    if digit == 4:
        return [[(0.55, 0.1), (0.25 + wobble[0], 0.62), (0.8, 0.62)], [(0.62, 0.32), (0.62 + wobble[1], 0.9)]]
    if digit == 5:
        return [[(0.72, 0.12), (0.36, 0.12 + wobble[0]), (0.33, 0.46)] + _arc(0.48, 0.64, 0.22, 0.22, 230, 490)]
    if digit == 6:
        return [[(0.66, 0.1), (0.46, 0.3)] + _arc(0.5, 0.67, 0.2, 0.2, 200, 560)]
    if digit == 7:  # crossed, as on the continent
        top = 0.14 + wobble[0]
        return [[(0.26, top), (0.76, top), (0.44 + wobble[1], 0.9)], [(0.36, 0.52), (0.7, 0.52 + wobble[2])]]
    if digit == 8:
        return [_arc(0.5, 0.3, 0.16, 0.17, 90, 450), _arc(0.5, 0.68, 0.2, 0.21, -90, 270)]
    if digit == 9:
        return [_arc(0.5, 0.32, 0.19, 0.19, 0, 360), [(0.69, 0.32), (0.66 + wobble[0], 0.9)]]
    raise ValueError(f"not a digit: {digit!r}")


def _transform(strokes: list[Stroke], rng: np.random.Generator) -> list[Stroke]:
    """Tilt, scale, slant and shift the strokes about the pad's centre, and wobble each point."""
    angle = math.radians(rng.uniform(-10, 10))
    scale = rng.uniform(0.75, 1.05)
    slant = rng.uniform(-0.2, 0.2)
    shift = rng.uniform(-0.08, 0.08, size=2)
    cos, sin = math.cos(angle), math.sin(angle)
    moved = []
    for stroke in strokes:
        points = []
        for x, y in stroke:
            x, y = (x - 0.5) * scale, (y - 0.5) * scale
            x += slant * y
            x, y = cos * x - sin * y, sin * x + cos * y
            jitter = rng.normal(0, 0.006, size=2)
            points.append((x + 0.5 + shift[0] + jitter[0], y + 0.5 + shift[1] + jitter[1]))
        moved.append(points)
    return moved


def draw_digit(digit: int, rng: np.random.Generator, side: int = PAD_SIDE) -> np.ndarray:
    """One digit as the pad would send it: (side, side) uint8, white ink on black."""
    image = Image.new("L", (side, side), 0)
    pen = ImageDraw.Draw(image)
    width = int(rng.integers(16, 27)) * side // PAD_SIDE
    for stroke in _transform(digit_strokes(digit, rng), rng):
        points = [(x * side, y * side) for x, y in stroke]
        pen.line(points, fill=255, width=width, joint="curve")
        for x, y in (points[0], points[-1]):  # round caps, as a round brush leaves
            pen.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)
    return np.asarray(image)


def synthetic_writer(per_digit: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``per_digit`` drawings of each digit 0–9: (N, 280, 280) uint8 pictures and (N,) labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_digit)
    pictures = np.stack([draw_digit(int(label), rng) for label in labels])
    return pictures, labels.astype(np.int64)
