"""Honest confidence: temperature scaling, expected calibration error and reliability diagrams.

A network trained to minimise cross-entropy on augmented digits does not say "90 %" only when it
is right nine times in ten. Temperature scaling (Guo et al., 2017) fixes that with one number:
the log-probabilities are divided by a temperature ``T`` before the softmax, ``T > 1`` softens
over-confident answers and ``T < 1`` sharpens timid ones. The answer (the arg-max) never changes,
only how sure it sounds. ``T`` is fitted on the model's own validation split — the images held
out of its training run, picked again from the run card's seed and fraction — by minimising the
negative log-likelihood; the test sets then show whether it helped.

Expected calibration error (ECE) is the gap between confidence and accuracy, averaged over
confidence bins weighted by how many answers fall in each: 0 % is perfectly honest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

BINS = 15  # the usual number of equal-width confidence bins for ECE
TEMPERATURE_RANGE = (0.05, 20.0)  # searched on a log scale
SEARCH_STEPS = 60  # golden-section steps: the bracket shrinks by 0.618 per step, far below 1e-6
SMALLEST_PROBABILITY = float(np.finfo(np.float32).tiny)  # float32 softmax outputs can underflow to 0
# "Not sure": below this confidence the calibrated answers were wrong more often than right.
NOT_SURE_ACCURACY = 0.5


@dataclass(frozen=True)
class ReliabilityBin:
    """One bar of a reliability diagram: answers whose confidence fell in [lower, upper)."""

    lower: float
    upper: float
    count: int
    confidence: float  # mean confidence of those answers (0 when empty)
    accuracy: float  # share of them that were right (0 when empty)


@dataclass(frozen=True)
class SetCalibration:
    """ECE, NLL and reliability bins of one labelled set, before and after temperature scaling."""

    name: str
    samples: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    bins_before: list[ReliabilityBin]
    bins_after: list[ReliabilityBin]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SetCalibration:
        """Inverse of ``asdict``."""
        bins = {key: [ReliabilityBin(**row) for row in data[key]] for key in ("bins_before", "bins_after")}
        return cls(**{**data, **bins})


@dataclass(frozen=True)
class Calibration:
    """A model's fitted temperature, how it was fitted, and what it does on each test set."""

    temperature: float
    validation_samples: int
    validation_nll_before: float
    validation_nll_after: float
    not_sure_below: float  # an answer at or under this calibrated confidence is "not sure"
    sets: dict[str, SetCalibration] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary, as stored in the run card under ``calibration``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        sets = {name: SetCalibration.from_dict(item) for name, item in data.get("sets", {}).items()}
        return cls(**{**data, "sets": sets})

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """``probabilities`` (10,) or (N, 10) with this calibration's temperature."""
        return apply_temperature(probabilities, self.temperature)


def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Natural logs of softmax outputs, with underflowed zeros held at float32's smallest value.

    They are the logits up to a constant per row, which the softmax ignores, so scaling them by
    ``1/T`` is temperature scaling without reaching into the model for its last layer.
    """
    return np.log(np.maximum(np.asarray(probabilities, np.float64), SMALLEST_PROBABILITY))


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of log(probabilities) / ``temperature``; the arg-max is unchanged.

    Raises:
        ValueError: a temperature that is not a positive finite number.
    """
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    scaled = log_probabilities(probabilities) / float(temperature)
    scaled -= scaled.max(axis=-1, keepdims=True)
    weights = np.exp(scaled)
    return (weights / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean −log p(true digit) after scaling by ``temperature`` (the cross-entropy loss)."""
    logits = log_probabilities(probabilities) / temperature
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(log_norm - logits[np.arange(len(labels)), labels.astype(int)]))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the NLL of ``labels`` (golden-section search on log T).

    The NLL is convex in 1/T, so the one-dimensional search finds its minimum.

    Raises:
        ValueError: no samples, or probabilities and labels of different lengths.
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if len(probabilities) == 0 or len(probabilities) != len(labels):
        raise ValueError("need the same, non-zero number of probabilities and labels to fit a temperature")
    low, high = (math.log(bound) for bound in TEMPERATURE_RANGE)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0

    def loss(log_t: float) -> float:
        return negative_log_likelihood(probabilities, labels, math.exp(log_t))

    left, right = high - ratio * (high - low), low + ratio * (high - low)
    left_loss, right_loss = loss(left), loss(right)
    for _ in range(SEARCH_STEPS):
        if left_loss < right_loss:
            high, right, right_loss = right, left, left_loss
            left = high - ratio * (high - low)
            left_loss = loss(left)
        else:
            low, left, left_loss = left, right, right_loss
            right = low + ratio * (high - low)
            right_loss = loss(right)
    return round(math.exp((low + high) / 2.0), 4)


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[ReliabilityBin]:
    """Answers grouped into ``bins`` equal confidence bins, each with its mean confidence and accuracy."""
    confidence = np.asarray(probabilities).max(axis=1)
    correct = np.asarray(probabilities).argmax(axis=1) == np.asarray(labels).astype(int)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # A confidence of exactly 1.0 belongs to the last bin.
    index = np.minimum(np.searchsorted(edges, confidence, side="right") - 1, bins - 1)
    rows = []
    for number in range(bins):
        members = index == number
        count = int(members.sum())
        rows.append(ReliabilityBin(
            round(float(edges[number]), 4), round(float(edges[number + 1]), 4), count,
            round(float(confidence[members].mean()), 6) if count else 0.0,
            round(float(correct[members].mean()), 6) if count else 0.0,
        ))
    return rows


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Σ over bins of (share of answers) × |accuracy − mean confidence|, in [0, 1]."""
    rows = reliability_bins(probabilities, labels, bins)
    total = sum(row.count for row in rows)
    if total == 0:
        raise ValueError("need at least one answer to measure calibration")
    return float(sum(row.count * abs(row.accuracy - row.confidence) for row in rows) / total)


def not_sure_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The calibrated confidence at or under which answers are wrong more often than right.

    Sorting the answers by confidence, it is the highest confidence at which the least confident
    answers up to and including it are, together, right less than half the time (0 when even the
    least confident answer is right).
    """
    confidence = np.asarray(probabilities).max(axis=1)
    correct = (np.asarray(probabilities).argmax(axis=1) == np.asarray(labels).astype(int)).astype(np.float64)
    order = np.argsort(confidence, kind="stable")
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    below = np.flatnonzero(running < NOT_SURE_ACCURACY)
    return round(float(confidence[order][below[-1]]), 4) if len(below) else 0.0


def describe_set(name: str, probabilities: np.ndarray, labels: np.ndarray, temperature: float) -> SetCalibration:
    """ECE, NLL and bins of one labelled set, raw and at ``temperature``."""
    scaled = apply_temperature(probabilities, temperature)
    return SetCalibration(
        name, int(len(labels)),
        round(expected_calibration_error(probabilities, labels), 6),
        round(expected_calibration_error(scaled, labels), 6),
        round(negative_log_likelihood(probabilities, labels), 6),
        round(negative_log_likelihood(probabilities, labels, temperature), 6),
        reliability_bins(probabilities, labels), reliability_bins(scaled, labels),
    )


def calibrate(validation: tuple[np.ndarray, np.ndarray], test_sets: dict[str, tuple[np.ndarray, np.ndarray]],
              threshold_sets: tuple[str, ...] = ()) -> Calibration:
    """Fit a temperature on ``validation`` and describe every test set before and after.

    Args:
        validation: (probabilities (N, 10), labels (N,)) of the model's validation split. An
            empty split (a recipe without one) keeps the temperature at 1.
        test_sets: name → (probabilities, labels), e.g. the MNIST test set and the UCI digits.
        threshold_sets: the test sets whose calibrated answers, pooled with the validation
            split, set the "not sure" threshold (real digits written outside MNIST belong here).

    Returns:
        The calibration, ready for the run card.
    """
    probabilities, labels = validation
    fitted = len(labels) > 0
    temperature = fit_temperature(probabilities, labels) if fitted else 1.0
    pooled = [(apply_temperature(probabilities, temperature), labels)] if fitted else []
    pooled += [(apply_temperature(test_sets[name][0], temperature), test_sets[name][1]) for name in threshold_sets]
    threshold = (not_sure_threshold(np.concatenate([p for p, _ in pooled]), np.concatenate([y for _, y in pooled]))
                 if pooled else 0.0)
    return Calibration(
        temperature=temperature,
        validation_samples=int(len(labels)),
        validation_nll_before=round(negative_log_likelihood(probabilities, labels), 6) if fitted else 0.0,
        validation_nll_after=round(negative_log_likelihood(probabilities, labels, temperature), 6) if fitted else 0.0,
        not_sure_below=threshold,
        sets={name: describe_set(name, p, y, temperature) for name, (p, y) in test_sets.items()},
    )


def calibrate_model(predictor, config, data) -> Calibration:
    """Calibrate a trained model on the validation split its run held out; test on MNIST and UCI.

    Args:
        predictor: a :class:`~digitlab.inference.Predictor` of the model.
        config: the run's :class:`~digitlab.training.TrainConfig`: its seed, validation fraction
            and training-set size pick the very images the run held out.
        data: MNIST (the training part gives the validation split, the test part a test set).

    The UCI digits are added when scikit-learn is installed; they also help set the "not sure"
    threshold, since drawings in the app are not MNIST either.
    """
    from digitlab.other_handwriting import MissingDatasetError, load_uci_digits
    from digitlab.training import split_training_data

    _, _, x_val, y_val = split_training_data(data, config.resolved())
    validation = (predictor.probabilities(x_val), y_val)
    test_sets = {"mnist": (predictor.probabilities(data.x_test), data.y_test)}
    try:
        uci = load_uci_digits()
        test_sets["uci"] = (predictor.probabilities(uci.images), uci.labels)
    except MissingDatasetError:
        pass
    return calibrate(validation, test_sets, threshold_sets=tuple(name for name in test_sets if name == "uci"))


