"""Fine-tune a stored model on one writer's digits, and measure what it forgot.

The writer's digits are split, stratified and seeded, into a fine-tune part and a held-out part
(none is held out when a digit has too few drawings, and the run card says so). The fine-tune
part is repeated and randomly distorted each epoch, and mixed with MNIST "replay" images, so the
base model keeps what it knew while it learns the writer's style. The run card carries the
**forgetting meter**: MNIST test accuracy and the writer's held-out accuracy, before → after.

``digitlab finetune`` and the Train page (through the job runner) both call
:func:`finetune_and_store`; the new model goes into the store like a trained one.
"""

from __future__ import annotations

import contextlib
import math
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from digitlab.calibration import calibrate_model
from digitlab.config import TrainConfig
from digitlab.data import Mnist, stratified_split
from digitlab.evaluation import Evaluation, evaluate
from digitlab.feature_novelty import fit_beside
from digitlab.finetune_config import MIN_DIGITS, FinetuneConfig, ForgettingMeter, check_finetune
from digitlab.inference import Predictor
from digitlab.progress import EventHandler, ProgressReporter, StopSignal
from digitlab.store import ModelStore
from digitlab.training import EpochHistory, TrainingError, make_dataset
from digitlab.writer_scores import WriterDigits


@dataclass(frozen=True)
class WriterSplit:
    """Indices into a writer's digits: what is fine-tuned on, what is held out, and why if nothing is."""

    finetune: np.ndarray
    heldout: np.ndarray
    note: str | None  # e.g. too few digits to hold any out


def split_writer(labels: np.ndarray, holdout_fraction: float, seed: int) -> WriterSplit:
    """A seeded split that holds out ``holdout_fraction`` of every digit, keeping at least one
    drawing of each digit for fine-tuning."""
    if len(labels) < MIN_DIGITS:
        raise ValueError(f"fine-tuning needs at least {MIN_DIGITS} labelled digits; this writer has {len(labels)}")
    finetune, heldout = stratified_split(np.asarray(labels), holdout_fraction, seed)
    note = None
    if len(heldout) == 0:
        why = "no digits are held out (held-out fraction 0)" if holdout_fraction == 0 else \
            "too few digits to hold any out"
        note = f"{why}: every digit is used for fine-tuning and the held-out accuracy is not measured"
    return WriterSplit(finetune, heldout, note)


def finetune_mix(config: FinetuneConfig, images: np.ndarray, labels: np.ndarray,
                 replay: Mnist) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's training set as uint8: the writer's digits ``copies`` times plus seeded MNIST replay."""
    writer_images = np.rint(np.clip(images, 0.0, 1.0) * 255).astype(np.uint8)
    repeated = np.concatenate([writer_images] * config.copies)
    repeated_labels = np.concatenate([labels] * config.copies)
    count = min(int(round(len(repeated) * config.replay_ratio)), len(replay.y_train))
    chosen = np.random.default_rng(config.seed).choice(len(replay.y_train), count, replace=False)
    x = np.concatenate([repeated, replay.x_train[chosen]])
    y = np.concatenate([repeated_labels, replay.y_train[chosen].astype(labels.dtype)])
    return x, y


@dataclass
class FinetuneResult:
    """A fine-tuned model and how it got there."""

    predictor: Predictor  # the tuned model, traced once for the evaluation and the statistics
    history: list[dict[str, float]]
    stopped: bool
    train_seconds: float
    train_samples: int
    split: WriterSplit
    meter: ForgettingMeter
    test: Evaluation  # after, on the MNIST test set (the card's usual "test")

    @property
    def model(self) -> keras.Model:
        """The tuned Keras model."""
        return self.predictor.model


def finetune(config: FinetuneConfig, base: keras.Model, digits: WriterDigits, data: Mnist, *,
             on_event: EventHandler | None = None, stop: StopSignal | None = None) -> FinetuneResult:
    """Fine-tune a copy of ``base`` on ``digits`` with replay from ``data.x_train``.

    ``base`` itself is not changed. The meter's MNIST figures use ``data.x_test``.

    Raises:
        ValueError: invalid settings or too few digits.
        TrainingError: the loss became NaN, or the run stopped before one epoch finished.
    """
    config.validate()
    split = split_writer(digits.labels, config.holdout_fraction, config.seed)
    keras.utils.set_random_seed(config.seed)
    model = keras.models.clone_model(base)
    model.set_weights(base.get_weights())
    before = Predictor(base)
    before_mnist = evaluate(before, data.x_test, data.y_test)
    held_x, held_y = digits.images[split.heldout], digits.labels[split.heldout]
    before_held = evaluate(before, held_x, held_y) if len(held_y) else None
    x, y = finetune_mix(config, digits.images[split.finetune], digits.labels[split.finetune], data)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    batches = math.ceil(len(x) / config.batch_size)
    reporter = ProgressReporter(on_event, stop, config.epochs, batches)
    last = _LastFinishedEpoch()
    started = time.perf_counter()
    model.fit(make_dataset(x, y, config.batch_size, config.seed, config.augment), epochs=config.epochs,
              callbacks=[keras.callbacks.TerminateOnNaN(), last, reporter], shuffle=False, verbose=0)
    seconds = time.perf_counter() - started
    if last.nan_seen:
        raise TrainingError("the loss became NaN or infinite; try a lower learning rate — nothing was saved")
    if last.weights is None:
        raise TrainingError("stopped before the first epoch finished — there is no model to keep")
    model.set_weights(last.weights)
    tuned = Predictor(model)
    after_mnist = evaluate(tuned, data.x_test, data.y_test)
    after_held = evaluate(tuned, held_x, held_y) if len(held_y) else None
    meter = ForgettingMeter(before_mnist.accuracy, after_mnist.accuracy,
                            before_held and before_held.accuracy, after_held and after_held.accuracy, len(held_y))
    return FinetuneResult(tuned, last.rows, reporter.stopped_early, seconds, len(x), split, meter, after_mnist)


class _LastFinishedEpoch(EpochHistory):
    """The history of the finished epochs, and the weights of the last one."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: list | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        finished = len(self.rows)
        super().on_epoch_end(epoch, logs)
        if len(self.rows) > finished:
            self.weights = self.model.get_weights()


def build_card(config: FinetuneConfig, result: FinetuneResult, base_card: dict[str, Any],
               digits: WriterDigits) -> dict[str, Any]:
    """The run card of a fine-tuned model: the usual fields plus where it came from and the meter."""
    heldout_ids = [digits.digits[int(index)].id for index in result.split.heldout]
    return {
        "architecture": base_card.get("architecture", config.architecture),
        "config": asdict(config),
        "seed": config.seed,
        "parameters": int(result.model.count_params()),
        "epochs_run": len(result.history),
        "best_epoch": len(result.history),
        "stopped_early": result.stopped,
        "history": result.history,
        "train_seconds": round(result.train_seconds, 2),
        "train_samples": result.train_samples,
        "validation_samples": 0,
        "test_samples": result.test.correct + result.test.incorrect,
        "test": result.test.to_dict(),
        "finetune": {"base": config.base, "writer": digits.writer, "finetune_digits": len(result.split.finetune),
                     "heldout_ids": heldout_ids, "note": result.split.note, "meter": result.meter.to_dict()},
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__, "numpy": np.__version__},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def finetune_and_store(config: FinetuneConfig, digits: WriterDigits, data: Mnist, store: ModelStore, name: str, *,
                       on_event: EventHandler | None = None, stop: StopSignal | None = None,
                       keep_if_stopped: bool | Callable[[], bool] = True,
                       overwrite: bool = False) -> dict[str, Any] | None:
    """Fine-tune ``config.base`` on ``digits`` and store the result under ``name``; returns its card.

    A stopped run keeps its last finished epoch when ``keep_if_stopped`` says so, and is otherwise
    discarded (``None``). A failed run raises before anything is written: the base model and any
    model already called ``name`` stay as they were.
    """
    check_finetune(config, store, name, overwrite=overwrite)
    base_card = store.read_card(config.base)
    config = replace(config, architecture=base_card.get("architecture", ""))
    store.clean()
    result = finetune(config, store.load(config.base), digits, data, on_event=on_event, stop=stop)
    keep = keep_if_stopped() if callable(keep_if_stopped) else keep_if_stopped
    if result.stopped and not keep:
        return None
    card = build_card(config, result, base_card, digits)
    base_config = None
    with contextlib.suppress(KeyError, TypeError, ValueError):  # a base card without a usable run config
        base_config = TrainConfig(**base_card["config"])
        # Its confidence calibrated on the split its base held out (the replay may have drawn a
        # few of those 3,000 digits), so that the page's percentages mean what they say.
        card["calibration"] = calibrate_model(result.predictor, base_config, data).to_dict()
    store.save(name, result.model, card, overwrite=overwrite)
    if base_config is not None:
        # Its own "not a digit" statistics, from the MNIST split its base was trained on, with
        # the writer's digits it learned from as digits too.
        fit_beside(store, name, result.predictor, base_config, data, taught=digits.images[result.split.finetune])
    return store.read_card(name)
