"""Executors: what takes runs off the queue, starts them, and reports their progress back.

Both executors share one loop (:class:`QueueExecutor`): mark dead runs ``interrupted``,
heartbeat, pass on stop requests, copy each run's progress into the queue, record how it ended,
and claim the next waiting run while fewer than ``capacity`` are going. They differ only in how a
run is launched: :class:`LocalExecutor` starts a :class:`~digitlab.jobs.process.TrainingJob`
child process on this machine; :class:`~digitlab.jobs.ray_executor.RayExecutor` starts the same
child inside a Ray actor on a cluster. :func:`executor_from_environment` picks one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from digitlab.jobs.process import DEFAULT_RUNNER, JobSnapshot, TrainingJob
from digitlab.jobs.queue import MACHINE_KINDS, QueuedRun, RunQueue, this_worker

POLL_SECONDS = 0.5  # a finished run's successor starts within about this (target: 2 s)
CAPACITY_ENV = "DIGITLAB_CONCURRENT_RUNS"
RAY_ADDRESS_ENV = "DIGITLAB_RAY_ADDRESS"
DEFAULT_LOCAL_CAPACITY = 1  # a training run keeps both cores of this machine busy

log = logging.getLogger(__name__)


class RunHandle(Protocol):
    """A launched run, as an executor watches it."""

    def snapshot(self) -> JobSnapshot: ...

    def stop(self, keep: bool) -> None: ...


class QueueExecutor:
    """The shared loop; subclasses say how a run is launched (:meth:`launch`).

    Args:
        queue: the store's queue.
        capacity: how many runs of the ``counted`` kinds may go at once.
        data_path: MNIST for the runs (``None``: ``load_mnist``'s usual search).
        runner: ``module:function`` the training child calls (tests substitute fakes).
        only: limit this executor to these run ids (a terminal waiting for its own runs).
        worker: who this executor is in the queue (default: this process).
    """

    kind = "local"
    counted: tuple[str, ...] = MACHINE_KINDS

    def __init__(self, queue: RunQueue, *, capacity: int = DEFAULT_LOCAL_CAPACITY, data_path: str | None = None,
                 runner: str = DEFAULT_RUNNER, only: Sequence[int] | None = None, worker: str | None = None):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.queue, self.capacity = queue, capacity
        self.data_path = None if data_path is None else str(data_path)
        self.runner = runner
        self.only = None if only is None else list(only)
        self.worker = worker or this_worker()
        self._handles: dict[int, RunHandle] = {}
        self._reported: dict[int, tuple] = {}
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._step_lock = threading.Lock()

    # -- life -------------------------------------------------------------------------------
    def start(self) -> QueueExecutor:
        """Run the loop in a daemon thread (one per executor); returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"{self.kind}-executor", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        """Look at the queue now (a run was just submitted or stopped)."""
        self._wake.set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the loop; runs still going are stopped and discarded (as when the server exits)."""
        self._closed.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for handle in list(self._handles.values()):
            handle.stop(keep=False)
        for run_id, handle in list(self._handles.items()):
            waiter = getattr(handle, "wait", None)
            if waiter is not None:
                waiter(timeout)
            self._sync(run_id, handle)

    @property
    def going(self) -> int:
        return len(self._handles)

    def pause(self) -> None:
        """Wait until the next pass is due, or until :meth:`wake`."""
        self._wake.wait(POLL_SECONDS)
        self._wake.clear()

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                self.step()
            except Exception:  # a locked or unreadable queue file must not end the loop for good
                log.exception("the %s executor's step failed; trying again", self.kind)
            self.pause()

    # -- one pass ---------------------------------------------------------------------------
    def step(self) -> None:
        """One pass over the queue (the loop calls it every :data:`POLL_SECONDS`)."""
        with self._step_lock:
            self.queue.recover()
            self.queue.heartbeat(self.worker)
            for run_id, choice in self.queue.stops_requested(self.worker).items():
                handle = self._handles.get(run_id)
                if handle is not None:
                    handle.stop(keep=choice == "keep")
            for run_id, handle in list(self._handles.items()):
                self._sync(run_id, handle)
            while not self._closed.is_set() and len(self._handles) < self.capacity:
                run = self.queue.claim((self.kind,), self.worker, self.capacity, self.counted, self.only)
                if run is None:
                    break
                self._start(run)

    def _start(self, run: QueuedRun) -> None:
        try:
            self._handles[run.id] = self.launch(run)
        except Exception as error:  # noqa: BLE001 - the run fails with the reason; the loop goes on
            self.queue.finish(run.id, "failed", error=f"could not start the run: {error}")

    def _sync(self, run_id: int, handle: RunHandle) -> None:
        """Copy new progress into the queue; record the outcome once the run has ended."""
        snapshot = handle.snapshot()
        mark = (snapshot.status, len(snapshot.epochs), snapshot.last_batch and snapshot.last_batch.get("elapsed"))
        if mark != self._reported.get(run_id):
            self.queue.record_progress(run_id, epochs=snapshot.epochs, last_batch=snapshot.last_batch)
            self._reported[run_id] = mark
        if not snapshot.active:
            self.queue.finish(run_id, snapshot.status, card=snapshot.card, error=snapshot.error)
            self._handles.pop(run_id, None)
            self._reported.pop(run_id, None)
            self._wake.set()  # a slot is free: claim the next run at once

    def launch(self, run: QueuedRun) -> RunHandle:
        """Start ``run``; returns its handle."""
        raise NotImplementedError


class LocalExecutor(QueueExecutor):
    """Child processes on this machine, ``capacity`` at a time (default 1 on 2 cores)."""

    kind = "local"
    counted = MACHINE_KINDS

    def launch(self, run: QueuedRun) -> TrainingJob:
        job = TrainingJob(run.config, run.name, self.queue.models_dir, data_path=self.data_path,
                          runner=run.runner or self.runner, watch=run.watch)
        job.start()
        return job


def local_capacity() -> int:
    """``$DIGITLAB_CONCURRENT_RUNS`` or 1: how many runs this machine trains at once."""
    text = os.environ.get(CAPACITY_ENV, "").strip()
    if not text:
        return DEFAULT_LOCAL_CAPACITY
    with contextlib.suppress(ValueError):
        if int(text) >= 1:
            return int(text)
    raise ValueError(f"${CAPACITY_ENV} must be a whole number ≥ 1, got {text!r}")


def executor_from_environment(queue: RunQueue, *, ray_address: str | None = None,
                              data_path: str | None = None, runner: str = DEFAULT_RUNNER,
                              only: Sequence[int] | None = None) -> QueueExecutor:
    """A :class:`~digitlab.jobs.ray_executor.RayExecutor` when ``ray_address`` or
    ``$DIGITLAB_RAY_ADDRESS`` is set, else a :class:`LocalExecutor` of :func:`local_capacity`."""
    address = ray_address or os.environ.get(RAY_ADDRESS_ENV, "").strip() or None
    if address:
        from digitlab.jobs.ray_executor import RayExecutor

        return RayExecutor(queue, address=address, data_path=data_path, runner=runner, only=only)
    return LocalExecutor(queue, capacity=local_capacity(), data_path=data_path, runner=runner, only=only)


def follow(executor: QueueExecutor, run_ids: Sequence[int], *, on_epoch: Callable[[QueuedRun, dict], None],
           interrupt: threading.Event | None = None) -> list[QueuedRun]:
    """Drive ``executor`` until the runs ``run_ids`` have finished; returns them as they ended.

    ``on_epoch`` gets each run's finished epochs as they reach the queue (the CLI prints them).
    When ``interrupt`` is set (Ctrl-C), the runs are asked to stop and keep their best epoch.
    """
    shown: dict[int, int] = {}
    stopping = False
    while True:
        executor.step()
        runs = [executor.queue.get(run_id) for run_id in run_ids]
        for run in runs:
            for event in run.epochs[shown.get(run.id, 0):]:
                on_epoch(run, event)
            shown[run.id] = len(run.epochs)
        if all(run.finished for run in runs):
            return runs
        if interrupt is not None and interrupt.is_set() and not stopping:
            stopping = True
            for run in runs:
                if run.can_stop(run.owner):
                    executor.queue.request_stop(run.id, run.owner, keep=True)
        executor.pause()
