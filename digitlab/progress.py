"""Progress events leaving a training run, and the Keras callbacks that produce them.

Training never prints or draws: it reports :class:`TrainEvent` objects to a function the
caller passes in. The CLI prints them, the web page plots them, a test collects them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import keras
import numpy as np


class StopSignal(Protocol):
    """Anything with ``is_set()``: ``threading.Event``, ``multiprocessing.Event``…"""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class TrainEvent:
    """One step of progress.

    ``kind`` is ``"start"``, ``"batch"``, ``"epoch"`` or ``"end"``; ``logs`` holds the running
    metrics (``loss``, ``accuracy`` and, after an epoch, ``val_loss``/``val_accuracy``). An epoch
    event of a run that watches pictures (:mod:`digitlab.watch`) carries their ten probabilities
    each in ``watched``.
    """

    kind: str
    epoch: int  # 1-based epoch the event belongs to (0 before the first)
    epochs: int
    batch: int  # batches done in this epoch
    batches: int
    elapsed: float  # seconds since training started
    eta: float | None  # seconds left, estimated from the pace so far
    logs: dict[str, float] = field(default_factory=dict)
    watched: list[list[float]] | None = None

    @property
    def fraction_done(self) -> float:
        """Share of all batches of the run that are done, in [0, 1]."""
        total = self.epochs * self.batches
        done = max(self.epoch - 1, 0) * self.batches + self.batch
        return min(done / total, 1.0) if total else 0.0


EventHandler = Callable[[TrainEvent], None]


class ProgressReporter(keras.callbacks.Callback):
    """Turns Keras's callback hooks into :class:`TrainEvent` objects and honours stop requests.

    A stop request is checked after every batch, so a run ends within one batch of it. With
    ``watch`` ((N, 28, 28) model inputs), each epoch event carries the model's probabilities for them.
    """

    def __init__(self, on_event: EventHandler | None, stop: StopSignal | None, epochs: int, batches: int,
                 watch: np.ndarray | None = None):
        super().__init__()
        self.watch = None if watch is None or not len(watch) else np.asarray(watch, np.float32)
        self.on_event = on_event or (lambda event: None)
        self.stop = stop
        self.epochs, self.batches = epochs, batches
        self.epoch = 0
        self.started = time.perf_counter()
        self.stopped_early = False

    def _emit(self, kind: str, batch: int, logs: dict | None, watched: list[list[float]] | None = None) -> None:
        elapsed = time.perf_counter() - self.started
        done = max(self.epoch - 1, 0) * self.batches + batch
        remaining = self.epochs * self.batches - done
        eta = elapsed / done * remaining if done else None
        clean = {key: float(value) for key, value in (logs or {}).items() if _is_number(value)}
        self.on_event(TrainEvent(kind, self.epoch, self.epochs, batch, self.batches, elapsed, eta, clean, watched))

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.started = time.perf_counter()
        self._emit("start", 0, logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._emit("batch", batch + 1, logs)
        if self.stop is not None and self.stop.is_set():
            self.stopped_early = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.stopped_early:
            self._emit("epoch", self.batches, logs, self._watched())

    def _watched(self) -> list[list[float]] | None:
        """The model's probabilities for the watched pictures now, rounded for the wire."""
        if self.watch is None:
            return None
        probabilities = np.asarray(self.model(self.watch, training=False), np.float64)
        return np.round(probabilities, 5).tolist()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._emit("end", self.batches, logs)


class BestEpoch(keras.callbacks.Callback):
    """Keeps a copy of the weights of the best finished epoch (by ``monitor``, higher is better)."""

    def __init__(self, monitor: str = "val_accuracy"):
        super().__init__()
        self.monitor = monitor
        self.best_value = -math.inf
        self.best_epoch = 0
        self.best_weights: list | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.model.stop_training:
            return  # an interrupted epoch is not a finished one
        value = (logs or {}).get(self.monitor, (logs or {}).get("accuracy"))
        if value is not None and _is_number(value) and float(value) >= self.best_value:
            self.best_value, self.best_epoch = float(value), epoch + 1
            self.best_weights = self.model.get_weights()


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
