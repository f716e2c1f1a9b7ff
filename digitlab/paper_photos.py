"""A fourth test set: MNIST's test digits as phone photos of ink on paper, in nine scenes.

People upload photos of digits written on paper, and a photo is rarely of a blank page evenly
lit: a lamp on one side, the phone's own shadow, darker corners, a school exercise book's
squares or lines. This set writes each of the first MNIST test digits in dark ink on a page
(its grey levels as the pen's pressure), at a random size and place, and photographs it in each
scene: even light, a shadow across the page, a deep shadow, a dim room with a shadow, darker
corners, squared paper, ruled paper under a shadow, a close-up under a shadow (the digit filling
the frame, its strokes touching the edges), and a sheet lying on a darker desk, with a little blur
and sensor noise. A fixed seed makes it the same everywhere, and no model trains on it. What it
measures is the preprocessing's part of reading a photo (:mod:`digitlab.lighting`,
:mod:`digitlab.sheet`); the writers are MNIST's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from digitlab.evaluation import Evaluation
from digitlab.other_handwriting import OtherDigits, model_inputs

NAME = "paper photos (MNIST test digits on paper, 9 scenes)"
SIDE = 240  # px: the photo
DIGIT_HEIGHT = (110.0, 190.0)  # px: the digit's 28×28 field on the page
INK = (0.08, 0.2)  # the ink's brightness relative to the paper under it
NOISE = (0.005, 0.025)  # sensor noise, standard deviation
DIGITS = 200
SEED = 2027


def _even(rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.full(rows.shape, rng.uniform(0.8, 0.95))


def _ramp(rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator, low: tuple[float, float],
          high: tuple[float, float]) -> np.ndarray:
    """Paper brightness going from ``low`` to ``high`` across the page, in a random direction."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    along = (np.cos(angle) * (cols - SIDE / 2) + np.sin(angle) * (rows - SIDE / 2)) / (SIDE / np.sqrt(2)) + 0.5
    return rng.uniform(*low) + (rng.uniform(*high) - rng.uniform(*low)) * np.clip(along, 0.0, 1.0)


def _corners(rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    distance = np.hypot(rows - SIDE / 2, cols - SIDE / 2) / (SIDE / np.sqrt(2))
    return rng.uniform(0.8, 0.95) * (1.0 - rng.uniform(0.3, 0.5) * distance ** 2)


def _lines(rows: np.ndarray, cols: np.ndarray, rng: np.random.Generator, *, squared: bool) -> np.ndarray:
    """The paper's printed lines as a brightness factor: 1 on the paper, 15–35 % darker on a line
    1–2 px wide, every 18–30 px, tilted up to 2° (horizontal lines only unless ``squared``)."""
    spacing, width = rng.uniform(18.0, 30.0), rng.uniform(1.0, 2.0)
    tilt = np.tan(np.radians(rng.uniform(-2.0, 2.0)))
    darker = rng.uniform(0.15, 0.35)
    across = (rows + tilt * cols + rng.uniform(0.0, spacing)) % spacing < width
    if squared:
        across |= (cols - tilt * rows + rng.uniform(0.0, spacing)) % spacing < width
    return 1.0 - darker * across


Scene = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]
SCENES: dict[str, Scene] = {
    "even": _even,
    "shadow": lambda rows, cols, rng: _ramp(rows, cols, rng, (0.5, 0.65), (0.85, 0.95)),
    "deep shadow": lambda rows, cols, rng: _ramp(rows, cols, rng, (0.3, 0.45), (0.85, 0.95)),
    "dim room": lambda rows, cols, rng: _ramp(rows, cols, rng, (0.3, 0.4), (0.5, 0.6)),
    "corners": _corners,
    "squared paper": lambda rows, cols, rng: _even(rows, cols, rng) * _lines(rows, cols, rng, squared=True),
    "ruled, shadow": lambda rows, cols, rng: (_ramp(rows, cols, rng, (0.5, 0.65), (0.85, 0.95))
                                             * _lines(rows, cols, rng, squared=False)),
    "close-up, shadow": lambda rows, cols, rng: _ramp(rows, cols, rng, (0.5, 0.65), (0.85, 0.95)),
    "sheet on a desk": _even,
}
# Scenes photographed from close up: the phone zoomed in until the digit fills the frame.
CLOSE_UPS = frozenset({"close-up, shadow"})
# Scenes where the page is a sheet lying on a darker desk, which shows round it.
ON_A_DESK = frozenset({"sheet on a desk"})
PHOTO_COUNT = DIGITS * len(SCENES)


def photograph(digit: np.ndarray, scene: str, rng: np.random.Generator) -> np.ndarray:
    """One (SIDE, SIDE) uint8 grey photo of a 28×28 uint8 MNIST digit written on paper."""
    height = int(rng.uniform(*DIGIT_HEIGHT))
    written = np.asarray(Image.fromarray(digit).resize((height, height), Image.Resampling.BICUBIC), np.float32)
    marks = np.zeros((SIDE, SIDE), np.uint8)
    top, left = (int(rng.integers(0, SIDE - height + 1)) for _ in range(2))
    marks[top:top + height, left:left + height] = np.clip(written, 0, 255)
    focus = np.asarray(Image.fromarray(marks).filter(ImageFilter.GaussianBlur(0.8)), np.float32) / 255.0
    rows, cols = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    page = SCENES[scene](rows, cols, rng) * (1.0 - focus * (1.0 - rng.uniform(*INK)))
    if scene in ON_A_DESK:
        page = _on_a_desk(page, focus, rng)
    if scene in CLOSE_UPS:
        page = _close_up(page, focus)
    photo = page + rng.normal(0.0, rng.uniform(*NOISE), page.shape)
    return np.rint(np.clip(photo, 0.0, 1.0) * 255).astype(np.uint8)


def _ink_pixels(focus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the written digit's ink at a third of its peak or more."""
    return np.nonzero(focus >= focus.max() / 3.0)


def _on_a_desk(page: np.ndarray, focus: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The page as a sheet round the digit (25–60 px of paper beyond its ink on each side, turned
    up to 20° either way) lying on a desk 10–45 % bright, with a wood grain of ±15 %."""
    rows, cols = _ink_pixels(focus)
    centre = (cols.min() + cols.max()) / 2.0, (rows.min() + rows.max()) / 2.0
    half = (np.ptp(cols) / 2.0 + rng.uniform(25.0, 60.0), np.ptp(rows) / 2.0 + rng.uniform(25.0, 60.0))
    angle = np.radians(rng.uniform(-20.0, 20.0))
    corners = [(centre[0] + x * np.cos(angle) - y * np.sin(angle), centre[1] + x * np.sin(angle) + y * np.cos(angle))
               for x, y in ((-half[0], -half[1]), (half[0], -half[1]), (half[0], half[1]), (-half[0], half[1]))]
    outline = Image.new("L", (SIDE, SIDE), 0)
    ImageDraw.Draw(outline).polygon(corners, fill=255)
    sheet = np.asarray(outline, np.float64) / 255.0
    grain = rng.uniform(0.1, 0.45) * (1.0 + 0.15 * np.sin(np.arange(SIDE)[np.newaxis, :] / rng.uniform(5.0, 15.0)))
    return page * sheet + grain * (1.0 - sheet)


def _close_up(page: np.ndarray, focus: np.ndarray) -> np.ndarray:
    """The page zoomed in on the digit: a square as wide as the digit's longer side (its ink, as
    :func:`_ink_pixels` finds it), enlarged to the photo's size, so the strokes touch its edges."""
    rows, cols = _ink_pixels(focus)
    side = int(max(np.ptp(rows), np.ptp(cols))) + 1
    top = int(np.clip((rows.min() + rows.max() + 1 - side) // 2, 0, SIDE - side))
    left = int(np.clip((cols.min() + cols.max() + 1 - side) // 2, 0, SIDE - side))
    square = page[top:top + side, left:left + side].astype(np.float32)
    return np.asarray(Image.fromarray(square).resize((SIDE, SIDE), Image.Resampling.BILINEAR), np.float64)


@dataclass(frozen=True)
class SceneScore:
    """How many of one scene's photos a model read right."""

    scene: str
    correct: int
    of: int


def load_paper_photos(test_digits: np.ndarray, test_labels: np.ndarray, digits: int | None = None,
                      seed: int = SEED) -> OtherDigits:
    """The first ``digits`` MNIST test digits photographed in every scene, scene by scene.

    ``pictures`` holds the photos (dark ink on paper, not bright on black like the other sets').
    """
    digits = DIGITS if digits is None else digits
    rng = np.random.default_rng(seed)
    pictures = np.stack([photograph(digit, scene, rng) for scene in SCENES for digit in test_digits[:digits]])
    labels = np.tile(np.asarray(test_labels[:digits], np.uint8), len(SCENES))
    images = model_inputs(pictures)
    return OtherDigits(NAME, pictures, images, labels)


def scene_scores(evaluation: Evaluation) -> list[SceneScore]:
    """Per scene, the photos read right, from a model's evaluation on :func:`load_paper_photos`."""
    right = np.ones(evaluation.correct + evaluation.incorrect, bool)
    right[[mistake.index for mistake in evaluation.mistakes]] = False
    return scores_by_scene(right)


def scores_by_scene(right: np.ndarray) -> list[SceneScore]:
    """Per scene, the photos read right, from whether each photo of :func:`load_paper_photos`
    (in its order) was read right."""
    right = np.asarray(right, bool)
    per_scene = len(right) // len(SCENES)
    return [SceneScore(scene, int(right[index * per_scene:(index + 1) * per_scene].sum()), per_scene)
            for index, scene in enumerate(SCENES)]

