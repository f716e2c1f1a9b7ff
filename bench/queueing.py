"""The ``queue`` part: how fast the training queue hands a slot on, and what Ray costs a run.

- **handoff**: three short runs queued at once on the local executor (capacity 1, its own loop
  thread as in the web server); for each run after the first, the seconds from the previous
  run's end to this run's start (target ≤ 2 s), and from its start to its first progress event
  (the training child starting TensorFlow: not the queue's doing, shown apart).
- **ray_vs_local**: the same run alone, submitted to the local executor and to a Ray head started
  here on the loopback (2 CPUs), alternately, :data:`REPEATS` times each (the head stays up for
  both, so both pay for its idle processes); wall time from submission to the run's recorded end,
  and the difference of the medians (target: Ray ≤ 5 s more). Skipped with a reason where Ray is
  not installed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HANDOFF_RUNS = 3
REPEATS = 3
RUN = {"architecture": "mlp", "epochs": 1, "batch_size": 64, "train_size": 2000, "validation_fraction": 0.1,
       "augment": False}
QUICK_RUN = {**RUN, "train_size": 300}
RUN_TIMEOUT = 300.0
HEAD_START_TIMEOUT = 60.0


def measure_queue(data_path: str | None, quick: bool) -> dict[str, Any]:
    """Both measurements; ``data_path`` is MNIST (or a small file of the same layout)."""
    settings = QUICK_RUN if quick else RUN
    with tempfile.TemporaryDirectory(prefix="digitlab-queue-bench-") as scratch:
        results: dict[str, Any] = {"run": settings, "handoff": _handoff(Path(scratch) / "handoff", data_path, settings)}
        results["ray_vs_local"] = _ray_vs_local(Path(scratch), data_path, settings)
    return results


def _handoff(store: Path, data_path: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    from digitlab.jobs.executor import LocalExecutor
    from digitlab.jobs.queue import RunQueue, RunRequest
    from digitlab.training import TrainConfig

    queue = RunQueue(store)
    requests = [RunRequest(TrainConfig(**settings, seed=seed), f"handoff-{seed}") for seed in range(HANDOFF_RUNS)]
    runs = queue.submit(requests, "bench", data_size=_data_size(data_path))
    first_progress = _follow(LocalExecutor(queue, capacity=1, data_path=data_path).start(), queue,
                             [run.id for run in runs])
    finished = [queue.get(run.id) for run in runs]
    gaps = [round(later.started_at - earlier.finished_at, 3) for earlier, later in itertools.pairwise(finished)]
    to_progress = [round(first_progress[run.id] - run.started_at, 2) for run in finished if run.id in first_progress]
    return {"statuses": [run.status for run in finished], "start_after_previous_end_s": gaps,
            "max_start_after_previous_end_s": max(gaps) if gaps else None,
            "first_progress_after_start_s": to_progress, "target_s": 2.0}


def _ray_vs_local(scratch: Path, data_path: str | None, settings: dict[str, Any]) -> dict[str, Any]:
    try:
        import ray  # noqa: F401 - only to tell whether it is installed
    except ImportError:
        return {"skipped": "Ray is not installed (pip install -r requirements-cluster.txt)"}
    from digitlab.jobs.executor import LocalExecutor
    from digitlab.jobs.queue import RunQueue
    from digitlab.jobs.ray_executor import RayExecutor

    local, on_ray = [], []
    with ray_head(cpus=2) as address:
        for attempt in range(REPEATS):
            local.append(_one_run(RunQueue(scratch / f"local-{attempt}"), "local", data_path, settings,
                                  lambda queue: LocalExecutor(queue, capacity=1, data_path=data_path)))
            on_ray.append(_one_run(RunQueue(scratch / f"ray-{attempt}"), "ray", data_path, settings,
                                   lambda queue: RayExecutor(queue, address=address, data_path=data_path)))
    extra = statistics.median(on_ray) - statistics.median(local)
    return {"local_wall_s": local, "ray_wall_s": on_ray, "local_median_s": statistics.median(local),
            "ray_median_s": statistics.median(on_ray), "ray_extra_s": round(extra, 2), "target_extra_s": 5.0}


def _one_run(queue, kind: str, data_path: str | None, settings: dict[str, Any], make_executor) -> float:
    from digitlab.jobs.queue import RunRequest
    from digitlab.training import TrainConfig

    executor = make_executor(queue).start()
    [run] = queue.submit([RunRequest(TrainConfig(**settings), f"alone-{kind}")], "bench",
                         data_size=_data_size(data_path), executor=kind)
    executor.wake()
    _follow(executor, queue, [run.id])
    finished = queue.get(run.id)
    if finished.status != "done":
        raise RuntimeError(f"the {kind} run ended {finished.status}: {finished.error}")
    return round(finished.finished_at - finished.submitted_at, 2)


def _follow(executor, queue, ids: list[int]) -> dict[int, float]:
    """Wait (the executor's own thread does the work) until the runs end; returns when each first
    showed progress, in wall-clock seconds."""
    first_progress: dict[int, float] = {}
    deadline = time.monotonic() + RUN_TIMEOUT * len(ids)
    try:
        while time.monotonic() < deadline:
            runs = [queue.get(run_id) for run_id in ids]
            for run in runs:
                if run.id not in first_progress and (run.epochs or run.last_batch):
                    first_progress[run.id] = time.time()
            if all(run.finished for run in runs):
                return first_progress
            time.sleep(0.1)
        raise TimeoutError(f"the runs did not finish within {RUN_TIMEOUT * len(ids):.0f} s")
    finally:
        executor.close()


def _data_size(data_path: str | None) -> int:
    from digitlab.data import load_mnist

    return len(load_mnist(data_path, allow_download=False).y_train)


@contextlib.contextmanager
def ray_head(cpus: int, timeout: float = HEAD_START_TIMEOUT) -> Iterator[str]:
    """``ray start --head`` on the loopback with ``cpus`` CPUs, in its own process group; yields its
    address and stops that group (only) afterwards."""
    import ray

    from digitlab.jobs.ray_executor import worker_environment

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    head = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={port}", f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, **worker_environment(), "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        deadline = time.monotonic() + timeout
        while not _answers(port):
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Ray head did not start on port {port}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        ray.shutdown()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(5)
        except subprocess.TimeoutExpired:  # the head's throwaway state needs no orderly shutdown
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
