"""One training function for the command line, the web page and notebooks.

``train(config, data)`` builds the named architecture, feeds it (optionally augmented) batches
through ``tf.data``, reports progress through callbacks, honours a stop request at the next
batch, and returns the model of the best finished epoch with its history. It never writes
files: saving belongs to :mod:`digitlab.runs`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from digitlab.architectures import get_architecture
from digitlab.augment import AugmentSettings, augment_examples
from digitlab.data import Mnist, stratified_split, to_float
from digitlab.progress import BestEpoch, EventHandler, ProgressReporter, StopSignal

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine")
PREFETCH_BATCHES = 2


class TrainingError(RuntimeError):
    """Training could not produce a usable model (NaN loss, stopped before one epoch…)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. ``None`` fields take the architecture's recipe."""

    architecture: str = "cnn"
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    schedule: str | None = None
    augment: bool | None = None
    validation_fraction: float | None = None
    train_size: int | None = None  # use only the first N training images (quick runs)
    seed: int = 0
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    # The augmentation recipe (``AugmentSettings.to_dict``); empty takes the default one.
    augmentation: dict[str, Any] = field(default_factory=dict)

    def resolved(self) -> TrainConfig:
        """This config with every ``None`` replaced by the architecture's recipe (and, when
        augmenting, the augmentation recipe written out so the run card records it)."""
        recipe = asdict(get_architecture(self.architecture).recipe)
        filled = {key: recipe[key] for key in recipe if getattr(self, key) is None}
        config = replace(self, **filled)
        if config.augment and not config.augmentation:
            config = replace(config, augmentation=AugmentSettings().to_dict())
        return config

    def validate(self, available: int) -> None:
        """Raise ``ValueError`` with a readable message for any setting that cannot work."""
        arch = get_architecture(self.architecture)
        config = self.resolved()
        _require(isinstance(config.epochs, int) and 1 <= config.epochs <= 500, "epochs must be 1–500")
        rate = config.learning_rate
        _require(isinstance(rate, (int, float)) and math.isfinite(rate) and 0 < rate <= 1,
                 "learning rate must be a finite number in (0, 1]")
        _require(config.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        _require(config.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}")
        _require(0.0 <= config.validation_fraction <= 0.5, "validation fraction must be in [0, 0.5]")
        size = available if config.train_size is None else config.train_size
        _require(isinstance(size, int) and 100 <= size <= available,
                 f"training-set size must be 100–{available}")
        train_count = size - round(size * config.validation_fraction)
        _require(isinstance(config.batch_size, int) and 1 <= config.batch_size <= train_count,
                 f"batch size must be 1–{train_count} (the number of training images)")
        unknown = set(config.hyperparameters) - set(arch.hyperparameters)
        _require(not unknown, f"{arch.name} has no hyperparameter(s) {sorted(unknown)}")
        for key, value in config.hyperparameters.items():
            _check_hyperparameter(key, value, arch.hyperparameters[key])
        if config.augmentation:
            try:
                AugmentSettings.from_dict(config.augmentation)
            except (TypeError, ValueError, AttributeError) as error:
                raise ValueError(f"the augmentation recipe is not one this version knows: {error}") from None


@dataclass
class TrainResult:
    """What a run produced: the model (best finished epoch) and how it got there."""

    model: keras.Model
    config: TrainConfig
    history: list[dict[str, float]]
    best_epoch: int
    stopped: bool
    train_seconds: float
    train_samples: int
    validation_samples: int


def strategy_from_environment() -> tf.distribute.Strategy | None:
    """A strategy for the hardware at hand: multi-worker when ``TF_CONFIG`` is set, mirrored over
    several local GPUs, else ``None`` (the default single-device strategy)."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return None


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_hyperparameter(name: str, value: Any, default: Any) -> None:
    """Sizes (integer defaults) must be whole numbers ≥ 1; rates (float defaults) in [0, 1)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    _require(number, f"{name} must be a finite number, got {value!r}")
    if isinstance(default, int):
        _require(isinstance(value, int) and value >= 1, f"{name} must be a whole number ≥ 1, got {value!r}")
    elif isinstance(default, float):
        _require(0.0 <= value < 1.0, f"{name} must be in [0, 1), got {value!r}")


def make_optimizer(name: str, learning_rate: float, schedule: str, total_steps: int) -> keras.optimizers.Optimizer:
    """The named optimizer, with a constant rate or a cosine decay over ``total_steps``."""
    rate: Any = learning_rate
    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1), alpha=0.01)
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rate)
    if name == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=1e-4)
    return keras.optimizers.Adam(rate)


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 augment: bool | AugmentSettings) -> tf.data.Dataset:
    """Shuffled float batches of ``images`` (uint8), styled and distorted on the fly when ``augment``
    (``True`` takes the default recipe)."""
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
    if augment:
        settings = augment if isinstance(augment, AugmentSettings) else AugmentSettings()
        generator = tf.random.Generator.from_seed(seed)
        dataset = dataset.map(lambda x, y: augment_examples(x, y, generator, settings))
    # tf.data's autotuning thread stalled the end of one epoch in four by ~10 s on 2 cores (both
    # idle meanwhile); a fixed two-batch prefetch keeps the cores busy with no stalls.
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)


def split_training_data(data: Mnist, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): the stratified validation split, taken from train only."""
    x, y = data.x_train[: config.train_size], data.y_train[: config.train_size]
    keep, held_out = stratified_split(y, config.validation_fraction, config.seed)
    return x[keep], y[keep], x[held_out], y[held_out]


def train(
    config: TrainConfig,
    data: Mnist,
    *,
    on_event: EventHandler | None = None,
    stop: StopSignal | None = None,
    strategy: tf.distribute.Strategy | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainResult:
    """Train ``config.architecture`` on ``data`` and return the best finished epoch's model.

    Args:
        config: the run's settings; missing ones come from the architecture's recipe.
        data: MNIST (or a subset); the test split is never touched here.
        on_event: receives a :class:`~digitlab.progress.TrainEvent` per batch and per epoch.
        stop: when it ``is_set()``, training ends after the current batch.
        strategy: a ``tf.distribute`` strategy to build and train under (default: none).
        callbacks: extra Keras callbacks, called after the built-in ones (the benchmark's
            per-epoch test-accuracy clock).

    Raises:
        ValueError: invalid settings, before any work starts.
        TrainingError: the loss became NaN, or the run stopped before finishing one epoch.
    """
    config.validate(len(data.x_train))
    config = config.resolved()
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    x_train, y_train, x_val, y_val = split_training_data(data, config)
    batches = math.ceil(len(x_train) / config.batch_size)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = get_architecture(config.architecture).build(**config.hyperparameters)
        model.compile(
            optimizer=make_optimizer(config.optimizer, config.learning_rate, config.schedule,
                                     batches * config.epochs),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    reporter = ProgressReporter(on_event, stop, config.epochs, batches)
    best = BestEpoch("val_accuracy" if len(x_val) else "accuracy")
    history = _History()
    validation = (to_float(x_val), y_val.astype(np.int32)) if len(x_val) else None
    started = time.perf_counter()
    model.fit(
        make_dataset(x_train, y_train, config.batch_size, config.seed,
                     bool(config.augment) and AugmentSettings.from_dict(config.augmentation)),
        epochs=config.epochs,
        validation_data=validation,
        callbacks=[keras.callbacks.TerminateOnNaN(), best, history, reporter, *callbacks],
        shuffle=False,  # the dataset shuffles itself, seeded
        verbose=0,
    )
    seconds = time.perf_counter() - started
    if history.nan_seen:  # any non-finite batch loss, so also any non-finite epoch mean
        raise TrainingError("the loss became NaN or infinite; try a lower learning rate — nothing was saved")
    if best.best_weights is None:
        raise TrainingError("stopped before the first epoch finished — there is no model to keep")
    model.set_weights(best.best_weights)
    return TrainResult(model, config, history.rows, best.best_epoch, reporter.stopped_early,
                       seconds, len(x_train), len(x_val))


class _History(keras.callbacks.Callback):
    """Per-epoch metrics plus wall time, skipping an epoch cut short by a stop request."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, float]] = []
        self.nan_seen = False
        self.epoch_started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.nan_seen = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.stop_training:
            return
        row = {"epoch": epoch + 1, "seconds": time.perf_counter() - self.epoch_started}
        row.update({key: float(value) for key, value in (logs or {}).items() if key != "learning_rate"})
        self.rows.append(row)
