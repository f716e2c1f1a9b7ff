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
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from digitlab.architectures import get_architecture
from digitlab.augment import AugmentSettings, augment_examples
from digitlab.config import NUM_CLASSES, TrainConfig
from digitlab.data import Mnist, stratified_split, to_float
from digitlab.distillation import Teacher
from digitlab.progress import BestEpoch, EventHandler, ProgressReporter, StopSignal
from digitlab.watch import Pin, check_pins, stack

PREFETCH_BATCHES = 2


class TrainingError(RuntimeError):
    """Training could not produce a usable model (NaN loss, stopped before one epoch…)."""


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
    teacher_files: tuple[str, ...] = ()  # the weights files the run learned from, if any


MULTI_WORKER_UNSUPPORTED = (
    "multi-worker training (TF_CONFIG) is not supported: Keras 3's fit fails under "
    "MultiWorkerMirroredStrategy (keras-team/keras#20585). --distribute uses the GPUs of one host; "
    "to use several machines, run several runs at once on a Ray cluster (--ray ADDRESS)")


def strategy_from_environment() -> tf.distribute.Strategy | None:
    """A ``MirroredStrategy`` over this host's GPUs when it has several, else ``None`` (the
    default single-device strategy).

    Raises:
        ValueError: ``TF_CONFIG`` asks for several workers. Keras 3's ``fit`` under
            ``MultiWorkerMirroredStrategy`` fails with two loopback workers (each prints a whole
            batch of ``PerReplica`` tensors; keras-team/keras#20585), so it is refused up front.
    """
    if os.environ.get("TF_CONFIG"):
        raise ValueError(MULTI_WORKER_UNSUPPORTED)
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return None


def make_optimizer(name: str, learning_rate: float, schedule: str, total_steps: int,
                   weight_average: float = 0.0) -> keras.optimizers.Optimizer:
    """The named optimizer, with a constant rate or a cosine decay over ``total_steps``, keeping
    a moving average of the weights with momentum ``weight_average`` when it is not 0."""
    rate: Any = learning_rate
    if schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1), alpha=0.01)
    averaging: dict[str, Any] = {"use_ema": True, "ema_momentum": weight_average} if weight_average else {}
    if name == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9, nesterov=True, **averaging)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(rate, **averaging)
    if name == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=1e-4, **averaging)
    return keras.optimizers.Adam(rate, **averaging)


def make_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                 augment: bool | AugmentSettings, teacher: Teacher | None = None, *,
                 shuffle: bool = True) -> tf.data.Dataset:
    """Float batches of ``images`` (uint8), shuffled unless told not to, styled and distorted on
    the fly when ``augment`` (``True`` takes the default recipe). With a ``teacher`` the labels
    become (N, 10) targets that blend each label with the teacher's answer for the picture as
    distorted."""
    dataset = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
    if augment:
        generator = tf.random.Generator.from_seed(seed)
        settings = augment if isinstance(augment, AugmentSettings) else AugmentSettings()
        dataset = dataset.map(lambda x, y: augment_examples(x, y, generator, settings))
    if teacher is not None:
        dataset = dataset.map(lambda x, y: (x, teacher.targets(x, y)))
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
    watch: Sequence[Pin] = (),
    teacher: Teacher | None = None,
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
        watch: pictures whose probabilities each epoch event carries (``TrainEvent.watched``).
        teacher: the loaded models of ``config.teachers`` (:func:`digitlab.distillation.load_teacher`;
            :func:`digitlab.runs.train_and_store` loads them from the store).

    Raises:
        ValueError: invalid settings, or teachers named but not given, before any work starts.
        TrainingError: the loss became NaN, or the run stopped before finishing one epoch.
    """
    config.validate(len(data.x_train))
    config = config.resolved()
    if bool(config.teachers) != (teacher is not None):
        raise ValueError("a run with teachers needs them loaded (digitlab.distillation.load_teacher), "
                         "and only such a run takes them")
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    x_train, y_train, x_val, y_val = split_training_data(data, config)
    batches = math.ceil(len(x_train) / config.batch_size)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = get_architecture(config.architecture).build(**config.hyperparameters)
        model.compile(
            optimizer=make_optimizer(config.optimizer, config.learning_rate, config.schedule,
                                     batches * config.epochs, config.weight_average),
            # A teacher's targets are whole distributions; the labels alone are class numbers.
            loss="categorical_crossentropy" if teacher else "sparse_categorical_crossentropy",
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy") if teacher else "accuracy"],
        )
    reporter = ProgressReporter(on_event, stop, config.epochs, batches, stack(check_pins(watch)))
    best = BestEpoch("val_accuracy" if len(x_val) else "accuracy")
    history = EpochHistory()
    validation_labels = np.eye(NUM_CLASSES, dtype=np.float32)[y_val] if teacher else y_val.astype(np.int32)
    validation = (to_float(x_val), validation_labels) if len(x_val) else None
    # With weight averaging, the averaged weights are the ones validated, watched and kept at
    # each epoch's end: the swap sits before the callbacks that read the model.
    averaged = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.weight_average else []
    started = time.perf_counter()
    model.fit(
        make_dataset(x_train, y_train, config.batch_size, config.seed,
                     bool(config.augment) and AugmentSettings.from_dict(config.augmentation), teacher),
        epochs=config.epochs,
        validation_data=validation,
        callbacks=[keras.callbacks.TerminateOnNaN(), *averaged, best, history, reporter, *callbacks],
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
                       seconds, len(x_train), len(x_val), teacher.files if teacher else ())


class EpochHistory(keras.callbacks.Callback):
    """Per-epoch metrics plus wall time, skipping an epoch cut short by a stop request; notes a
    non-finite batch loss (``nan_seen``). Training and fine-tuning both keep their history with it."""

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
