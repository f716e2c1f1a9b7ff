"""A run the terminal trains itself, through the queue: ``python -m digitlab train``.

The CLI's run waits its turn in the same queue as the page's runs (``executor = "inline"``: only
the submitting process may take it), trains in the CLI's own process (Ctrl-C stops it there),
and writes its progress and outcome to the queue, so every page shows it and a second terminal
waits behind it instead of starting another run on the same cores.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from digitlab.jobs.child import EVENT_FIELDS, card_summary
from digitlab.jobs.queue import MACHINE_KINDS, QueuedRun, RunQueue, RunRequest, this_worker

POLL_SECONDS = 0.5
BATCH_WRITE_SECONDS = 1.0  # batch progress reaches the queue at most this often; epochs at once

TrainFunction = Callable[..., "dict[str, Any] | None"]  # (on_event=, stop=, keep_if_stopped=) -> card


class QueueWaitError(RuntimeError):
    """The run did not get its turn (timed out, or was cancelled while waiting)."""


class _Stop:
    """Set by Ctrl-C (keep the best epoch) or by a stop request in the queue (its own choice)."""

    def __init__(self, interrupt: threading.Event):
        self.interrupt = interrupt
        self.requested: str | None = None

    def is_set(self) -> bool:
        return self.interrupt.is_set() or self.requested is not None

    def keep(self) -> bool:
        return self.requested != "discard"


class _Recorder:
    """Progress events into the queue: every epoch, and the latest batch once a second."""

    def __init__(self, queue: RunQueue, run_id: int, forward: Callable[[Any], None]):
        self.queue, self.run_id, self.forward = queue, run_id, forward
        self.epochs: list[dict[str, Any]] = []
        self.last_batch: dict[str, Any] | None = None
        self.written = 0.0

    def __call__(self, event: Any) -> None:
        self.forward(event)
        data = {key: getattr(event, key, None) for key in EVENT_FIELDS}
        if event.kind == "epoch":
            self.epochs.append(data)
        elif event.kind in ("batch", "start"):
            self.last_batch = data
        now = time.monotonic()
        if event.kind == "epoch" or now - self.written >= BATCH_WRITE_SECONDS:
            self.queue.record_progress(self.run_id, epochs=self.epochs, last_batch=self.last_batch)
            self.written = now


def run_inline(queue: RunQueue, request: RunRequest, owner: str, train: TrainFunction, *, data_size: int,
               capacity: int, interrupt: threading.Event, on_event: Callable[[Any], None],
               on_wait: Callable[[QueuedRun], None], wait_timeout: float | None = None,
               overwrite: bool = False, allow_shipped: bool = False) -> dict[str, Any] | None:
    """Queue ``request``, wait for a free slot, train it here, record the outcome.

    Args:
        train: calls ``train_and_store`` with the given ``on_event``, ``stop`` and ``keep_if_stopped``.
        data_size: the training-set size the settings are checked against before queueing.
        capacity: how many runs this machine trains at once (the page's executor uses the same).
        interrupt: set by Ctrl-C; the run ends after the current batch and keeps its best epoch.
        on_event: also receives every progress event (the CLI prints them).
        on_wait: told the run's place while it waits (called when it changes).
        wait_timeout: give up (and cancel the run) after this many seconds of waiting.
        overwrite, allow_shipped: the run replaces a model (``train --overwrite`` / ``--ship``).

    Returns:
        The stored card, or ``None`` when a stopped run was discarded.

    Raises:
        QueueWaitError: the run never got its turn. Training errors propagate after being recorded.
    """
    worker = this_worker()
    [run] = queue.submit([request], owner, data_size=data_size, executor="inline", worker=worker,
                         overwrite=overwrite, allow_shipped=allow_shipped)
    _wait_for_turn(queue, run, worker, capacity, interrupt, on_wait, wait_timeout)
    stop = _Stop(interrupt)
    done = threading.Event()
    watcher = threading.Thread(target=_watch, args=(queue, run.id, worker, stop, done), daemon=True)
    watcher.start()
    try:
        card = train(on_event=_Recorder(queue, run.id, on_event), stop=stop, keep_if_stopped=stop.keep)
    except BaseException as error:
        queue.finish(run.id, "failed" if isinstance(error, Exception) else "stopped-discarded",
                     error=str(error) or type(error).__name__)
        raise
    finally:
        done.set()
        watcher.join()
    if card is None:
        queue.finish(run.id, "stopped-discarded")
    else:
        queue.finish(run.id, "stopped-kept" if card.get("stopped_early") else "done",
                     card=card_summary({**card, "name": request.name}))
    return card


def _wait_for_turn(queue: RunQueue, run: QueuedRun, worker: str, capacity: int, interrupt: threading.Event,
                   on_wait: Callable[[QueuedRun], None], wait_timeout: float | None) -> None:
    deadline = None if wait_timeout is None else time.monotonic() + wait_timeout
    shown: int | None = None
    while True:
        queue.recover()
        queue.heartbeat(worker)
        if queue.claim(("inline",), worker, capacity, MACHINE_KINDS, only=[run.id]) is not None:
            return
        current = queue.get(run.id)
        if current is None or current.status != "queued":
            raise QueueWaitError(f"run {run.id} ({run.name!r}) was {current.status if current else 'removed'} "
                                 "while it waited")
        ahead = [other for other in queue.runs() if other.active and other.executor in MACHINE_KINDS]
        if current.position != shown:
            shown = current.position
            on_wait(current)
        if interrupt.is_set() or (deadline is not None and time.monotonic() >= deadline):
            queue.request_stop(run.id, run.owner, keep=False)
            going = ", ".join(f"{other.name!r} ({other.owner_label})" for other in ahead) or "other runs"
            raise QueueWaitError(f"not started: this machine trains {capacity} run(s) at a time and "
                                 f"{going} came first; the run was taken off the queue")
        time.sleep(POLL_SECONDS)


def _watch(queue: RunQueue, run_id: int, worker: str, stop: _Stop, done: threading.Event) -> None:
    """Heartbeat while training, and pass on a stop an operator asked for in the queue."""
    while not done.wait(POLL_SECONDS):
        queue.heartbeat(worker)
        choice = queue.stops_requested(worker).get(run_id)
        if choice is not None:
            stop.requested = choice
