"""Where a drawing lands: its nearest training digits and its place on a map, in a model's own terms.

The last layer of each model is a plain weighted vote over the layer before it, the penultimate
layer: that layer is where the network has put each picture. Two pictures it finds alike have
penultimate vectors pointing the same way, so similarity here is the cosine of their angle. A
2-D map of that space comes from PCA (fitted on a sample of test digits), which, unlike t-SNE or
UMAP, places a new drawing with the same projection.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from digitlab.inference import Predictor

NEIGHBOURS = 8
BATCH = 1000


@dataclass(frozen=True)
class Neighbour:
    """One training digit near the drawing."""

    index: int  # in the training set the space was built from
    label: int
    similarity: float  # cosine, 1 = same direction


@dataclass(frozen=True)
class DigitMap:
    """A sample of digits placed in 2-D by PCA of the penultimate layer."""

    points: np.ndarray  # (N, 2)
    labels: np.ndarray  # (N,)
    explained: tuple[float, float]  # share of the variance along each axis


class FeatureSpace:
    """One model's penultimate layer over a sample of training digits and a map of test digits.

    Building it runs every sample through the model once (a second or two); after that a drawing
    costs one forward pass and one matrix product. Read-only once built: safe to share.
    """

    def __init__(self, model: keras.Model, train_images: np.ndarray, train_labels: np.ndarray,
                 map_images: np.ndarray, map_labels: np.ndarray):
        self._predictor = Predictor(model, BATCH)
        self.train_images = train_images
        self.train_labels = np.asarray(train_labels).astype(int)
        self._unit_train = _unit(self.features(train_images))
        on_map = self.features(map_images)
        self._mean = on_map.mean(axis=0)
        centred = (on_map - self._mean).astype(np.float64)
        # The two main directions from the covariance's eigenvectors: a tenth of an SVD's time for a
        # 1,024-wide layer, and this runs once per model when a visitor opens the map.
        spread, directions = np.linalg.eigh(centred.T @ centred)  # ascending
        self._axes = directions[:, ::-1][:, :2].T.astype(np.float32)
        share = np.clip(spread[::-1][:2], 0.0, None) / max(float(spread.sum()), 1e-12)
        self.map = DigitMap((on_map - self._mean) @ self._axes.T, np.asarray(map_labels).astype(int),
                            (float(share[0]), float(share[1])))

    @property
    def dimensions(self) -> int:
        """The width of the penultimate layer."""
        return int(self._unit_train.shape[1])

    def features(self, images: np.ndarray) -> np.ndarray:
        """Penultimate-layer vectors, (N, dimensions), for one image or a batch."""
        return self._predictor.features(images)

    def nearest(self, image: np.ndarray, count: int = NEIGHBOURS) -> list[Neighbour]:
        """The ``count`` training digits most similar (cosine) to ``image``, most similar first."""
        similarity = self._unit_train @ _unit(self.features(image))[0]
        best = np.argpartition(-similarity, min(count, len(similarity) - 1))[:count]
        best = best[np.argsort(-similarity[best], kind="stable")]
        return [Neighbour(int(i), int(self.train_labels[i]), round(float(similarity[i]), 4)) for i in best]

    def place(self, image: np.ndarray) -> tuple[float, float]:
        """Where ``image`` falls on :attr:`map`."""
        x, y = (self.features(image)[0] - self._mean) @ self._axes.T
        return float(x), float(y)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)
