"""The training queue: positions, owners, capacity, restart recovery, and the local executor.

Runs use the fake runners of test_jobs (a child process that starts in well under a second and
loads no TensorFlow) over a tiny synthetic MNIST file; nothing here needs the real MNIST.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlite_support import refuse_preparing
from test_jobs import TIMEOUT, config, make_store, wait_for, write_tiny_mnist

from digitlab.jobs.executor import LocalExecutor, executor_from_environment, local_capacity
from digitlab.jobs.queue import NotOwnerError, RunQueue, RunRequest, is_queue_file

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DATA_SIZE = 300  # the tiny_data fixture's training images


@pytest.fixture()
def tiny_data(tmp_path: Path) -> Path:
    return write_tiny_mnist(tmp_path / "tiny.npz")


@pytest.fixture()
def queue(tmp_path: Path) -> RunQueue:
    return RunQueue(make_store(tmp_path / "models"))


def submit(queue: RunQueue, name: str, owner: str = "alice", **changes):
    [run] = queue.submit([RunRequest(config(**changes), name)], owner, data_size=DATA_SIZE)
    return run


def executor(queue: RunQueue, data: Path, function: str, **options) -> LocalExecutor:
    return LocalExecutor(queue, data_path=data, runner=f"test_jobs:{function}", **options)


def status(queue: RunQueue, run_id: int) -> str:
    return queue.get(run_id).status


def finish_all(queue: RunQueue, worker: LocalExecutor, ids, timeout: float = TIMEOUT) -> None:
    def finished() -> bool:
        worker.step()
        return all(queue.get(run_id).finished for run_id in ids)

    wait_for(finished, timeout)


# -- submitting and watching ------------------------------------------------------------------
def test_runs_wait_in_order_with_a_visible_position_and_owner(queue):
    first, second, third = (submit(queue, name, owner) for name, owner in
                            (("one", "alice"), ("two", "bob"), ("three", "alice")))
    runs = queue.runs()
    assert [(run.name, run.position, run.status, run.owner) for run in runs] == [
        ("one", 1, "queued", "alice"), ("two", 2, "queued", "bob"), ("three", 3, "queued", "alice")]
    assert all(run.submitted_at > 0 and run.started_at is None for run in runs)
    RunQueue(queue.models_dir).request_stop(second.id, "bob", keep=False)  # a second server's view
    assert [(run.name, run.position) for run in queue.runs()[:2]] == [("one", 1), ("three", 2)]
    assert queue.get(second.id).status == "cancelled"


@pytest.mark.parametrize(("changes", "message"), [
    ({"epochs": 0}, "epochs must be 1–500"),
    ({"learning_rate": float("nan")}, "learning rate must be a finite number"),
    ({"batch_size": 1000}, "batch size must be 1–"),
    ({"train_size": 400}, "training-set size must be 100–300"),
])
def test_invalid_settings_are_refused_and_nothing_is_queued(queue, changes, message):
    with pytest.raises(ValueError, match=message):
        submit(queue, "fine-name", **changes)
    assert queue.runs() == []


@pytest.mark.parametrize(("name", "message"), [
    ("../evil", "invalid model name"), ("cnn", "shipped model"), ("existing", "already exists")])
def test_illegal_or_taken_names_are_refused(queue, name, message):
    with pytest.raises(ValueError, match=message):
        submit(queue, name)


def test_a_name_already_waiting_is_refused_and_a_sweep_is_all_or_nothing(queue):
    submit(queue, "twice")
    with pytest.raises(ValueError, match="'twice' is already queued or going"):
        submit(queue, "twice", owner="bob")
    requests = [RunRequest(config(), "fresh"), RunRequest(config(epochs=0), "broken")]
    with pytest.raises(ValueError, match="epochs"):
        queue.submit(requests, "alice", data_size=DATA_SIZE)
    assert [run.name for run in queue.runs()] == ["twice"]


def test_only_the_owner_or_an_operator_can_stop_a_run(queue):
    run = submit(queue, "mine", owner="alice")
    with pytest.raises(NotOwnerError, match="started by alice; only they can stop it"):
        queue.request_stop(run.id, "mallory", keep=False)
    assert status(queue, run.id) == "queued"
    assert not queue.get(run.id).can_stop("mallory") and queue.get(run.id).can_stop("alice")
    assert queue.request_stop(run.id, "operator", keep=False, operator=True).status == "cancelled"
    with pytest.raises(ValueError, match="already finished"):
        queue.request_stop(run.id, "alice", keep=False)


def test_the_queue_files_are_told_apart_from_models(queue):
    submit(queue, "anything")
    names = {path.name for path in queue.models_dir.iterdir()}
    assert {name for name in names if is_queue_file(name)} >= {"queue.sqlite"}
    assert not is_queue_file("existing.json")


def test_a_new_queue_file_another_process_is_still_preparing_is_waited_for(tmp_path, monkeypatch):
    refusals = refuse_preparing(monkeypatch, RunQueue)
    queue = RunQueue(tmp_path)
    assert queue.runs() == [] and len(refusals) == 2


# -- the local executor ----------------------------------------------------------------------
def test_runs_go_one_at_a_time_and_each_records_its_progress_and_outcome(queue, tiny_data):
    ids = [submit(queue, name).id for name in ("first", "second", "third")]
    worker = executor(queue, tiny_data, "fake_train")
    worker.step()
    assert [status(queue, run_id) for run_id in ids] == ["starting", "queued", "queued"]
    assert queue.get(ids[1]).position == 1
    finish_all(queue, worker, ids)
    runs = [queue.get(run_id) for run_id in ids]
    assert [run.status for run in runs] == ["done"] * 3
    assert [len(run.epochs) for run in runs] == [2, 2, 2]
    assert runs[0].history == [{"epoch": 1, "loss": 1.0, "val_loss": 2.0}, {"epoch": 2, "loss": 0.5, "val_loss": 1.0}]
    assert runs[0].card["name"] == "first" and runs[0].card["test_accuracy"] == 0.5
    assert runs[0].finished_at <= runs[1].started_at and runs[1].finished_at <= runs[2].started_at


def test_the_capacity_is_shared_by_every_executor_on_the_store(queue, tiny_data):
    """Two servers over one store: with capacity 1 between them, one run goes at a time."""
    ids = [submit(queue, name).id for name in ("a", "b")]
    left = executor(queue, tiny_data, "fake_until_stopped", worker="left:1")
    right = executor(RunQueue(queue.models_dir), tiny_data, "fake_until_stopped", worker="right:2")
    left.step()
    right.step()
    assert [status(queue, run_id) for run_id in ids] == ["starting", "queued"]
    assert queue.get(ids[0]).worker == "left:1"
    both = LocalExecutor(queue, capacity=2, data_path=tiny_data, runner="test_jobs:fake_until_stopped",
                         worker="right:2")
    both.step()
    assert status(queue, ids[1]) == "starting"
    for run_id, owner in zip(ids, ("alice", "alice"), strict=True):
        queue.request_stop(run_id, owner, keep=False)
    wait_for(lambda: (left.step(), both.step(), all(queue.get(i).finished for i in ids))[-1])
    assert [status(queue, run_id) for run_id in ids] == ["stopped-discarded"] * 2


@pytest.mark.parametrize(("keep", "outcome"), [(True, "stopped-kept"), (False, "stopped-discarded")])
def test_a_stop_from_another_server_reaches_the_run(queue, tiny_data, keep, outcome):
    run = submit(queue, "long")
    worker = executor(queue, tiny_data, "fake_until_stopped")
    wait_for(lambda: (worker.step(), queue.get(run.id).last_batch is not None)[-1])
    assert status(queue, run.id) == "running" and queue.get(run.id).last_batch["kind"] == "batch"
    RunQueue(queue.models_dir).request_stop(run.id, "alice", keep=keep)
    assert status(queue, run.id) == "stopping"
    finish_all(queue, worker, [run.id])
    finished = queue.get(run.id)
    assert finished.status == outcome and finished.stop_requested == ("keep" if keep else "discard")
    assert (finished.card is not None) == keep


def test_a_failed_run_says_why_and_the_next_one_still_runs(queue, tiny_data):
    doomed, fine = submit(queue, "doomed").id, submit(queue, "fine").id
    worker = executor(queue, tiny_data, "fake_failing")
    finish_all(queue, worker, [doomed])
    assert queue.get(doomed).error == "simulated failure in epoch 2"
    assert status(queue, fine) in ("starting", "running", "failed")


def test_the_loop_thread_picks_up_a_run_submitted_later(queue, tiny_data):
    worker = executor(queue, tiny_data, "fake_train").start()
    try:
        run = submit(queue, "later")
        worker.wake()
        wait_for(lambda: queue.get(run.id).status == "done")
    finally:
        worker.close()


# -- restarts -----------------------------------------------------------------------------------
SERVER = """
import sys, time
sys.path.insert(0, sys.argv[3])
from digitlab.jobs.executor import LocalExecutor
from digitlab.jobs.queue import RunQueue
LocalExecutor(RunQueue(sys.argv[1]), data_path=sys.argv[2], runner="test_jobs:fake_until_stopped").start()
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("attempt", range(3))
def test_a_killed_server_leaves_no_run_running_and_the_queue_goes_on(queue, tiny_data, attempt):
    """A server killed with one run going and one waiting: the next process to look marks the
    first ``interrupted`` (its child discards it), and the waiting one runs."""
    going, waiting = submit(queue, f"going-{attempt}").id, submit(queue, f"waiting-{attempt}").id
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(queue.models_dir), str(tiny_data), str(TESTS)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: status(queue, going) == "running")
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        server.stdout.close()
    assert status(queue, going) == "running"  # nobody has looked yet
    restarted = executor(RunQueue(queue.models_dir), tiny_data, "fake_train")
    restarted.step()
    interrupted = queue.get(going)
    assert interrupted.status == "interrupted" and "ended before it finished" in interrupted.error
    finish_all(queue, restarted, [waiting])
    assert status(queue, waiting) == "done"
    assert not [run for run in queue.runs() if run.active or run.status == "queued"]


def test_a_silent_supervisor_on_another_host_is_given_up_after_a_while(queue):
    run = submit(queue, "far-away")
    claimed = queue.claim(("local",), "other-host:1", 1, ("local", "inline"))
    assert claimed.id == run.id
    assert queue.recover() == []  # another machine's process: its pid says nothing here
    assert queue.recover(now=time.time() + 31) == [run.id]


def test_capacity_comes_from_the_environment(queue, monkeypatch):
    monkeypatch.setenv("DIGITLAB_CONCURRENT_RUNS", "3")
    assert local_capacity() == 3 and executor_from_environment(queue).capacity == 3
    monkeypatch.setenv("DIGITLAB_CONCURRENT_RUNS", "many")
    with pytest.raises(ValueError, match="DIGITLAB_CONCURRENT_RUNS must be a whole number"):
        local_capacity()


REAL_SERVER = SERVER.replace(', runner="test_jobs:fake_until_stopped"', "")


@pytest.mark.slow
def test_nothing_is_lost_when_a_server_with_real_runs_is_killed(queue, tiny_data):
    """Real runs (tiny MLPs): one finished, one killed mid-training with its server, one waiting.
    After the restart every run is accounted for and every listed model loads."""
    from digitlab.store import ModelStore

    done = submit(queue, "kept", epochs=1, batch_size=30, augment=False).id
    killed = submit(queue, "killed", epochs=200, batch_size=30, augment=False).id
    waiting = submit(queue, "after", epochs=1, batch_size=30, augment=False).id
    server = subprocess.Popen([sys.executable, "-c", REAL_SERVER, str(queue.models_dir), str(tiny_data), str(TESTS)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: len(queue.get(killed).epochs) >= 1, 180)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
        server.stdout.close()
    restarted = LocalExecutor(RunQueue(queue.models_dir), data_path=str(tiny_data))
    finish_all(queue, restarted, [waiting], 180)
    assert [status(queue, run_id) for run_id in (done, killed, waiting)] == ["done", "interrupted", "done"]
    store = ModelStore(queue.models_dir)
    listed = {entry.name: entry for entry in store.list() if entry.name != "existing"}
    assert sorted(listed) == ["after", "kept"] and all(entry.usable for entry in listed.values())
    assert all(store.load(name).output_shape == (None, 10) for name in listed)
