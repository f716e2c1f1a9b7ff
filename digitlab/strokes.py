"""A drawing as the pad makes it: strokes (a pen width and the points it passed), not only pixels.

A heavy pen on a small digit fills the loops of an 8 and fuses a 1's flag with its stem. In the
pixels those holes are gone for good (thinning the picture cannot reopen them), but the strokes
still have them: redrawn with a pen sized to the digit the way MNIST's writers' pens were, the
drawing reaches the models with its shape intact. The Draw page reads a heavy drawing that way
(docs/handwriting.md, "Heavy pens redrawn from their strokes"); the hard-styles test sets are
rendered by the same code, so what is measured is what the page draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image, ImageDraw

# Over a fifth of the digit's longer side, a pen makes the shipped models read less surely
# (docs/handwriting.md, "A hint on the page instead"): such a drawing is redrawn.
HEAVY_PEN_RATIO = 0.2
# MNIST's median stroke is about 0.12 of the digit's longer side: the pen a heavy drawing gets.
MNIST_PEN_RATIO = 0.12
MIN_EXTENT = 10.0  # px: a dot or a speck is not redrawn (the preprocessing turns it away as it is)
MAX_STROKES = 500
MAX_POINTS = 20_000  # in all strokes: a busy drawing has a few hundred
MAX_WIDTH = 200.0  # px: the pad's brush goes to 40


@dataclass(frozen=True)
class Stroke:
    """One stroke of the pen: its width and the points it went through, in pad pixels."""

    width: float
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Drawing:
    """A drawing's strokes on a square pad of ``side`` pixels, white ink on black."""

    strokes: tuple[Stroke, ...]
    side: int

    @classmethod
    def from_message(cls, strokes: object, side: int) -> Drawing:
        """The strokes as the pad sends them: ``[{"width": w, "points": [x0, y0, x1, y1, …]}, …]``.

        Raises:
            ValueError: one line saying what is wrong (a browser's message is not trusted).
        """
        if not isinstance(strokes, list) or not strokes:
            raise ValueError("the strokes are not a list of strokes")
        if len(strokes) > MAX_STROKES:
            raise ValueError(f"a drawing of more than {MAX_STROKES} strokes is no digit")
        parsed, total = [], 0
        for stroke in strokes:
            width, flat = _stroke_fields(stroke)
            total += len(flat) // 2
            if total > MAX_POINTS:
                raise ValueError(f"a drawing of more than {MAX_POINTS:,} points is no digit")
            parsed.append(Stroke(width, tuple(zip(flat[::2], flat[1::2], strict=True))))
        return cls(tuple(parsed), side)

    @cached_property
    def extent(self) -> float:
        """The longer side of the box around the strokes' points (the pen not counted), in px;
        computed once, since the page asks for it, the pen ratio and the redraw in one rerun."""
        points = np.array([point for stroke in self.strokes for point in stroke.points], np.float64)
        return float((points.max(axis=0) - points.min(axis=0)).max())

    @property
    def pen_ratio(self) -> float:
        """The widest pen over the digit's longer side as drawn (pen included): MNIST's is about 0.12."""
        widest = max(stroke.width for stroke in self.strokes)
        return widest / (self.extent + widest)

    @property
    def is_heavy(self) -> bool:
        """True when the pen is heavy for the digit's size and the drawing is more than a dot."""
        return self.extent >= MIN_EXTENT and self.pen_ratio > HEAVY_PEN_RATIO

    def with_pen_ratio(self, ratio: float) -> Drawing:
        """The same strokes with every pen scaled so that the widest is ``ratio`` of the digit."""
        widest = max(stroke.width for stroke in self.strokes)
        scale = ratio * self.extent / (1.0 - ratio) / widest
        return Drawing(tuple(Stroke(stroke.width * scale, stroke.points) for stroke in self.strokes), self.side)

    def for_reading(self) -> Drawing:
        """What the models should read: a heavy drawing with MNIST's pen, any other as it is."""
        return self.with_pen_ratio(MNIST_PEN_RATIO) if self.is_heavy else self

    def picture(self) -> np.ndarray:
        """The drawing as the pad shows it: (side, side) uint8, white ink on black."""
        return draw_strokes(self.strokes, self.side)


def draw_strokes(strokes: Sequence[Stroke], side: int) -> np.ndarray:
    """Strokes drawn with a round pen on a black square of ``side`` px: (side, side) uint8."""
    pad = Image.new("L", (side, side), 0)
    drawing = ImageDraw.Draw(pad)
    for stroke in strokes:
        width = max(1, round(stroke.width))
        path = [(float(x), float(y)) for x, y in stroke.points]
        if len(path) > 1:
            drawing.line(path, fill=255, width=width, joint="curve")
        for end in (path[0], path[-1]):  # a round pen's caps (a single point is a dot)
            drawing.ellipse([end[0] - width / 2, end[1] - width / 2, end[0] + width / 2, end[1] + width / 2],
                            fill=255)
    return np.asarray(pad)


def _stroke_fields(stroke: object) -> tuple[float, list[float]]:
    """(width, flat coordinates) of one stroke of a message, checked."""
    if not isinstance(stroke, dict):
        raise ValueError("a stroke is not a {width, points} object")
    width, flat = stroke.get("width"), stroke.get("points")
    if not _is_number(width) or not 0 < width <= MAX_WIDTH:
        raise ValueError(f"a stroke's width is not a number of pixels from 0 to {MAX_WIDTH:.0f}")
    if not isinstance(flat, list) or not flat or len(flat) % 2:
        raise ValueError("a stroke's points are not a flat list of x, y pairs")
    if not all(_is_number(value) and abs(value) <= 1e6 for value in flat):
        raise ValueError("a stroke's points are not all finite numbers")
    return float(width), [float(value) for value in flat]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
