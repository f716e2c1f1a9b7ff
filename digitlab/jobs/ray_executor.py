"""The Ray executor: each queued run becomes a Ray actor that trains it on a cluster node.

``DIGITLAB_RAY_ADDRESS`` (or ``--ray ADDRESS``) points the app and the CLI at a Ray cluster.
Each run is one actor with its CPU (and GPU) needs declared, so Ray places it on a node with
room and never runs more there than fit; inside, it starts the same training child as the local
executor (:class:`~digitlab.jobs.process.TrainingJob` → ``train_and_store``), so a run trains the
same on a cluster as on this machine. The server polls each actor for its snapshot (progress
reaches the page as it does locally); Stop is passed on to the child, and an actor that does not
finish within :data:`STOP_GRACE_SECONDS` of a stop is killed on the cluster.

The model lands in the store folder the run names: every node must see the same folder (a
network file system mounted at the same path), and the same MNIST file.

Importing this module imports Ray; nothing else in digitlab does.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray

from digitlab.jobs.executor import QueueExecutor
from digitlab.jobs.process import DEFAULT_RUNNER, JobSnapshot, TrainingJob
from digitlab.jobs.queue import QueuedRun, RunQueue

CPUS_PER_RUN = 1.0  # a run's child uses about one core's worth of TensorFlow threads per batch
STOP_GRACE_SECONDS = 30.0
SNAPSHOT_TIMEOUT_SECONDS = 10.0
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent.parent)


@ray.remote
class RunActor:
    """One run on a cluster node: holds its training child and answers for it."""

    def __init__(self, config: dict[str, Any], name: str, models_dir: str, data_path: str | None,
                 runner: str, import_path: list[str], watch: list[dict[str, Any]] | None = None):
        self.job = TrainingJob(config, name, models_dir, data_path=data_path, runner=runner,
                               import_path=import_path, watch=watch)
        self.job.start()

    def snapshot(self) -> dict[str, Any]:
        return self.job.snapshot().to_dict()

    def stop(self, keep: bool) -> None:
        self.job.stop(keep)


class RayRun:
    """The server's handle on a :class:`RunActor`: snapshots, stop, cancellation, cleanup."""

    def __init__(self, actor: Any, name: str, config: dict[str, Any]):
        self.actor = actor
        self.stop_asked_at: float | None = None
        self.stop_choice: str | None = None
        self.last = JobSnapshot(name, config, "starting", time.time())

    def snapshot(self) -> JobSnapshot:
        """The actor's latest snapshot; a dead or cancelled actor gives a finished one."""
        if not self.last.active:
            return self.last
        try:
            self.last = JobSnapshot.from_dict(ray.get(self.actor.snapshot.remote(), timeout=SNAPSHOT_TIMEOUT_SECONDS))
        except ray.exceptions.GetTimeoutError:
            return self.last  # a busy node: keep the last known progress, ask again next time
        except ray.exceptions.RayError as error:
            self.last = self._ended(f"the run's Ray actor died: {type(error).__name__}")
        if self.last.active and self.stop_asked_at and time.monotonic() - self.stop_asked_at > STOP_GRACE_SECONDS:
            ray.kill(self.actor)
            self.last = self._ended(f"cancelled on the cluster {STOP_GRACE_SECONDS:.0f} s after the stop")
        if not self.last.active:
            ray.kill(self.actor)  # frees its CPUs at once; the child has already finished
        return self.last

    def stop(self, keep: bool) -> None:
        if self.stop_asked_at is None:
            self.stop_asked_at, self.stop_choice = time.monotonic(), "keep" if keep else "discard"
            self.actor.stop.remote(keep)

    def _ended(self, why: str) -> JobSnapshot:
        status = "stopped-discarded" if self.stop_choice else "failed"
        return JobSnapshot(**{**self.last.to_dict(), "epochs": self.last.epochs, "status": status,
                              "error": why, "finished_at": time.time()})


def worker_environment() -> dict[str, str]:
    """What ``ray start`` needs in its environment for its workers to import this digitlab."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [PROJECT_ROOT, os.environ.get("PYTHONPATH")])),
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}


class RayExecutor(QueueExecutor):
    """Runs queued ``ray`` runs on a Ray cluster, as many at once as its CPUs hold.

    Args:
        queue: the store's queue (the store folder must be shared by every node).
        address: the cluster (``ray://…`` or ``host:port`` of a head); ``auto`` finds a local one.
        cpus_per_run, gpus_per_run: what each run's actor reserves on its node.
        capacity: how many runs may go at once (default: the cluster's CPUs / ``cpus_per_run``).
    """

    kind = "ray"
    counted = ("ray",)

    def __init__(self, queue: RunQueue, *, address: str, cpus_per_run: float = CPUS_PER_RUN,
                 gpus_per_run: float = 0.0, capacity: int | None = None, data_path: str | None = None,
                 runner: str = DEFAULT_RUNNER, only: Sequence[int] | None = None, worker: str | None = None):
        connect(address)
        cluster_cpus = ray.cluster_resources().get("CPU", 1.0)
        capacity = capacity or max(1, int(cluster_cpus // cpus_per_run))
        super().__init__(queue, capacity=capacity, data_path=data_path, runner=runner, only=only, worker=worker)
        self.address = address
        self.resources = {"num_cpus": cpus_per_run, "num_gpus": gpus_per_run}

    def launch(self, run: QueuedRun) -> RayRun:
        actor = RunActor.options(**self.resources, name=f"digitlab-run-{run.id}-{os.getpid()}").remote(
            run.config, run.name, str(self.queue.models_dir.resolve()), self.data_path, run.runner or self.runner,
            [os.path.abspath(entry or os.curdir) for entry in sys.path], list(run.watch))
        return RayRun(actor, run.name, run.config)


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` once per process.

    The cluster's workers must import digitlab themselves (installed on every node, or on the
    ``PYTHONPATH`` the nodes were started with; see :func:`worker_environment`): no runtime
    environment is shipped, because Ray keeps its ready workers per runtime environment and
    would start a dedicated worker process (importing Ray again) for every run.

    Raises:
        ConnectionError: no cluster answers there (one line, not Ray's traceback).
    """
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConnectionError(f"no Ray cluster at {address!r}: {first}") from None
