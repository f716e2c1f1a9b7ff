"""One picture → one answer per model: the loop the Draw page, the CLI and the benchmarks share.

``read_picture`` preprocesses a picture once (or squashes it, when asked for the naive input), then
asks each model for its probabilities. The result says either why there is no digit to read (a
blank pad, a dot) or, per model, the digit, its probability and whether that is sure enough to be
stated plainly. The Compare mode's vote over several models lives here too, so every front end
reports agreement the same way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from digitlab.calibration import Calibration
from digitlab.novelty import NoveltyDetector
from digitlab.preprocess import Picture, Preprocessed, preprocess, squash

if TYPE_CHECKING:
    from digitlab.feature_novelty import FeatureCheck

# Below this probability for its answer a model is "not sure": the page says so and names its
# second guess. A model with a calibration in its card uses its own measured threshold instead
# (see digitlab.calibration); this one is for models trained before calibration existed.
LOW_CONFIDENCE = 0.6
NOT_SURE = "low confidence"


class Predicts(Protocol):
    """What a reader needs of a model: :class:`digitlab.inference.Predictor` fits.

    ``read_one`` (probabilities and penultimate features from one pass) is needed only of a
    model that has its own "not a digit" test.
    """

    def predict_one(self, image: np.ndarray) -> tuple[int, np.ndarray]: ...

    def read_one(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class Reading:
    """One model's answer for one 28×28 input."""

    model: str
    digit: int | None  # None: the model declines to name a digit (see ``reason``)
    probabilities: np.ndarray  # (10,) softmax
    confidence: float  # the probability of ``digit`` (of the top digit when ``digit`` is None)
    sure: bool  # confident enough to state the answer without a warning
    reason: str | None = None  # why there is no digit, or why it is not sure

    @property
    def top_digit(self) -> int:
        """The most probable digit, even when the reading declines to name it."""
        return int(np.argmax(self.probabilities))

    def runner_up(self) -> tuple[int, float]:
        """The second most probable digit and its probability."""
        order = np.argsort(self.probabilities)[::-1]
        second = int(order[1])
        return second, float(self.probabilities[second])


@dataclass(frozen=True)
class PictureReading:
    """A picture, the input the models got, and what each of them read in it."""

    picture: Picture  # as given
    prepared: Preprocessed
    model_input: np.ndarray | None  # (28, 28) float32, or None when there is nothing to read
    fed_raw: bool  # the models got the whole picture squashed, not the MNIST-style input
    readings: dict[str, Reading] = field(default_factory=dict)

    def squashed_input(self) -> np.ndarray:
        """The whole picture shrunk to 28×28 as it is: the input a naive app would feed."""
        return self.model_input if self.fed_raw and self.model_input is not None else squash(self.picture)

    @property
    def message(self) -> str | None:
        """Why there is no input to read (a blank pad, a dot), or None."""
        return self.prepared.message if self.model_input is None else None


@dataclass(frozen=True)
class Vote:
    """The models' answers grouped by digit, most votes first: ``camps[i] = (digit, [models])``;
    ``average`` is the digit their calibrated probabilities, averaged, make most likely, with that
    probability. Averaged, the shipped three are never far from the best model on any test set
    (docs/handwriting.md, "An ensemble"), so it is the answer to trust when they disagree."""

    camps: list[tuple[int, list[str]]]
    average: tuple[int, float] | None = None

    @property
    def unanimous(self) -> bool:
        """True when at least two models answered and all said the same digit."""
        return len(self.camps) == 1 and len(self.camps[0][1]) > 1

    @property
    def split(self) -> bool:
        """True when the models named different digits."""
        return len(self.camps) > 1


def read_input(model_input: np.ndarray, predictors: Mapping[str, Predicts], *,
               novelty: NoveltyDetector | None = None,
               calibrations: Mapping[str, Calibration | None] | None = None,
               feature_checks: Mapping[str, FeatureCheck | None] | None = None) -> dict[str, Reading]:
    """Each model's reading of one 28×28 input (float in [0, 1] or uint8).

    With ``novelty``, an input it finds is not a digit gets ``digit=None`` and the detector's
    reason from every model; with ``feature_checks`` (model name → its own test), a model whose
    penultimate layer finds the input unlike every digit declines too. With ``calibrations``
    (model name → its card's calibration), a model's probabilities are temperature-scaled and
    "sure" uses its measured threshold.
    """
    not_a_digit = novelty.reason(model_input) if novelty is not None else None
    readings = {}
    for name, predictor in predictors.items():
        check = (feature_checks or {}).get(name)
        if check is None:
            _, probabilities = predictor.predict_one(model_input)
            unlike = None
        else:  # the answer and the features the model's own test judges, from one pass
            probabilities, features = predictor.read_one(model_input)
            unlike = check.reason(features)
        reading = judge(name, probabilities, calibration=(calibrations or {}).get(name))
        reason = not_a_digit or unlike
        if reason:
            reading = Reading(name, None, reading.probabilities, reading.confidence, False, reason)
        readings[name] = reading
    return readings


def read_picture(picture: Picture, predictors: Mapping[str, Predicts], *, feed_raw: bool = False,
                 novelty: NoveltyDetector | None = None,
                 calibrations: Mapping[str, Calibration | None] | None = None,
                 feature_checks: Mapping[str, FeatureCheck | None] | None = None) -> PictureReading:
    """Preprocess ``picture`` once and read it with every model in ``predictors``.

    Args:
        picture: a drawing or photo (array, PIL image or encoded PNG/JPEG bytes), any size.
        predictors: model name → something with ``predict_one`` (a ``Predictor``).
        feed_raw: give the models the whole picture squashed to 28×28 instead of the MNIST-style
            input (what a naive app does; the page's comparison).
        novelty: the "not a digit" detector, or None to read every input as a digit.
        calibrations: model name → its calibration (None or missing: raw probabilities).
        feature_checks: model name → its own "not a digit" test (None or missing: none).

    Raises:
        ValueError (``ImageError``) when the picture cannot be decoded.
    """
    prepared = preprocess(picture)
    if prepared.image is None:
        return PictureReading(picture, prepared, None, feed_raw)
    model_input = squash(picture) if feed_raw else prepared.image
    readings = read_input(model_input, predictors, novelty=novelty, calibrations=calibrations,
                          feature_checks=feature_checks)
    return PictureReading(picture, prepared, model_input, feed_raw, readings)


def judge(model: str, probabilities: np.ndarray, threshold: float = LOW_CONFIDENCE, *,
          calibration: Calibration | None = None) -> Reading:
    """A model's probabilities as a :class:`Reading`: its top digit, and whether it is sure.

    With a ``calibration``, the probabilities are temperature-scaled first and the answer is sure
    above the calibration's measured ``not_sure_below``, not at ``threshold``.
    """
    probabilities = np.asarray(probabilities, np.float32)
    if calibration is not None:
        probabilities = calibration.apply(probabilities)
    digit = int(np.argmax(probabilities))
    confidence = float(probabilities[digit])
    sure = confidence > calibration.not_sure_below if calibration is not None else confidence >= threshold
    return Reading(model, digit, probabilities, confidence, sure, None if sure else NOT_SURE)


def vote(readings: Mapping[str, Reading]) -> Vote:
    """Group the models that named a digit by the digit they named, the biggest group first."""
    named = {name: reading.digit for name, reading in readings.items() if reading.digit is not None}
    counts = Counter(named.values()).most_common()
    camps = [(digit, [name for name, said in named.items() if said == digit]) for digit, _ in counts]
    if not named:
        return Vote(camps)
    together = averaged_reading(readings, "average")
    return Vote(camps, (together.digit, together.confidence))


def averaged_reading(readings: Mapping[str, Reading], name: str) -> Reading:
    """Several models' readings of one input as one reading, named ``name``: the calibrated
    probabilities of those that name a digit, averaged. It is sure only when all of them name
    its digit and are sure of it; when none names a digit, neither does it (with the first one's
    reason)."""
    named = [reading for reading in readings.values() if reading.digit is not None]
    if not named:
        first = next(iter(readings.values()))
        mean = np.mean([reading.probabilities for reading in readings.values()], axis=0)
        return Reading(name, None, mean, float(mean.max()), False, first.reason)
    mean = np.mean([reading.probabilities for reading in named], axis=0)
    digit = int(np.argmax(mean))
    sure = all(reading.sure and reading.digit == digit for reading in named)
    return Reading(name, digit, mean, float(mean[digit]), sure, None if sure else NOT_SURE)


def store_options(store, models: Mapping[str, object]) -> dict:
    """The reading options a store holds for some of its models, loaded once: the "not a digit"
    detector (None without ``novelty.npz``), each model's calibration and its own feature test.

    ``models`` maps names in ``store`` to their loaded Keras models. The CLI's ``predict`` and the
    benchmark read with these; the page keeps its own cached copies of the same files.
    """
    from digitlab.card import RunCard
    from digitlab.feature_novelty import load_check
    from digitlab.novelty import default_path, load_detector

    try:
        novelty = load_detector(default_path(store.root))
    except FileNotFoundError:
        novelty = None
    cards = {name: store.read_card(name) for name in models}
    return {"novelty": novelty,
            "calibrations": {name: RunCard.from_dict(card).calibration for name, card in cards.items()},
            "feature_checks": {name: load_check(store.root, name, cards[name]["model_file"], model)
                               for name, model in models.items()}}
