""""Not a digit" in a model's own terms: how far an input lands from every digit in the model's
penultimate layer.

The store's pixel detector (:mod:`digitlab.novelty`) compares the picture with MNIST's digits
pixel by pixel, so it misses shapes made of digit-like strokes: a cross, a letter. A trained
network has its own, sharper idea of what a digit looks like: its penultimate layer, over which
the softmax is a plain vote. Each digit class there is modelled as a few Gaussians (k-means
centres within the class) with one covariance shared by all (the Mahalanobis test of Lee et al.,
2018, with a class allowed several clusters). The fit sees the training digits both plain and as
the model's own training run showed them (its styles and distortions), since those are digits it
learned too. An input far from every centre is unlike anything the model learned, whatever the
softmax says.

Each model gets its own statistics, written beside its weights as ``<weights>.features.npz``
(:data:`~digitlab.store.SIDECAR_SUFFIX`)
(a retrained model has new weights, so stale statistics are never used with it). The threshold is
set, like the pixel detector's, on real digits the fit did not use (held-out MNIST training
digits and half the UCI digits) so that only ``1 - QUANTILE`` of them are flagged by this test.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitlab.novelty import HELD_OUT, load_npz, save_npz
from digitlab.store import sidecar_name

if TYPE_CHECKING:  # the inference module pulls in TensorFlow; this one is read without it
    from digitlab.inference import Predictor

QUANTILE = 0.997  # with the pixel detector's 0.995, at most about 0.8 % of real digits are flagged
CENTRES_PER_CLASS = 3  # a class's clusters in the model's space (see fit_stats)
CLUSTER_SAMPLE = 5_000  # a class's digits its clusters are found on
RIDGE = 1e-3  # added to the shared covariance, relative to its mean variance: some units never fire


def unlike_reason(model: str) -> str:
    """What the reading says when ``model``'s own features find an input unlike every digit."""
    return f"the {model} model finds it unlike every digit it learned (a letter, a shape or a scribble?)"


@dataclass(frozen=True)
class FeatureStats:
    """Class centres and a shared precision in a model's penultimate space, whitened.

    ``whiten`` is a square root of the precision matrix (``P = W Wᵀ``), so the Mahalanobis
    distance of features ``f`` to class ``c`` is the plain distance of ``f W`` to ``means[c]``.
    """

    means: np.ndarray  # (C, D), already whitened: each class's centres, then any taught digits
    whiten: np.ndarray  # (D, D)
    threshold: float  # a squared distance above it is unlike every digit

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance to the nearest centre, (N,)."""
        white = np.asarray(features, np.float32) @ self.whiten
        squared = ((white ** 2).sum(axis=1, keepdims=True) - 2 * white @ self.means.T
                   + (self.means ** 2).sum(axis=1))
        return np.maximum(squared.min(axis=1), 0.0)

    def with_taught(self, features: np.ndarray) -> FeatureStats:
        """These statistics with each of ``features`` (a writer's digits a model was fine-tuned
        on) as a centre of its own: a drawing near one of them is a digit, however far it lands
        from MNIST's ten classes. A dozen digits would not move a class mean or the threshold."""
        white = (np.asarray(features, np.float64) @ self.whiten).astype(np.float32)
        return FeatureStats(np.concatenate([self.means, white]), self.whiten, self.threshold)

    def unlike(self, features: np.ndarray) -> np.ndarray:
        """Per row of ``features``, whether it is farther from every class than the threshold."""
        return self.distances(features) > self.threshold

    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` atomically."""
        return save_npz(path, asdict(self))


def load_stats(path: str | os.PathLike) -> FeatureStats:
    """Read statistics written by :meth:`FeatureStats.save`.

    Raises:
        FileNotFoundError: there are none at ``path``.
        ValueError: the file is not such statistics.
    """
    stats = load_npz(path, FeatureStats, "a model's feature statistics")
    if stats.means.ndim != 2 or stats.whiten.shape != (stats.means.shape[1],) * 2:
        raise ValueError(f"{path} holds feature statistics of mismatched shapes")
    return stats


def fit_stats(features: np.ndarray, labels: np.ndarray, threshold_sets: list[np.ndarray],
              quantile: float = QUANTILE, centres_per_class: int = CENTRES_PER_CLASS) -> FeatureStats:
    """Centres of each class (k-means within it) and the shared covariance of ``features`` about
    them; the threshold at ``quantile`` of the threshold set that needs the highest one (features
    of real digits the fit did not use).

    A class is a few clusters, not one: a 1 with a base and a bare stroke are both 1s, but a
    single mean between them would leave the based ones far from it in every direction the
    plain ones keep still.
    """
    features = np.asarray(features, np.float64)
    labels = np.asarray(labels).astype(int)
    centres, assigned = [], np.empty(len(features), int)
    for digit in range(10):
        rows = np.flatnonzero(labels == digit)
        digit_centres, nearest = _cluster(features[rows], centres_per_class)
        assigned[rows] = nearest + len(centres)
        centres.extend(digit_centres)
    means = np.stack(centres)
    centred = features - means[assigned]
    covariance = centred.T @ centred / len(features)
    covariance += RIDGE * float(np.trace(covariance)) / len(covariance) * np.eye(len(covariance))
    whiten = np.linalg.cholesky(np.linalg.inv(covariance))  # P = W Wᵀ, W lower triangular
    unset = FeatureStats((means @ whiten).astype(np.float32), whiten.astype(np.float32), np.inf)
    threshold = max(float(np.quantile(unset.distances(digits), quantile)) for digits in threshold_sets)
    return FeatureStats(unset.means, unset.whiten, threshold)


def _cluster(features: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` k-means centres of one class (its mean alone when it has few digits) and each
    row's nearest; fitted on at most ``CLUSTER_SAMPLE`` rows, seeded, so a refit gives the same."""
    if count <= 1 or len(features) < count * MIN_PER_CLASS:
        return features.mean(axis=0, keepdims=True), np.zeros(len(features), int)
    from sklearn.cluster import KMeans

    sample = features[np.random.default_rng(0).permutation(len(features))[:CLUSTER_SAMPLE]]
    kmeans = KMeans(count, n_init=3, random_state=0).fit(sample)
    return kmeans.cluster_centers_, kmeans.predict(features)


def stats_path(store_root: str | os.PathLike, model_file: str) -> Path:
    """Where a model's statistics live: beside its weights file, named after it."""
    return Path(store_root) / sidecar_name(model_file)


class FeatureCheck:
    """One model's statistics as its own "not a digit" test, judging that model's penultimate
    features (:meth:`digitlab.inference.Predictor.read_one` gives them with the answer)."""

    def __init__(self, name: str, stats: FeatureStats, dimensions: int):
        if dimensions != stats.whiten.shape[0]:
            raise ValueError(f"{name}'s feature statistics are for another model "
                             f"({stats.whiten.shape[0]} features, the model has {dimensions})")
        self.name = name
        self.stats = stats

    def reasons(self, features: np.ndarray) -> list[str | None]:
        """For each row of penultimate features, why the model finds it is not a digit, or None."""
        return [unlike_reason(self.name) if flag else None for flag in self.stats.unlike(features)]

    def reason(self, features: np.ndarray) -> str | None:
        """Why the model finds one input (its penultimate features) is not a digit, or None."""
        return self.reasons(np.asarray(features)[np.newaxis])[0]


@dataclass(frozen=True)
class FeatureReport:
    """How one model's test does, alone and together with the pixel detector."""

    model: str
    dimensions: int
    false_alarms: dict[str, float]  # set name → share flagged by this test alone
    false_alarms_with_pixels: dict[str, float]  # … by this test or the pixel detector
    detection: float  # generated non-digits caught by this test alone
    detection_with_pixels: float  # … by either (or refused by the preprocessing)
    detection_by_kind: dict[str, float]  # with the pixel detector

    def to_dict(self) -> dict:
        return asdict(self)


def fit_and_measure(name: str, model, data, uci, pixel_detector, nondigit_inputs: list[np.ndarray | None],
                    nondigit_kinds: list[str], quantile: float = QUANTILE,
                    config=None) -> tuple[FeatureStats, FeatureReport]:
    """Fit ``model``'s statistics on MNIST training digits, plain and as the training run of
    ``config`` (its card's) showed them, set the threshold on held-out ones and half the UCI
    digits, and measure on the MNIST test set, the other UCI half and the generated
    non-digits (their 28×28 inputs, None where the preprocessing refused the drawing).

    Args:
        data: MNIST (:class:`~digitlab.data.Mnist`); uci: the UCI digits (``OtherDigits``).
        pixel_detector: the store's :class:`~digitlab.novelty.NoveltyDetector`, for the combined figures.
        config: the model's :class:`~digitlab.config.TrainConfig`, or None: plain digits only.
    """
    from digitlab.data import to_float
    from digitlab.inference import Predictor

    predictor = Predictor(model)
    features = predictor.features
    # The threshold comes from real digits only: a coarse scan or a heavy pen made in training
    # is farther out than any real digit, and would let letters and crosses through.
    stats = fit_as_trained(features, data.x_train[:-HELD_OUT], data.y_train[:-HELD_OUT], config,
                           [features(to_float(data.x_train[-HELD_OUT:])), features(uci.images[0::2])], quantile)
    real = {"mnist test": to_float(data.x_test), "uci unseen half": uci.images[1::2]}
    alone, combined = {}, {}
    for set_name, images in real.items():
        flagged = stats.unlike(features(images))
        pixels = np.array([reason is not None for reason in pixel_detector.reasons(images)])
        alone[set_name] = round(float(flagged.mean()), 5)
        combined[set_name] = round(float((flagged | pixels).mean()), 5)
    # A drawing the preprocessing refused (None) reaches no model: it counts as caught by both.
    reached = np.array([image is not None for image in nondigit_inputs])
    stacked = np.stack([image for image in nondigit_inputs if image is not None]) if reached.any() \
        else np.zeros((0, 28, 28), np.float32)
    caught_alone, by_pixels = np.ones(len(reached), bool), np.ones(len(reached), bool)
    caught_alone[reached] = stats.unlike(features(stacked))
    by_pixels[reached] = [reason is not None for reason in pixel_detector.reasons(stacked)]
    caught = caught_alone | by_pixels
    kinds = np.array(nondigit_kinds)
    report = FeatureReport(
        name, predictor.feature_dimensions, alone, combined, round(float(caught_alone.mean()), 4),
        round(float(caught.mean()), 4),
        {kind: round(float(caught[kinds == kind].mean()), 4) for kind in dict.fromkeys(nondigit_kinds)})
    return stats, report


def load_check(store_root: str | os.PathLike, name: str, model_file: str, model) -> FeatureCheck | None:
    """``name``'s own test, from the statistics beside its weights; None when it has none.

    Raises:
        ValueError: the statistics are unreadable or belong to another model.
    """
    try:
        stats = load_stats(stats_path(store_root, model_file))
    except FileNotFoundError:
        return None
    from digitlab.inference import feature_width

    return FeatureCheck(name, stats, feature_width(model))


AUGMENT_BATCH = 512
FIT_LIMIT = 20_000  # training digits a run's statistics are fitted on: enough for the centres and one covariance
MIN_PER_CLASS = 20


def fit_for_run(predictor: Predictor, config, data, taught: np.ndarray | None = None) -> FeatureStats | None:
    """Statistics for a freshly trained model from its own run: fitted on its training digits,
    plain and as its augmentation showed them, the threshold set on its validation split (real
    digits it never trained on). None when the run has too few digits of some class,
    or no validation split, to set them honestly. Takes the run's own ``Predictor`` so the model
    is not traced a second time. ``taught``: the (N, 28, 28) digits a fine-tune learned from,
    each kept as a centre of its own (:meth:`FeatureStats.with_taught`).
    """
    from digitlab.data import to_float
    from digitlab.training import split_training_data

    x_train, y_train, x_val, _ = split_training_data(data, config)
    x_fit, y_fit = x_train[:FIT_LIMIT], y_train[:FIT_LIMIT]
    if len(x_val) < MIN_PER_CLASS or np.bincount(y_fit, minlength=10).min() < MIN_PER_CLASS:
        return None
    features = predictor.features
    stats = fit_as_trained(features, x_fit, y_fit, config, [features(to_float(x_val))])
    return stats if taught is None or not len(taught) else stats.with_taught(features(taught))


def fit_as_trained(features, images: np.ndarray, labels: np.ndarray, config, threshold_sets: list[np.ndarray],
                   quantile: float = QUANTILE) -> FeatureStats:
    """:func:`fit_stats` on ``images`` (uint8) both plain and :func:`as_learned` by ``config``'s
    training; ``features`` maps float images to the model's penultimate features."""
    from digitlab.data import to_float

    learned_x, learned_y = as_learned(images, labels, config)
    return fit_stats(np.concatenate([features(to_float(images)), features(learned_x)]),
                     np.concatenate([labels, learned_y]), threshold_sets, quantile)


def as_learned(images: np.ndarray, labels: np.ndarray, config) -> tuple[np.ndarray, np.ndarray]:
    """``images`` (uint8) as the run of ``config`` showed them to its model: one pass of its
    augmentation (the styles, the pens, the distortions), in order, with the labels a style gave
    them; the plain digits, as floats, for a run without augmentation.

    A model trained on flagged and based 1s knows them as 1s; statistics fitted on MNIST's
    plain digits alone would call them unlike every digit.
    """
    from digitlab.augment import AugmentSettings
    from digitlab.training import make_dataset

    config = config.resolved() if config is not None else None
    if config is None or not config.augment:
        return images.astype(np.float32) / 255.0, np.asarray(labels)
    batches = make_dataset(images, labels, AUGMENT_BATCH, config.seed + 1,
                           AugmentSettings.from_dict(config.augmentation), shuffle=False)
    pictures, targets = zip(*((x.numpy(), y.numpy()) for x, y in batches), strict=True)
    return np.concatenate(pictures), np.concatenate(targets)


def fit_beside(store, name: str, predictor: Predictor, config, data,
               taught: np.ndarray | None = None) -> Path | None:
    """Fit ``name``'s statistics from its run's split (:func:`fit_for_run`) and write them beside
    its stored weights; returns where, or None when there were too few digits or no room.

    Called after the model's card is written (the commit point): a model whose statistics could
    not be written still reads digits, only without its own test (``fit-novelty`` can add it).
    """
    stats = fit_for_run(predictor, config, data, taught)
    if stats is None:
        return None
    try:
        return stats.save(stats_path(store.root, store.read_card(name)["model_file"]))
    except OSError:
        return None
