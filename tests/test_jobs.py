"""The training child process: its events, stop, failure, death, and the CLI's equality.

Most tests run fake training functions (defined here, imported by name in the child) on a tiny
synthetic MNIST file, so a child starts in well under a second; one test runs the real
``train_and_store`` and compares it with the CLI's run on the same settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from digitlab.jobs.process import TrainingJob

TIMEOUT = 120  # seconds: a guard against a hang; the suite runs two test files at once
FAST = {"architecture": "mlp", "epochs": 2, "batch_size": 32, "train_size": 200, "validation_fraction": 0.1}


def config(**changes):
    """A TrainConfig (imported late: a child importing this module must not load TensorFlow)."""
    from digitlab.config import TrainConfig

    return TrainConfig(**{**FAST, **changes})


# -- fake runners (same signature as digitlab.jobs.child.run_train_and_store) --------------------------
@dataclass(frozen=True)
class FakeEvent:
    """Stands in for TrainEvent so the child need not import TensorFlow."""

    kind: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    elapsed: float = 0.0
    eta: float | None = None
    logs: dict = field(default_factory=dict)


def _fake_card(name: str, epochs_run: int, stopped: bool) -> dict:
    return {"name": name, "architecture": "mlp", "test": {"accuracy": 0.5, "loss": 1.0},
            "epochs_run": epochs_run, "best_epoch": epochs_run, "stopped_early": stopped,
            "train_seconds": 0.1, "parameters": 10, "history": []}


def fake_train(spec, *, on_event, stop, keep_if_stopped):
    """Two batches per epoch, then a card; nothing written."""
    epochs = spec.config["epochs"]
    on_event(FakeEvent("start", 0, epochs, 0, 2))
    for epoch in range(1, epochs + 1):
        for batch in (1, 2):
            on_event(FakeEvent("batch", epoch, epochs, batch, 2, logs={"loss": 1.0 / epoch}))
        on_event(FakeEvent("epoch", epoch, epochs, 2, 2, logs={"loss": 1.0 / epoch, "val_loss": 2.0 / epoch}))
    on_event(FakeEvent("end", epochs, epochs, 2, 2))
    return _fake_card(spec.name, epochs, False)


def fake_until_stopped(spec, *, on_event, stop, keep_if_stopped):
    """One epoch, then batches until stopped; keeps or discards as ``keep_if_stopped`` says then."""
    on_event(FakeEvent("epoch", 1, 99, 10, 10, logs={"loss": 0.5}))
    deadline = time.monotonic() + TIMEOUT
    batch = 0
    while not stop.is_set() and time.monotonic() < deadline:
        batch = batch % 9 + 1
        on_event(FakeEvent("batch", 2, 99, batch, 10, logs={"loss": 0.4}))
        time.sleep(0.02)
    return _fake_card(spec.name, 1, True) if keep_if_stopped() else None


def fake_failing(spec, *, on_event, stop, keep_if_stopped):
    on_event(FakeEvent("epoch", 1, 3, 2, 2, logs={"loss": 0.5}))
    raise RuntimeError("simulated failure in epoch 2")


def fake_crash(spec, *, on_event, stop, keep_if_stopped):
    print("about to crash", file=sys.stderr, flush=True)
    os._exit(3)


def fake_killed(spec, *, on_event, stop, keep_if_stopped):
    """Chatter on stderr as TensorFlow does, then die as the kernel's OOM killer would."""
    import signal

    print("W tensorflow/core/framework/op_kernel.cc] use_unbounded_threadpool which is not in the "
          "op definition", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


# -- fixtures --------------------------------------------------------------------------------
def write_tiny_mnist(path: Path) -> Path:
    """A 300/50-image MNIST-shaped file: a child loads it in milliseconds."""
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 255, (300, 28, 28), dtype=np.uint8),
             y_train=np.arange(300, dtype=np.uint8) % 10,
             x_test=rng.integers(0, 255, (50, 28, 28), dtype=np.uint8),
             y_test=np.arange(50, dtype=np.uint8) % 10)
    return path


def make_store(folder: Path) -> Path:
    """A store folder holding one user model's card, ``existing``."""
    folder.mkdir()
    (folder / "existing.json").write_text("{}")
    return folder


@pytest.fixture()
def tiny_data(tmp_path: Path) -> Path:
    return write_tiny_mnist(tmp_path / "tiny.npz")


@pytest.fixture()
def store_dir(tmp_path: Path) -> Path:
    return make_store(tmp_path / "models")


def start_job(store_dir: Path, data: Path, function: str, name: str, **changes) -> TrainingJob:
    """A :class:`TrainingJob` running ``function`` (a fake runner of this module)."""
    job = TrainingJob(config(**changes), name, store_dir, data_path=data, runner=f"test_jobs:{function}")
    job.start()
    return job


def store_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def wait_for(predicate, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- tests -----------------------------------------------------------------------------------
def test_events_arrive_in_order_and_result_is_reported(store_dir, tiny_data):
    job = start_job(store_dir, tiny_data, "fake_train", "new-model")
    snapshot = job.wait(TIMEOUT)
    assert snapshot.status == "done", snapshot.error
    assert [e["epoch"] for e in snapshot.epochs] == [1, 2]
    assert snapshot.history == [{"epoch": 1, "loss": 1.0, "val_loss": 2.0},
                                {"epoch": 2, "loss": 0.5, "val_loss": 1.0}]
    assert snapshot.card["name"] == "new-model" and snapshot.card["test_accuracy"] == 0.5
    assert snapshot.finished_at >= snapshot.started_at
    assert not job.active


@pytest.mark.parametrize(("keep", "status"), [(True, "stopped-kept"), (False, "stopped-discarded")])
def test_stop_is_honoured_with_the_choice_made_at_stop_time(store_dir, tiny_data, keep, status):
    job = start_job(store_dir, tiny_data, "fake_until_stopped", "stoppable")
    wait_for(lambda: job.snapshot().last_batch is not None)
    assert job.snapshot().status == "running"
    job.stop(keep=keep)
    assert job.snapshot().status == "stopping"
    snapshot = job.wait(TIMEOUT)
    assert snapshot.status == status
    assert snapshot.stop_requested == ("keep" if keep else "discard")
    assert (snapshot.card is not None) == keep


def test_a_run_whose_server_went_away_stops_and_discards(store_dir, tiny_data):
    job = start_job(store_dir, tiny_data, "fake_until_stopped", "orphan")
    wait_for(lambda: job.snapshot().last_batch is not None)
    job._process.stdin.close()  # what the child sees when the web server exits
    assert job.wait(TIMEOUT).status == "stopped-discarded"


def test_failure_in_training_is_reported_and_store_untouched(store_dir, tiny_data):
    before = store_files(store_dir)
    snapshot = start_job(store_dir, tiny_data, "fake_failing", "doomed").wait(TIMEOUT)
    assert snapshot.status == "failed"
    assert snapshot.error == "simulated failure in epoch 2"
    assert len(snapshot.epochs) == 1
    assert store_files(store_dir) == before


def test_a_dead_child_is_reported_by_its_exit_code_and_its_log_goes_to_the_server_log(
        store_dir, tiny_data, caplog):
    with caplog.at_level("WARNING", logger="digitlab.jobs"):
        snapshot = start_job(store_dir, tiny_data, "fake_crash", "crashy").wait(TIMEOUT)
    assert snapshot.status == "failed"
    assert snapshot.error == "the training process ended unexpectedly (exit code 3)"
    assert "about to crash" in caplog.text


def test_the_real_run_matches_the_cli_and_lands_in_the_store(tmp_path, mnist_path):
    """The child runs train_and_store exactly as ``python -m digitlab train`` does."""
    settings = {"epochs": 1, "train_size": 1000, "batch_size": 64, "seed": 3, "validation_fraction": None}
    cli_store = tmp_path / "cli"
    cli = subprocess.Popen(
        [sys.executable, "-m", "digitlab", "train", "--arch", "mlp", "--epochs", "1", "--train-size", "1000",
         "--batch-size", "64", "--seed", "3", "--name", "same", "--models", str(cli_store),
         "--data", str(mnist_path)],
        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    page_store = tmp_path / "page"
    job = TrainingJob(config(**settings), "same", page_store, data_path=mnist_path)
    job.start()
    snapshot = job.wait(120)
    _, cli_errors = cli.communicate(timeout=120)
    assert snapshot.status == "done", snapshot.error
    assert cli.returncode == 0, cli_errors.decode()
    page_card = json.loads((page_store / "same.json").read_text())
    cli_card = json.loads((cli_store / "same.json").read_text())
    assert snapshot.card["test_accuracy"] == page_card["test"]["accuracy"] > 0.5
    assert page_card["config"] == cli_card["config"]
    for page_row, cli_row in zip(page_card["history"], cli_card["history"], strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert page_row[key] == pytest.approx(cli_row[key], abs=1e-6)
    assert page_card["test"]["accuracy"] == pytest.approx(cli_card["test"]["accuracy"], abs=1e-4)
    assert [e["kind"] for e in snapshot.epochs] == ["epoch"]
    assert snapshot.last_batch["batch"] == snapshot.last_batch["batches"]  # the last batch always goes through
