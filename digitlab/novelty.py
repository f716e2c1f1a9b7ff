""""Not a digit": a detector for scribbles, letters and shapes, with thresholds measured on real digits.

A classifier always names one of its ten digits, however strange the picture: a drawn "X" is an
8 at 86 %. The detector looks at the 28×28 input itself, before any model, with two tests:

- **likeness to MNIST**: each digit class is modelled as a Gaussian in pixel space — its mean,
  its ``COMPONENTS`` main directions of variation (PCA) and an even spread in all the others
  (probabilistic PCA). A picture far from all ten models is not a digit the models learned.
- **solidity**: digits are strokes; a filled blob is mostly ink whose 5×5 surroundings are ink too.

Each test's threshold is set on real digits that the fit did not use: MNIST training digits held
out of it and half of the UCI digits (other writers), so that only ``FALSE_ALARM_QUANTILE`` of
them are flagged by each. The false alarms are then measured on the MNIST test set and the other
half of the UCI digits, and the detection rate on generated non-digits (:mod:`digitlab.nondigits`).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

COMPONENTS = 20  # per class; 10, 20 and 40 caught 31 %, 32 % and 32 % of the generated non-digits
FIT_PER_CLASS = 4000  # training digits per class for the fit
HELD_OUT = 5000  # the last MNIST training digits: never fitted, they help set the thresholds
# Each test flags 0.5 % of the real digits it is set on. At 0.997 the unseen digits had 0.29 % (MNIST
# test) and 0.33 % (UCI) false alarms and 42 % of the non-digits were caught; at 0.995, 0.55 %, 0.45 %
# and 50 % (measured 2026-12-01).
FALSE_ALARM_QUANTILE = 0.995
SOLID_RADIUS = 2  # an ink pixel is "solid" when its (2r+1)² square is all ink
INK_LEVEL = 0.5
FILE_NAME = "novelty.npz"
NOT_LIKE_DIGITS = "it does not look like any digit the models learned (a letter, a shape or a scribble?)"
FILLED_SHAPE = "it is a filled shape, not the strokes of a digit"


@dataclass(frozen=True)
class NoveltyDetector:
    """The fitted class models and the two measured thresholds."""

    means: np.ndarray  # (10, 784)
    components: np.ndarray  # (10, k, 784), orthonormal rows
    variances: np.ndarray  # (10, k), along each component
    residual_variances: np.ndarray  # (10,), the spread in every other direction
    likeness_threshold: float  # a distance above it is not like any digit
    solidity_threshold: float  # a solidity above it is a filled shape

    def distances(self, images: np.ndarray) -> np.ndarray:
        """Negative log-likelihood (up to a constant) under the nearest digit class, (N,).

        One matrix product against every class's mean and components at once: with
        ``x - m`` expanded, ``|x - m|²`` and ``(x - m)·B`` need only ``x·m`` and ``x·B``.
        """
        flat = np.asarray(images, np.float32).reshape(len(images), -1)
        classes, kept, dimensions = self.components.shape
        projected = flat @ np.concatenate([self.means, self.components.reshape(-1, dimensions)]).T
        towards_means, along_raw = projected[:, :classes], projected[:, classes:].reshape(-1, classes, kept)
        mean_along = np.einsum("cd,ckd->ck", self.means, self.components)
        along = along_raw - mean_along  # (N, classes, k)
        squared = (flat ** 2).sum(axis=1, keepdims=True) - 2 * towards_means + (self.means ** 2).sum(axis=1)
        rest = np.maximum(squared - (along ** 2).sum(axis=2), 0.0)
        scores = ((along ** 2 / self.variances).sum(axis=2) + rest / self.residual_variances
                  + np.log(self.variances).sum(axis=1) + (dimensions - kept) * np.log(self.residual_variances))
        return 0.5 * scores.min(axis=1)

    def reasons(self, images: np.ndarray) -> list[str | None]:
        """For each 28×28 input, why it is not a digit, or None when it may be one."""
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)
        filled = solidity(images) > self.solidity_threshold
        unlike = self.distances(images) > self.likeness_threshold
        return [FILLED_SHAPE if f else NOT_LIKE_DIGITS if u else None for f, u in zip(filled, unlike, strict=True)]

    def reason(self, image: np.ndarray) -> str | None:
        """Why one 28×28 input is not a digit, or None."""
        return self.reasons(np.asarray(image)[np.newaxis])[0]

    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` (an ``.npz``) through a temporary file and an atomic rename."""
        return save_npz(path, asdict(self))


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray | float]) -> Path:
    """Write ``arrays`` to the ``.npz`` at ``path`` through a temporary file and an atomic rename,
    so a reader never finds half a file."""
    path = Path(path)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
    handle, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getvalue())
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
    return path


T = TypeVar("T")


def load_npz(path: str | os.PathLike, record: Callable[..., T], what: str) -> T:
    """``record`` (a dataclass) rebuilt from an ``.npz`` written by :func:`save_npz`: its float32
    arrays as they are, its 0-d ones as floats.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        ValueError: ``path`` is not an ``.npz`` of ``record``'s fields (the message names
            ``what`` was expected).
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            values = {key: float(stored[key]) if stored[key].ndim == 0 else stored[key].astype(np.float32)
                      for key in stored.files}
        return record(**values)
    except FileNotFoundError:
        raise
    except (OSError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not {what} ({error})") from None


def load_detector(path: str | os.PathLike) -> NoveltyDetector:
    """Read a detector written by :meth:`NoveltyDetector.save`.

    Raises:
        FileNotFoundError: there is none at ``path``.
        ValueError: the file is not a detector.
    """
    return load_npz(path, NoveltyDetector, "a novelty detector")


def solidity(images: np.ndarray, radius: int = SOLID_RADIUS) -> np.ndarray:
    """Share of each picture's ink pixels whose whole (2r+1)² square is ink, (N,)."""
    ink = (np.asarray(images, np.float32).reshape(-1, 28, 28) > INK_LEVEL).astype(np.int32)
    side = 2 * radius + 1
    padded = np.pad(ink, ((0, 0), (radius + 1, radius), (radius + 1, radius)))
    summed = padded.cumsum(axis=1).cumsum(axis=2)  # integral image: any square's ink in four lookups
    window = (summed[:, side:, side:] - summed[:, :-side, side:] - summed[:, side:, :-side]
              + summed[:, :-side, :-side])
    solid = (window == side * side) & (ink > 0)
    return solid.sum(axis=(1, 2)) / np.maximum(ink.sum(axis=(1, 2)), 1)


def fit_classes(images: np.ndarray, labels: np.ndarray, components: int = COMPONENTS):
    """(means, components, variances, residual variances) of each digit class (probabilistic PCA)."""
    flat = np.asarray(images, np.float32).reshape(len(images), -1)
    means, bases, variances, residuals = [], [], [], []
    for digit in range(10):
        members = flat[labels == digit][:FIT_PER_CLASS]
        mean = members.mean(axis=0)
        _, singular, rows = np.linalg.svd(members - mean, full_matrices=False)
        spread = singular ** 2 / len(members)
        means.append(mean)
        bases.append(rows[:components])
        variances.append(np.maximum(spread[:components], 1e-6))
        residuals.append(max(float(spread[components:].mean()), 1e-6))
    return (np.stack(means), np.stack(bases).astype(np.float32), np.stack(variances).astype(np.float32),
            np.asarray(residuals, np.float32))


def fit_detector(images: np.ndarray, labels: np.ndarray, threshold_sets: list[np.ndarray],
                 quantile: float = FALSE_ALARM_QUANTILE, components: int = COMPONENTS) -> NoveltyDetector:
    """Fit the class models on ``images`` and set each test's threshold on every set in
    ``threshold_sets`` (28×28 real digits not fitted), at ``quantile`` of the one that needs most.
    """
    unset = NoveltyDetector(*fit_classes(images, labels, components), np.inf, np.inf)
    likeness = max(float(np.quantile(unset.distances(digits), quantile)) for digits in threshold_sets)
    solid = max(float(np.quantile(solidity(digits), quantile)) for digits in threshold_sets)
    return NoveltyDetector(unset.means, unset.components, unset.variances, unset.residual_variances,
                           likeness, solid)


@dataclass(frozen=True)
class NoveltyReport:
    """How the detector does: false alarms on real digits, detection of generated non-digits."""

    false_alarms: dict[str, float]  # set name → share of its real digits flagged
    samples: dict[str, int]
    detection: float  # share of the generated non-digits flagged (or refused by the preprocessing)
    detection_by_kind: dict[str, float]
    refused_by_preprocessing: int  # non-digits that never reached the detector (a dot, too little ink)
    nondigits: int
    seed: int

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return asdict(self)


def fit_and_measure(data, uci, nondigit_count: int = 1000, seed: int = 1,
                    quantile: float = FALSE_ALARM_QUANTILE) -> tuple[NoveltyDetector, NoveltyReport]:
    """Fit on MNIST training digits, set thresholds on held-out ones and half the UCI digits, and
    measure on the MNIST test set, the other UCI half and ``nondigit_count`` generated drawings.

    Args:
        data: MNIST (:class:`~digitlab.data.Mnist`).
        uci: the UCI digits (:class:`~digitlab.other_handwriting.OtherDigits`).
    """
    from digitlab.data import to_float
    from digitlab.nondigits import KINDS, generate
    from digitlab.preprocess import preprocess

    fitted, held = slice(None, -HELD_OUT), slice(-HELD_OUT, None)
    uci_threshold, uci_unseen = uci.images[0::2], uci.images[1::2]
    detector = fit_detector(to_float(data.x_train[fitted]), data.y_train[fitted],
                            [to_float(data.x_train[held]), uci_threshold], quantile)
    real = {"mnist test": to_float(data.x_test), "uci unseen half": uci_unseen, "uci all": uci.images}
    false_alarms = {name: round(float(np.mean([r is not None for r in detector.reasons(images)])), 5)
                    for name, images in real.items()}
    drawings = generate(nondigit_count, seed)
    inputs = [preprocess(drawing.picture).image for drawing in drawings]
    caught = np.array([image is None or detector.reason(image) is not None for image in inputs])
    kinds = np.array([drawing.kind for drawing in drawings])
    report = NoveltyReport(
        false_alarms, {name: int(len(images)) for name, images in real.items()},
        round(float(caught.mean()), 4),
        {kind: round(float(caught[kinds == kind].mean()), 4) for kind in KINDS if (kinds == kind).any()},
        int(sum(image is None for image in inputs)), nondigit_count, seed)
    return detector, report


def default_path(models_dir: str | os.PathLike | None = None) -> Path:
    """Where the app and the CLI look for the detector: ``novelty.npz`` in the model store folder."""
    from digitlab.store import default_models_dir

    return Path(models_dir) / FILE_NAME if models_dir is not None else default_models_dir() / FILE_NAME
