"""The Ray executor on a Ray head this module starts on the loopback: three runs at once (one of
them from the CLI's ``--ray``), their progress, their models in the shared store, and a stop.

Skipped where Ray is not installed (``pip install -r requirements-cluster.txt``). The head is
started once for the module with 3 CPUs and stopped after it; the runs are tiny MLPs on a
300-image synthetic MNIST, so no real MNIST is needed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_jobs import config, make_store, wait_for, write_tiny_mnist

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-cluster.txt")

from bench.queueing import ray_head  # noqa: E402 - after the skip
from digitlab.jobs.queue import RunQueue, RunRequest  # noqa: E402
from digitlab.jobs.ray_executor import RayExecutor  # noqa: E402
from digitlab.store import ModelStore  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
HEAD_CPUS = 3
RUN_TIMEOUT = 300
TINY = {"epochs": 2, "batch_size": 30, "train_size": 300, "validation_fraction": 0.1, "augment": False}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_address() -> str:
    """``ray start --head`` on the loopback with 3 CPUs (the benchmark's own helper), stopped after."""
    with ray_head(cpus=HEAD_CPUS) as address:
        yield address


@pytest.fixture()
def setup(tmp_path: Path, ray_address: str):
    data = write_tiny_mnist(tmp_path / "tiny.npz")
    queue = RunQueue(make_store(tmp_path / "models"))
    return queue, data, ray_address


def drive(executor: RayExecutor, ids, timeout: float = RUN_TIMEOUT, seen=None):
    """Step the executor until every run in ``ids`` has finished; record what was seen on the way."""
    def finished() -> bool:
        executor.step()
        runs = [executor.queue.get(run_id) for run_id in ids]
        if seen is not None:
            for run in runs:
                seen.setdefault(run.id, set()).add(run.status)
                if run.last_batch is not None and run.active:
                    seen.setdefault(("batch", run.id), set()).add(run.last_batch["batch"])
        return all(run.finished for run in runs)

    wait_for(finished, timeout)
    return [executor.queue.get(run_id) for run_id in ids]


def test_three_runs_at_once_finish_stream_progress_and_land_in_the_store(setup):
    """Two runs queued here and one from ``digitlab train --ray`` in another process, side by side."""
    queue, data, address = setup
    cli = subprocess.Popen(
        [sys.executable, "-m", "digitlab", "train", "--arch", "mlp", "--epochs", "2", "--train-size", "300",
         "--batch-size", "30", "--no-augment", "--name", "from-cli", "--models", str(queue.models_dir),
         "--data", str(data), "--ray", address],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    requests = [RunRequest(config(**TINY, seed=seed), f"ray-{seed}") for seed in range(2)]
    runs = queue.submit(requests, "alice", data_size=300, executor="ray", sweep="ray-test")
    executor = RayExecutor(queue, address=address, data_path=str(data))
    assert executor.capacity == HEAD_CPUS
    executor.step()
    assert [queue.get(run.id).status for run in runs] == ["starting"] * 2
    seen: dict = {}

    def cli_run() -> int | None:  # the CLI queues its run once it has loaded TensorFlow
        return next((run.id for run in queue.runs() if run.name == "from-cli"), None)

    wait_for(lambda: executor.step() or cli_run() is not None, RUN_TIMEOUT)
    # This executor supervises the CLI's run too: it steps until all three are done, or the CLI's
    # run would lose its supervisor's heartbeat once this test's two runs were over.
    drive(executor, [run.id for run in runs] + [cli_run()], seen=seen)
    out, err = cli.communicate(timeout=RUN_TIMEOUT)
    assert cli.returncode == 0, err[-2000:]
    assert out.startswith("saved from-cli: test accuracy ") and "from-cli: epoch 2/2" in err
    finished = [run for run in queue.runs() if run.executor == "ray"]
    assert sorted(run.name for run in finished) == ["from-cli", "ray-0", "ray-1"]
    assert [run.status for run in finished] == ["done"] * 3, [run.error for run in finished]
    assert all(len(run.epochs) == 2 and "val_accuracy" in run.history[-1] for run in finished)
    assert all("running" in seen[run.id] for run in runs)  # progress arrived while they ran
    starts, ends = [run.started_at for run in finished], [run.finished_at for run in finished]
    assert max(starts) < min(ends)  # they overlapped: the cluster ran them side by side
    listed = {entry.name: entry for entry in ModelStore(queue.models_dir).list()}
    assert all(listed[run.name].usable for run in finished)
    assert ModelStore(queue.models_dir).load("ray-0").output_shape == (None, 10)


def test_a_stop_ends_the_run_on_the_cluster_and_frees_its_cpus(setup):
    queue, data, address = setup
    [run] = queue.submit([RunRequest(config(), "ray-stop")], "alice", data_size=300, executor="ray")
    executor = RayExecutor(queue, address=address, data_path=str(data), runner="test_jobs:fake_until_stopped")
    wait_for(lambda: (executor.step(), queue.get(run.id).last_batch is not None)[-1], RUN_TIMEOUT)
    queue.request_stop(run.id, "alice", keep=False)
    [stopped] = drive(executor, [run.id])
    assert stopped.status == "stopped-discarded" and stopped.stop_requested == "discard"
    assert not (queue.models_dir / "ray-stop.json").exists()
    wait_for(lambda: ray.available_resources().get("CPU", 0) == HEAD_CPUS, 30)
