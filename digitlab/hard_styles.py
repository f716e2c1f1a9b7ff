"""A third test set: 36 ways of writing digits, drawn on the pad, that MNIST's writers rarely use.

MNIST's test set shares its writers with the training set, and the UCI digits are small scans;
neither shows what the app meets when a person from elsewhere draws: the continental 1 with its
flag and base, crossed 7s, upright 7s with a short bar, open- and closed-top 4s, very narrow and
very wide digits. Each style here is a stroke template of its own (polylines and arcs in a unit
box, not the training's transforms of MNIST digits, so the figure measures generalisation). Every
picture is rendered like the Draw page's pad: white ink on a 280×280 black field, at a random
size, place, angle, slant and pen width, with the template's points jittered a little. A fixed
seed makes the set the same on every machine, and no model ever trains on it. A second set draws
the same styles small with a heavy pen (``load_heavy_pen_styles``), as a felt pen or a wide brush
on a small digit does; the Draw page, which has a drawing's strokes, reads those redrawn with
MNIST's pen (``as_the_pad_reads``).
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image

from digitlab.evaluation import Evaluation
from digitlab.other_handwriting import OtherDigits, model_inputs, read_only
from digitlab.strokes import Drawing, Stroke

NAME = "hard styles (36 drawn styles, 280×280 pad)"
HEAVY_NAME = "hard styles, heavy pen (the 36 styles drawn small with a 26–36 px pen)"
HEAVY_PAD_NAME = "hard styles, heavy pen, as the Draw page reads them (redrawn from their strokes)"
PAD_SIDE = 280
PICTURES_PER_STYLE = 30
SEED = 2026
HEAVY_SEED = 2027
ROTATION_DEGREES = 12.0
SLANT_DEGREES = 8.0
WIDTH_JITTER = (0.85, 1.15)
POINT_JITTER = 0.015  # of the height, per template point
MARGIN = 6  # px kept free around the digit

Polyline = list[tuple[float, float]]


@dataclass(frozen=True)
class Pen:
    """How big the digits are drawn and with how wide a pen, in pad pixels (uniform ranges)."""

    heights: tuple[float, float]
    widths: tuple[float, float]


REGULAR_PEN = Pen(heights=(100.0, 240.0), widths=(5.0, 22.0))
# A felt pen, or a small digit drawn with a wide brush: strokes a fifth to a half of the digit's
# height, where MNIST's are about an eighth (the UCI scans' median is about a fifth).
HEAVY_PEN = Pen(heights=(70.0, 130.0), widths=(26.0, 36.0))


@dataclass(frozen=True)
class Style:
    """One way of writing one digit: strokes in a box of height 1 (x right, y down)."""

    name: str
    label: int
    strokes: tuple[Polyline, ...]


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, points: int = 24) -> Polyline:
    """Points along an ellipse from ``start`` to ``end`` degrees (0 = right, 90 = down)."""
    angles = np.radians(np.linspace(start, end, points))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def _styles() -> tuple[Style, ...]:
    s = Style
    return (
        s("oval 0", 0, (arc(0.3, 0.5, 0.3, 0.5, -90, 275),)),
        s("narrow 0", 0, (arc(0.13, 0.5, 0.13, 0.5, -90, 275),)),
        s("round 0", 0, (arc(0.45, 0.5, 0.45, 0.5, -90, 275),)),
        s("0 with an overlapping start", 0, (arc(0.3, 0.5, 0.28, 0.48, -120, 300),)),
        s("bare 1", 1, ([(0.5, 0.0), (0.5, 1.0)],)),
        s("1 with a short steep flag", 1, ([(0.22, 0.25), (0.5, 0.0), (0.5, 1.0)],)),
        s("continental 1, long flag", 1, ([(0.1, 0.22), (0.5, 0.0), (0.5, 1.0)],)),
        s("continental 1 with a base", 1, ([(0.15, 0.2), (0.5, 0.0), (0.5, 1.0)], [(0.2, 1.0), (0.8, 1.0)])),
        s("1 with a base only", 1, ([(0.5, 0.0), (0.5, 1.0)], [(0.25, 1.0), (0.75, 1.0)])),
        s("round 2", 2, (arc(0.3, 0.28, 0.3, 0.28, 180, 390)[:-6] + [(0.0, 1.0), (0.62, 1.0)],)),
        s("2 with a loop", 2, (arc(0.3, 0.28, 0.3, 0.28, 180, 380) + [(0.05, 0.95)]
                               + arc(0.14, 0.9, 0.1, 0.1, 270, 90)[8:] + [(0.65, 0.96)],)),
        s("angular 2", 2, ([(0.0, 0.05), (0.6, 0.05), (0.0, 1.0), (0.6, 1.0)],)),
        s("round 3", 3, (arc(0.28, 0.25, 0.28, 0.25, 200, 450) + arc(0.28, 0.74, 0.32, 0.26, 270, 520)[1:],)),
        s("flat-top 3", 3, ([(0.0, 0.0), (0.6, 0.0), (0.25, 0.4)] + arc(0.28, 0.68, 0.32, 0.3, 270, 520)[1:],)),
        s("open-top 4", 4, ([(0.1, 0.0), (0.0, 0.65), (0.7, 0.65)], [(0.5, 0.1), (0.5, 1.0)])),
        s("closed-top 4", 4, ([(0.55, 1.0), (0.55, 0.0), (0.0, 0.68), (0.75, 0.68)],)),
        s("open-top 4, slanted arm", 4, ([(0.28, 0.0), (0.0, 0.6), (0.72, 0.6)], [(0.55, 0.15), (0.5, 1.0)])),
        s("5", 5, ([(0.6, 0.0), (0.08, 0.0), (0.05, 0.42)] + arc(0.28, 0.68, 0.3, 0.3, 240, 500)[1:],)),
        s("5 with a detached bar", 5, ([(0.08, 0.05), (0.05, 0.45)] + arc(0.28, 0.7, 0.3, 0.28, 240, 500)[1:],
                                       [(0.1, 0.0), (0.62, 0.02)])),
        s("6", 6, ([(0.55, 0.02), (0.25, 0.18), (0.05, 0.45)] + arc(0.3, 0.72, 0.28, 0.27, 190, 540),)),
        s("narrow 6", 6, ([(0.3, 0.0), (0.0, 0.62)] + arc(0.14, 0.77, 0.14, 0.23, 180, 540),)),
        s("6 with a straight back", 6, ([(0.4, 0.0), (0.02, 0.72)] + arc(0.28, 0.75, 0.28, 0.25, 180, 540),)),
        s("7", 7, ([(0.0, 0.0), (0.65, 0.0), (0.2, 1.0)],)),
        s("crossed 7", 7, ([(0.0, 0.0), (0.65, 0.0), (0.25, 1.0)], [(0.18, 0.5), (0.62, 0.48)])),
        s("upright 7, short bar", 7, ([(0.2, 0.02), (0.5, 0.0), (0.5, 1.0)],)),
        s("7 with a curved stem", 7, ([(0.0, 0.0), (0.65, 0.0)] + [(0.65 - 0.42 * t + 0.12 * math.sin(math.pi * t),
                                                                t) for t in np.linspace(0.05, 1.0, 12)],)),
        s("7 with a hooked bar", 7, ([(0.0, 0.15), (0.04, 0.0), (0.65, 0.0), (0.25, 1.0)],)),
        s("8, two loops", 8, (arc(0.3, 0.23, 0.24, 0.23, 90, 450), arc(0.3, 0.73, 0.3, 0.27, -90, 270))),
        s("narrow 8", 8, (arc(0.12, 0.24, 0.11, 0.24, 90, 450), arc(0.12, 0.74, 0.13, 0.26, -90, 270))),
        s("8 in one stroke", 8, (arc(0.3, 0.23, 0.24, 0.22, -30, -180) + [(0.3, 0.47)]
                                 + arc(0.3, 0.73, 0.3, 0.26, -90, 250) + [(0.55, 0.08)],)),
        s("9 with a straight stem", 9, (arc(0.3, 0.27, 0.3, 0.27, 0, 360), [(0.6, 0.27), (0.6, 1.0)])),
        s("9 with a curved stem", 9, (arc(0.3, 0.27, 0.3, 0.27, 0, 360) + [(0.55, 0.7), (0.3, 1.0)],)),
        s("narrow 9", 9, (arc(0.14, 0.25, 0.14, 0.25, 0, 360) + [(0.25, 1.0)],)),
        s("wide 2", 2, (arc(0.45, 0.3, 0.45, 0.3, 190, 380)[:-4] + [(0.0, 1.0), (0.95, 1.0)],)),
        s("wide 5", 5, ([(0.9, 0.0), (0.1, 0.0), (0.08, 0.45)] + arc(0.45, 0.7, 0.45, 0.3, 240, 500)[1:],)),
        s("wide 9", 9, (arc(0.45, 0.3, 0.45, 0.3, 0, 360), [(0.9, 0.3), (0.85, 1.0)])),
    )


STYLES = _styles()


def render(style: Style, rng: np.random.Generator, pen_kind: Pen = REGULAR_PEN) -> np.ndarray:
    """One picture of ``style`` on the pad: (280, 280) uint8, white ink on black."""
    return draw(style, rng, pen_kind).picture()


def draw(style: Style, rng: np.random.Generator, pen_kind: Pen = REGULAR_PEN) -> Drawing:
    """One drawing of ``style`` as the pad would hold it: its strokes at a random size, place,
    angle, slant and pen width, with the template's points jittered a little."""
    height = rng.uniform(*pen_kind.heights)
    widen = rng.uniform(*WIDTH_JITTER)
    rotation = math.radians(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES))
    slant = math.tan(math.radians(rng.uniform(-SLANT_DEGREES, SLANT_DEGREES)))
    pen = rng.uniform(*pen_kind.widths)
    strokes = []
    for stroke in style.strokes:
        points = np.asarray(stroke, np.float64) + _smooth_jitter(rng, len(stroke))
        x, y = points[:, 0] * widen, points[:, 1]
        x = x - slant * (y - 0.5)
        rotated = np.stack([x * math.cos(rotation) - y * math.sin(rotation),
                            x * math.sin(rotation) + y * math.cos(rotation)], axis=1)
        strokes.append(rotated * height)
    every = np.concatenate(strokes)
    low, high = every.min(axis=0), every.max(axis=0)
    # Shrink a digit that would not fit the pad, then place it anywhere it fits.
    room = PAD_SIDE - 2 * MARGIN - pen
    fit = min(1.0, room / max(float((high - low).max()), 1.0))
    lowest = MARGIN + pen / 2 - low * fit
    highest = np.maximum(PAD_SIDE - MARGIN - pen / 2 - high * fit, lowest)
    offset = [rng.uniform(lowest[axis], highest[axis]) for axis in (0, 1)]
    placed = (tuple((float(px * fit + offset[0]), float(py * fit + offset[1])) for px, py in stroke)
              for stroke in strokes)
    return Drawing(tuple(Stroke(pen, points) for points in placed), PAD_SIDE)


def _smooth_jitter(rng: np.random.Generator, points: int) -> np.ndarray:
    """Random (points, 2) offsets that vary smoothly along a stroke, as a hand wavers."""
    noise = rng.normal(0.0, POINT_JITTER * 2.0, (points + 8, 2))
    kernel = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0]) / 16.0
    smooth = np.stack([np.convolve(noise[:, axis], kernel, mode="same") for axis in (0, 1)], axis=1)
    return smooth[4 : 4 + points]


@functools.cache
def load_hard_styles(pictures_per_style: int = PICTURES_PER_STYLE, seed: int = SEED, *,
                     pen_kind: Pen = REGULAR_PEN, name: str = NAME, as_the_pad_reads: bool = False) -> OtherDigits:
    """The hard-styles set as pictures and as 28×28 model inputs (the same every time for a seed,
    so it is drawn once per process, about 3 s, and shared read-only).

    With ``as_the_pad_reads``, each drawing is the picture the Draw page reads for it: a drawing
    whose pen is heavy for its size is redrawn from its strokes with MNIST's pen
    (``Drawing.for_reading``); the others are unchanged.

    Returns:
        ``OtherDigits`` with ``len(STYLES) × pictures_per_style`` pictures, style by style.
    """
    rng = np.random.default_rng(seed)
    drawings = [draw(style, rng, pen_kind) for style in STYLES for _ in range(pictures_per_style)]
    pictures = np.stack([(drawing.for_reading() if as_the_pad_reads else drawing).picture() for drawing in drawings])
    labels = np.repeat([style.label for style in STYLES], pictures_per_style).astype(np.uint8)
    images = model_inputs(pictures)
    return read_only(OtherDigits(name, pictures, images, labels))


def load_heavy_pen_styles(pictures_per_style: int = PICTURES_PER_STYLE, seed: int = HEAVY_SEED, *,
                          as_the_pad_reads: bool = False) -> OtherDigits:
    """The same 36 styles drawn small with a heavy pen (``HEAVY_PEN``), in the same order: what a
    felt pen, or a wide brush on a small digit, hands the models. With ``as_the_pad_reads``, what
    the Draw page hands them for the same drawings: each redrawn from its strokes with MNIST's pen."""
    name = HEAVY_PAD_NAME if as_the_pad_reads else HEAVY_NAME
    return load_hard_styles(pictures_per_style, seed, pen_kind=HEAVY_PEN, name=name, as_the_pad_reads=as_the_pad_reads)


def style_names(pictures_per_style: int = PICTURES_PER_STYLE) -> list[str]:
    """The style of each picture of ``load_hard_styles``, in the same order."""
    return [style.name for style in STYLES for _ in range(pictures_per_style)]


@dataclass(frozen=True)
class StyleMisread:
    """How often the pictures of one style were read as one wrong digit."""

    style: str
    label: int
    read_as: int
    count: int
    of: int  # pictures of that style


def misreads_by_style(evaluation: Evaluation, pictures_per_style: int = PICTURES_PER_STYLE) -> list[StyleMisread]:
    """The evaluation's mistakes grouped by style and wrong answer, most frequent first."""
    names = style_names(pictures_per_style)
    counts = Counter((names[m.index], m.label, m.predicted) for m in evaluation.mistakes)
    return [StyleMisread(style, label, read_as, count, pictures_per_style)
            for (style, label, read_as), count in counts.most_common()]


def contact_sheet(pictures_per_style: int = 6, seed: int = SEED, cell: int = 56) -> np.ndarray:
    """A grid of the first pictures of every style (one style a row, in two halves side by side),
    each pad shrunk to ``cell`` px with a grey frame: uint8, for the docs and the Evaluate page."""
    rng = np.random.default_rng(seed)
    frame = 80
    rows = []
    for style in STYLES:
        cells = [np.asarray(Image.fromarray(render(style, rng)).resize((cell, cell), Image.Resampling.BOX))
                 for _ in range(pictures_per_style)]
        rows.append(np.concatenate([np.pad(picture, 1, constant_values=frame) for picture in cells], axis=1))
    half = (len(rows) + 1) // 2
    left, right = np.concatenate(rows[:half]), np.concatenate(rows[half:])
    right = np.pad(right, ((0, left.shape[0] - right.shape[0]), (0, 0)))
    gutter = np.full((left.shape[0], cell // 4), 255, np.uint8)
    return np.concatenate([left, gutter, right], axis=1)

