"""Learning from other models' answers as well as from the labels (knowledge distillation).

A run with teachers is trained towards a blend of each digit's label and the teachers' averaged,
calibrated probabilities for the very picture the network sees (after styles and distortions).
An average of several models is steadier than any one of them across writers and pens; its soft
answers ("a 9, or maybe a 3") carry that to a single network, which keeps one model's speed and its
layers for the Look inside page. Hinton, Vinyals and Dean (2015) describe the idea.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import keras
import tensorflow as tf

from digitlab.card import RunCard
from digitlab.config import NUM_CLASSES

if TYPE_CHECKING:
    from digitlab.store import ModelStore


@dataclass(frozen=True)
class Teacher:
    """The models a run learns from, each with its calibration temperature, and the share of
    the target their answer takes (the label takes the rest). ``files`` names the weights file of
    each (the run card keeps them: a name may later hold another model)."""

    models: tuple[keras.Model, ...]
    temperatures: tuple[float, ...]
    weight: float
    files: tuple[str, ...] = ()

    def probabilities(self, images: tf.Tensor) -> tf.Tensor:
        """The members' calibrated probabilities for a batch of (N, 28, 28) images, averaged."""
        answers = []
        for model, temperature in zip(self.models, self.temperatures, strict=True):
            raw = model(images, training=False)
            answers.append(tf.nn.softmax(tf.math.log(tf.maximum(raw, 1e-12)) / temperature))
        return tf.add_n(answers) / len(answers)

    def targets(self, images: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """(N, 10) training targets: ``1 - weight`` of the one-hot label plus ``weight`` of the
        teachers' answer."""
        one_hot = tf.one_hot(labels, NUM_CLASSES)
        return (1.0 - self.weight) * one_hot + self.weight * self.probabilities(images)


def load_teacher(store: ModelStore, names: Sequence[str], weight: float) -> Teacher:
    """The named models of ``store`` as a :class:`Teacher`; a model without a fitted
    temperature is taken as it is (temperature 1).

    Raises:
        StoreError: a named model is missing or cannot be loaded.
    """
    models, temperatures, files = [], [], []
    for name in names:
        card = RunCard.from_dict(store.read_card(name))
        models.append(store.load(name))
        temperatures.append(card.calibration.temperature if card.calibration else 1.0)
        files.append(card.model_file)
    return Teacher(tuple(models), tuple(temperatures), float(weight), tuple(files))
