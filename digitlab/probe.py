"""The robustness probe: move, turn, resize, thicken or erase a drawing and watch each model's answer.

Each sweep changes the 28×28 model input step by step — the very input the preprocessing made,
so the shift sweep shows what the centring step protects a model from — and asks every model
for its probability of one digit at each step. A network that only learned where the ink usually
is (the MLP) falls off fast when the digit moves; a convolutional one holds on longer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

SIZE = 28
SHIFTS = tuple(range(-6, 7))  # px
ROTATIONS = tuple(range(-45, 46, 15))  # degrees, anticlockwise
SCALES = (0.5, 0.625, 0.75, 0.875, 1.0, 1.125, 1.25, 1.375, 1.5)
PEN_STEPS = (-1, 0, 1, 2, 3)  # px of ink removed (negative) or added around every stroke
ERASED = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # share of the ink's height wiped from the top


@dataclass(frozen=True)
class Sweep:
    """One way of changing the drawing, and the changed inputs, one per value."""

    name: str
    unit: str
    values: tuple[float, ...]
    neutral: float  # the value that leaves the drawing as it is
    images: np.ndarray  # (len(values), 28, 28) float32


@dataclass(frozen=True)
class SweepResult:
    """Each model's probability of ``digit`` and its answer at every value of one sweep."""

    name: str
    unit: str
    values: list[float]
    neutral: float
    digit: dict[str, int]  # model → the digit it is scored on
    probability: dict[str, list[float]]  # model → probability of its ``digit`` per value
    answer: dict[str, list[int]]  # model → its answer per value

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return asdict(self)


def shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The image moved ``dx`` px right and ``dy`` px down; what leaves the field is lost."""
    out = np.zeros_like(image)
    source = image[max(0, -dy):SIZE - max(0, dy), max(0, -dx):SIZE - max(0, dx)]
    out[max(0, dy):max(0, dy) + source.shape[0], max(0, dx):max(0, dx) + source.shape[1]] = source
    return out


def _affine(image: np.ndarray, angle: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Turned by ``angle`` degrees and scaled by ``scale`` about the field's centre (bilinear)."""
    if angle == 0.0 and scale == 1.0:
        return image.copy()
    theta = np.radians(angle)
    cos, sin = np.cos(theta) / scale, np.sin(theta) / scale
    centre = SIZE / 2
    # PIL maps each output pixel back to its input pixel: the inverse transform.
    matrix = (cos, -sin, centre - cos * centre + sin * centre, sin, cos, centre - sin * centre - cos * centre)
    picture = Image.fromarray(image.astype(np.float32), mode="F")
    moved = picture.transform((SIZE, SIZE), Image.Transform.AFFINE, matrix, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(moved, np.float32), 0.0, 1.0)


def pen(image: np.ndarray, step: int) -> np.ndarray:
    """Strokes ``step`` px wider (a 3×3 max per px) or narrower (a 3×3 min), as another pen would."""
    out = image.copy()
    for _ in range(abs(step)):
        padded = np.pad(out, 1)
        neighbours = np.stack([padded[r:r + SIZE, c:c + SIZE] for r in range(3) for c in range(3)])
        out = neighbours.max(axis=0) if step > 0 else neighbours.min(axis=0)
    return out


def erased(image: np.ndarray, share: float) -> np.ndarray:
    """The top ``share`` of the ink's height wiped out."""
    rows = np.flatnonzero(image.max(axis=1) > 0)
    out = image.copy()
    if len(rows) and share > 0:
        cut = rows[0] + int(round(share * (rows[-1] - rows[0] + 1)))
        out[:cut] = 0.0
    return out


def sweeps(image: np.ndarray) -> list[Sweep]:
    """Every sweep of one 28×28 input (float in [0, 1])."""
    image = np.asarray(image, np.float32)
    if image.shape != (SIZE, SIZE):
        raise ValueError(f"the probe sweeps a 28×28 input, got shape {image.shape}")
    made: list[tuple[str, str, tuple, float, Callable[[float], np.ndarray]]] = [
        ("shift right", "px", SHIFTS, 0, lambda v: shifted(image, int(v), 0)),
        ("shift down", "px", SHIFTS, 0, lambda v: shifted(image, 0, int(v))),
        ("rotation", "°", ROTATIONS, 0, lambda v: _affine(image, angle=float(v))),
        ("scale", "×", SCALES, 1.0, lambda v: _affine(image, scale=float(v))),
        ("pen width", "px", PEN_STEPS, 0, lambda v: pen(image, int(v))),
        ("erased from the top", "share", ERASED, 0.0, lambda v: erased(image, float(v))),
    ]
    return [Sweep(name, unit, tuple(float(v) for v in values), float(neutral),
                  np.stack([change(v) for v in values]).astype(np.float32))
            for name, unit, values, neutral, change in made]


def probe(image: np.ndarray, predictors: Mapping[str, object], digit: int | None = None) -> list[SweepResult]:
    """Every sweep of ``image`` through every model.

    Args:
        image: the 28×28 model input (float in [0, 1]).
        predictors: model name → a :class:`~digitlab.inference.Predictor`.
        digit: the digit to follow; by default each model follows its own answer on ``image``.

    Raises:
        ValueError: the image is not 28×28, or ``digit`` is not 0–9.
    """
    if digit is not None and not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be 0–9, got {digit}")
    made = sweeps(image)
    batch = np.concatenate([sweep.images for sweep in made])
    probabilities = {name: predictor.probabilities(batch) for name, predictor in predictors.items()}
    followed = {name: int(digit) if digit is not None else int(np.argmax(predictor.probabilities(image)[0]))
                for name, predictor in predictors.items()}
    results, start = [], 0
    for sweep in made:
        stop = start + len(sweep.values)
        results.append(SweepResult(
            sweep.name, sweep.unit, list(sweep.values), sweep.neutral, followed,
            {name: [round(float(p), 5) for p in probabilities[name][start:stop, followed[name]]]
             for name in predictors},
            {name: [int(a) for a in probabilities[name][start:stop].argmax(axis=1)] for name in predictors},
        ))
        start = stop
    return results
