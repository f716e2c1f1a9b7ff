"""A whole run: train, evaluate on the test set, write the model and its card to the store.

This is the one path the CLI's ``train`` and the web page's Train button both take.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from digitlab.calibration import calibrate_model
from digitlab.data import Mnist
from digitlab.distillation import load_teacher
from digitlab.evaluation import Evaluation, evaluate
from digitlab.feature_novelty import fit_beside
from digitlab.inference import Predictor
from digitlab.progress import EventHandler, StopSignal
from digitlab.store import ModelStore, StoreNotWritableError, already_exists, validate_name
from digitlab.training import TrainConfig, TrainResult, train
from digitlab.watch import Pin


def check_run(config: TrainConfig, data_size: int, store: ModelStore, name: str, *,
              overwrite: bool = False) -> None:
    """Raise ``ValueError`` for anything that would make the run fail or clobber a model."""
    validate_name(name)
    config.validate(data_size)
    for teacher in config.teachers:
        store.read_card(teacher)  # a missing teacher is refused now, not after the queue
    taken = store.taken_name(name)
    if taken is not None and (taken != name or not overwrite):
        raise ValueError(already_exists(name, taken))
    _check_writable(store)


def _check_writable(store: ModelStore) -> None:
    """Refuse now, not after an hour of training, a store folder that cannot take a new model."""
    folder = store.root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the folder that would be created is as writable as this one
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise StoreNotWritableError(f"the model store {store.root} is not a writable folder; "
                         "point --models or $DIGITLAB_MODELS at one")


def build_card(result: TrainResult, evaluation: Evaluation, data: Mnist) -> dict[str, Any]:
    """The JSON run card: what was trained, how, how long, and how it scores on the test set."""
    config = result.config
    return {
        "architecture": config.architecture,
        "config": asdict(config),
        "seed": config.seed,
        "parameters": int(result.model.count_params()),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped,
        "history": result.history,
        "train_seconds": round(result.train_seconds, 2),
        "train_samples": result.train_samples,
        "validation_samples": result.validation_samples,
        "test_samples": int(len(data.y_test)),
        "test": evaluation.to_dict(),
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **({"teacher_files": list(result.teacher_files)} if result.teacher_files else {}),
    }


def finish_run(result: TrainResult, data: Mnist, store: ModelStore, name: str, *,
               overwrite: bool = False, allow_shipped: bool = False) -> dict[str, Any]:
    """Evaluate a trained model on the test set, calibrate it on its validation split (see
    :mod:`digitlab.calibration`), store it with its card and its own "not a digit" statistics
    (:mod:`digitlab.feature_novelty`); returns the card."""
    predictor = Predictor(result.model)
    evaluation = evaluate(predictor, data.x_test, data.y_test)
    card = build_card(result, evaluation, data)
    card["calibration"] = calibrate_model(predictor, result.config, data).to_dict()
    store.save(name, result.model, card, overwrite=overwrite, allow_shipped=allow_shipped)
    fit_beside(store, name, predictor, result.config, data)
    return store.read_card(name)


def train_and_store(
    config: TrainConfig,
    data: Mnist,
    store: ModelStore,
    name: str,
    *,
    on_event: EventHandler | None = None,
    stop: StopSignal | None = None,
    keep_if_stopped: bool | Callable[[], bool] = True,
    overwrite: bool = False,
    allow_shipped: bool = False,
    strategy: tf.distribute.Strategy | None = None,
    watch: Sequence[Pin] = (),
) -> dict[str, Any] | None:
    """Train, evaluate and store under ``name``; returns the card, or ``None`` if discarded.

    A run stopped by ``stop`` keeps its best finished epoch when ``keep_if_stopped`` is true
    (or, if it is a function, returns true once training has ended: the page asks the user at
    Stop time). A run that fails (invalid settings, NaN loss, error) raises before anything is
    written.
    """
    if not allow_shipped:
        check_run(config, len(data.x_train), store, name, overwrite=overwrite)
    store.clean()  # leftovers of saves killed earlier (old enough not to be a save in progress)
    teacher = load_teacher(store, config.teachers, config.teacher_weight) if config.teachers else None
    result = train(config, data, on_event=on_event, stop=stop, strategy=strategy, watch=watch, teacher=teacher)
    keep = keep_if_stopped() if callable(keep_if_stopped) else keep_if_stopped
    if result.stopped and not keep:
        return None
    return finish_run(result, data, store, name, overwrite=overwrite or allow_shipped,
                      allow_shipped=allow_shipped)


def calibrate_stored(store: ModelStore, name: str, data: Mnist) -> dict[str, Any]:
    """Fit the temperature of a stored model on its run's validation split; rewrite its card.

    The card's config names the seed, validation fraction and training-set size, so the split is
    the one the run held out. Only the card changes, atomically; the weights stay as they are.

    Raises:
        StoreError: the model cannot be loaded, or was replaced while it was being measured.
        ValueError: the card has no usable training config.
    """
    card = store.read_card(name)
    try:
        config = TrainConfig(**card["config"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"the card of {name!r} has no usable training config ({error})") from None
    predictor = Predictor(store.load(name))
    calibration = calibrate_model(predictor, config, data)
    return store.update_card(name, {"calibration": calibration.to_dict()}, model_file=card["model_file"])
