"""Drawings that are not digits: letters, crosses, circles with spokes, filled blobs, scribbles.

A seeded generator of the things people draw on a digit pad when they test it, rendered like the
Draw page's pad (280×280, white ink on black, a round brush). They measure how often the "not a
digit" detector catches a non-digit; real digits (MNIST, UCI) measure its false alarms.

Letters that are also digit shapes (O, I, l, S, Z, B, G, q) are left out on purpose: no detector
can tell an "O" from a "0".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

CANVAS_SIZE = 280
BRUSH_RANGE = (14, 30)  # px: the Draw page's brush slider spans 6–40 and starts at 22
KINDS = ("letter", "cross", "spoked circle", "blob", "scribble")
# Capital letters as strokes in a unit box (x right, y down); none of them is a digit's shape.
LETTERS: dict[str, tuple[tuple[tuple[float, float], ...], ...]] = {
    "A": (((0.1, 1.0), (0.5, 0.0), (0.9, 1.0)), ((0.28, 0.6), (0.72, 0.6))),
    "E": (((0.85, 0.0), (0.15, 0.0), (0.15, 1.0), (0.85, 1.0)), ((0.15, 0.5), (0.7, 0.5))),
    "F": (((0.85, 0.0), (0.15, 0.0), (0.15, 1.0)), ((0.15, 0.5), (0.7, 0.5))),
    "H": (((0.15, 0.0), (0.15, 1.0)), ((0.85, 0.0), (0.85, 1.0)), ((0.15, 0.5), (0.85, 0.5))),
    "K": (((0.2, 0.0), (0.2, 1.0)), ((0.85, 0.0), (0.2, 0.55)), ((0.4, 0.4), (0.85, 1.0))),
    "M": (((0.05, 1.0), (0.15, 0.0), (0.5, 0.6), (0.85, 0.0), (0.95, 1.0)),),
    "N": (((0.15, 1.0), (0.15, 0.0), (0.85, 1.0), (0.85, 0.0)),),
    "R": (((0.2, 1.0), (0.2, 0.0), (0.7, 0.05), (0.8, 0.28), (0.7, 0.5), (0.2, 0.5)), ((0.45, 0.5), (0.85, 1.0))),
    "W": (((0.0, 0.0), (0.25, 1.0), (0.5, 0.4), (0.75, 1.0), (1.0, 0.0)),),
    "Y": (((0.1, 0.0), (0.5, 0.5), (0.9, 0.0)), ((0.5, 0.5), (0.5, 1.0))),
    "P": (((0.2, 1.0), (0.2, 0.0), (0.7, 0.05), (0.8, 0.28), (0.7, 0.5), (0.2, 0.5)),),
    "C": (tuple((0.5 + 0.45 * math.cos(a), 0.5 + 0.5 * math.sin(a))
                for a in np.linspace(math.radians(40), math.radians(320), 12)),),
    "D": (((0.2, 0.0), (0.2, 1.0)), tuple((0.2 + 0.6 * math.sin(a), 0.5 - 0.5 * math.cos(a))
                                          for a in np.linspace(0, math.pi, 12))),
    "U": (tuple((0.5 - 0.4 * math.cos(a), 0.6 + 0.4 * math.sin(a)) for a in np.linspace(0, math.pi, 12))
          + ((0.9, 0.0),), ((0.1, 0.0), (0.1, 0.6))),
    "V": (((0.1, 0.0), (0.5, 1.0), (0.9, 0.0)),),
    "L": (((0.2, 0.0), (0.2, 1.0), (0.85, 1.0)),),
}


@dataclass(frozen=True)
class NonDigit:
    """One generated drawing and what it is."""

    kind: str  # one of KINDS
    label: str  # e.g. "letter K", "cross", "blob"
    picture: np.ndarray  # (280, 280) uint8, ink bright on black, like the pad's luminance


def generate(count: int, seed: int = 0) -> list[NonDigit]:
    """``count`` drawings, the kinds in turn, reproducible from ``seed``."""
    if count < 0:
        raise ValueError(f"count must be ≥ 0, got {count}")
    rng = np.random.default_rng(seed)
    makers = {"letter": _letter, "cross": _cross, "spoked circle": _spoked_circle, "blob": _blob,
              "scribble": _scribble}
    drawings = []
    for number in range(count):
        kind = KINDS[number % len(KINDS)]
        label, strokes, filled = makers[kind](rng)
        drawings.append(NonDigit(kind, label, _render(strokes, filled, rng)))
    return drawings


def _letter(rng: np.random.Generator):
    letter = list(LETTERS)[int(rng.integers(len(LETTERS)))]
    return f"letter {letter}", [list(stroke) for stroke in LETTERS[letter]], False


def _cross(rng: np.random.Generator):
    tilt = rng.uniform(-0.25, 0.25) + (math.pi / 4 if rng.random() < 0.6 else 0.0)  # an X or a +
    strokes = []
    for angle in (tilt, tilt + math.pi / 2 + rng.uniform(-0.2, 0.2)):
        dx, dy = 0.5 * math.cos(angle), 0.5 * math.sin(angle)
        strokes.append([(0.5 - dx, 0.5 - dy), (0.5 + dx, 0.5 + dy)])
    return "cross", strokes, False


def _spoked_circle(rng: np.random.Generator):
    ring = [(0.5 + 0.5 * math.cos(a), 0.5 + 0.5 * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 33)]
    spokes = int(rng.integers(3, 9))
    start = rng.uniform(0, 2 * math.pi)
    strokes = [ring] + [[(0.5, 0.5), (0.5 + 0.5 * math.cos(a), 0.5 + 0.5 * math.sin(a))]
                        for a in start + np.arange(spokes) * 2 * math.pi / spokes]
    return "spoked circle", strokes, False


def _blob(rng: np.random.Generator):
    corners = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
    radii = rng.uniform(0.25, 0.5, corners)
    outline = [(0.5 + r * math.cos(a), 0.5 + r * math.sin(a)) for a, r in zip(angles, radii, strict=True)]
    return "blob", [outline], True


def _scribble(rng: np.random.Generator):
    strokes = [[tuple(point) for point in rng.uniform(0, 1, (int(rng.integers(4, 9)), 2))]
               for _ in range(int(rng.integers(1, 4)))]
    return "scribble", strokes, False


def _render(strokes, filled: bool, rng: np.random.Generator) -> np.ndarray:
    """Strokes in a unit box, placed at a random size, offset and slant on a black pad."""
    side = rng.uniform(0.45, 0.8) * CANVAS_SIZE
    aspect = rng.uniform(0.75, 1.25)
    width, height = side * min(1.0, aspect), side * min(1.0, 1 / aspect)
    left = rng.uniform(0.08 * CANVAS_SIZE, CANVAS_SIZE * 0.92 - width)
    top = rng.uniform(0.08 * CANVAS_SIZE, CANVAS_SIZE * 0.92 - height)
    slant = rng.uniform(-0.2, 0.2)
    brush = int(rng.integers(*BRUSH_RANGE))
    picture = Image.new("L", (CANVAS_SIZE, CANVAS_SIZE), 0)
    pen = ImageDraw.Draw(picture)
    for stroke in strokes:
        points = [(left + (x + slant * (0.5 - y)) * width + rng.normal(0, 2),
                   top + y * height + rng.normal(0, 2)) for x, y in stroke]
        if filled:
            pen.polygon(points, fill=255)
        pen.line(points, fill=255, width=brush, joint="curve")
        for x, y in (points[0], points[-1]):  # round pen ends, like the pad's
            pen.ellipse((x - brush / 2, y - brush / 2, x + brush / 2, y + brush / 2), fill=255)
    return np.asarray(picture)
