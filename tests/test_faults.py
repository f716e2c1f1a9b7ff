"""Faults: a save killed with SIGKILL, a model replaced while sessions predict, a NaN loss.

The kill test needs a process that is killed in the middle of ``ModelStore.save`` many times.
Starting a fresh Python (and TensorFlow) for each kill would take minutes, so one helper process
imports Keras once and forks a saver per round; the saver saves a small model over and over
until it is killed at a random moment. (Forking is safe there: the helper has run no TensorFlow
op yet, so it has no thread pools to inherit.)
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from digitlab import training
from digitlab.cli import main
from digitlab.inference import Predictor
from digitlab.jobs.queue import is_queue_file
from digitlab.runs import train_and_store
from digitlab.store import TEMP_PREFIX, ModelStore
from digitlab.training import TrainConfig, TrainingError

ROOT = Path(__file__).resolve().parent.parent
KILLS = 20
FINAL_VERSION = 12
TIMEOUT = 120
QUICK = {"epochs": 2, "batch_size": 50, "train_size": 300, "validation_fraction": 0.0, "augment": False}

# The helper: imports Keras, then forks one saver per line read on stdin and reports its pid and
# how it ended. Each saver stores version after version of "victim"; version v's output bias
# peaks at digit v % 10, so a loaded file tells which version it is.
SAVER_HELPER = r"""
import os, sys
import numpy as np
import keras
from digitlab.store import ModelStore

store = ModelStore(sys.argv[1])


def save_forever():
    inputs = keras.Input((28, 28))
    dense = keras.layers.Dense(10, kernel_initializer="zeros")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    version = store.read_card("victim")["version"]
    while True:
        version += 1
        dense.bias.assign(np.eye(10, dtype="float32")[version % 10] * 10)
        store.save("victim", model, {"version": version}, overwrite=True)


for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            save_forever()
        finally:
            os._exit(1)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def versioned_model(version: int) -> keras.Model:
    """A model that answers ``version % 10`` whatever the input."""
    inputs = keras.Input((28, 28))
    dense = keras.layers.Dense(10, kernel_initializer="zeros")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.bias.assign(np.eye(10, dtype="float32")[version % 10] * 10)
    return model


def answer(model: keras.Model) -> int:
    return int(np.argmax(model(np.zeros((1, 28, 28), np.float32), training=False)[0]))


def stray_files(store: ModelStore) -> set[str]:
    """Temp files and weights no card points to."""
    referenced = {entry.card["model_file"] for entry in store.list() if entry.card}
    return {path.name for path in store.root.iterdir()
            if path.name.startswith(TEMP_PREFIX) or (path.suffix == ".keras" and path.name not in referenced)}


def wait_for(condition, timeout: float = TIMEOUT, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# -- SIGKILL during a save ------------------------------------------------------------------------
def test_saves_killed_at_random_moments_never_break_the_store(tmp_path):
    store = ModelStore(tmp_path / "models")
    store.save("victim", versioned_model(0), {"version": 0})
    store.save("bystander", versioned_model(7), {"version": 7})
    bystander_bytes = store.model_path("bystander").read_bytes()
    helper = subprocess.Popen([sys.executable, "-c", SAVER_HELPER, str(store.root)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    randomness = random.Random(20)
    strays_seen = 0
    try:
        for _ in range(KILLS):
            before = store.read_card("victim")["version"]
            helper.stdin.write("save\n")
            helper.stdin.flush()
            saver = int(helper.stdout.readline())
            # Once it has saved at least once it is in its loop: kill it somewhere inside a save.
            wait_for(lambda before=before: store.read_card("victim")["version"] > before, what="a save")
            time.sleep(randomness.uniform(0.0, 0.1))
            os.kill(saver, signal.SIGKILL)
            assert int(helper.stdout.readline()) == signal.SIGKILL  # the wait status of a killed child

            entries = store.list()
            assert {entry.name for entry in entries} == {"victim", "bystander"}
            assert all(entry.usable for entry in entries), [entry.error for entry in entries]
            card = store.read_card("victim")
            assert card["version"] > before  # the last finished save, or the one before: whole either way
            assert answer(store.load("victim")) == card["version"] % 10
            victim_bytes = store.model_path("victim").read_bytes()
            assert store.model_path("bystander").read_bytes() == bystander_bytes

            strays = stray_files(store)
            strays_seen += bool(strays)
            assert sorted(store.clean(min_age_seconds=0)) == sorted(strays)  # what a start-up does
            assert not stray_files(store)
            assert store.model_path("victim").read_bytes() == victim_bytes
    finally:
        helper.kill()
        helper.wait()
        helper.stdin.close()
        helper.stdout.close()
    assert answer(store.load("bystander")) == 7
    assert strays_seen >= 1, "no kill landed inside a save: the test did not test anything"


def test_a_run_cleans_stale_leftovers_at_start_but_not_a_save_in_progress(tmp_path, small_data, monkeypatch):
    store = ModelStore(tmp_path / "models")
    store.save("keep", versioned_model(3), {"version": 3})
    stale_temp = store.root / f"{TEMP_PREFIX}dead.keras"
    stale_orphan = store.root / "keep.deadbeef.keras"
    fresh_temp = store.root / f"{TEMP_PREFIX}in-progress.keras"  # another process's save, right now
    for path in (stale_temp, stale_orphan, fresh_temp):
        path.write_bytes(b"half a model")
    an_hour_ago = time.time() - 3600
    for path in (stale_temp, stale_orphan):
        os.utime(path, (an_hour_ago, an_hour_ago))
    _poison_from_batch(monkeypatch, 0)  # the run stops at once; the cleaning came before it
    with pytest.raises(TrainingError):
        train_and_store(TrainConfig("mlp", **QUICK), small_data, store, "new")
    assert not stale_temp.exists() and not stale_orphan.exists()
    assert fresh_temp.exists()
    assert answer(store.load("keep")) == 3


# -- a model replaced while sessions predict ----------------------------------------------------
class Session(threading.Thread):
    """A visitor of the Draw page: list the store, take the model's predictor, predict, repeat.

    Predictors are shared between sessions and kept per weights file, as ``app_pages/common.py``
    does with ``st.cache_resource``, so a replaced model (a new weights file) is loaded afresh.
    """

    def __init__(self, store: ModelStore, cache: dict, lock: threading.Lock, stop: threading.Event):
        super().__init__(daemon=True)
        self.store, self.cache, self.lock, self.stop = store, cache, lock, stop
        self.answers: list[int] = []
        self.errors: list[str] = []

    def predictor(self) -> Predictor:
        entry = next(entry for entry in self.store.list() if entry.name == "live")
        assert entry.usable, entry.error
        with self.lock:
            key = entry.card["model_file"]
            if key not in self.cache:
                self.cache[key] = Predictor(self.store.load("live"))
            return self.cache[key]

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.answers.append(self.predictor().predict_one(np.zeros((28, 28), np.float32))[0])
            except Exception as error:  # noqa: BLE001 - any error is a failure of the test
                self.errors.append(f"{type(error).__name__}: {error}")


def test_sessions_keep_answering_while_the_model_is_replaced(tmp_path):
    store = ModelStore(tmp_path)
    store.save("live", versioned_model(1), {"version": 1})
    cache, lock, stop = {}, threading.Lock(), threading.Event()
    sessions = [Session(store, cache, lock, stop) for _ in range(4)]
    for session in sessions:
        session.start()
    try:
        wait_for(lambda: all(session.answers for session in sessions), what="first answers")
        for version in range(2, FINAL_VERSION + 1):  # back to back: loads overlap the next save
            store.save("live", versioned_model(version), {"version": version}, overwrite=True)
        marks = [len(session.answers) for session in sessions]
        wait_for(lambda: all(len(s.answers) > mark + 3 for s, mark in zip(sessions, marks, strict=True)),
                 what="answers after the last replacement")
    finally:
        stop.set()
        for session in sessions:
            session.join(TIMEOUT)
    assert [session.errors for session in sessions] == [[]] * len(sessions)
    # every session moved to the last version
    assert all(session.answers[-1] == FINAL_VERSION % 10 for session in sessions)


def test_a_load_overtaken_by_a_replacement_loads_the_new_file(tmp_path, monkeypatch):
    """The rare interleaving, made certain: the card is read, then a save replaces the model and
    deletes the file just named, then Keras opens it."""
    store = ModelStore(tmp_path)
    store.save("live", versioned_model(1), {"version": 1})
    real_load_model = keras.saving.load_model
    overtaken = []

    def load_after_a_replacement(path, *args, **kwargs):
        if not overtaken:
            overtaken.append(Path(path))
            store.save("live", versioned_model(2), {"version": 2}, overwrite=True)
        return real_load_model(path, *args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", load_after_a_replacement)
    assert answer(store.load("live")) == 2
    assert not overtaken[0].exists()


# -- a NaN loss -------------------------------------------------------------------------------------
def _poison_from_batch(monkeypatch, first_bad_batch: int) -> None:
    """Make the optimizer's learning rate NaN from ``first_bad_batch`` on: the weights, and so the
    loss, become NaN there (earlier epochs stay good). Poisoning the inputs instead is not enough:
    ReLU turns NaN into 0 on some CPUs."""
    import keras
    import tensorflow as tf

    class NanFrom(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return tf.where(step >= first_bad_batch, tf.constant(np.nan), tf.constant(1e-3))

        def get_config(self):
            return {}

    monkeypatch.setattr(training, "make_optimizer", lambda *arguments: keras.optimizers.Adam(NanFrom()))


def _files(folder: Path) -> dict[str, bytes]:
    """Models and cards with their bytes (the training queue's files are not part of the store's contents)."""
    if not folder.exists():
        return {}
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if not is_queue_file(path.name)}


def test_nan_in_a_later_epoch_fails_the_run_and_keeps_the_old_model(tmp_path, small_data, monkeypatch):
    store = ModelStore(tmp_path)
    store.save("mine", versioned_model(4), {"version": 4})
    before = _files(tmp_path)
    batches_per_epoch = QUICK["train_size"] // QUICK["batch_size"]
    _poison_from_batch(monkeypatch, batches_per_epoch + 2)  # epoch 1 is fine, epoch 2 goes NaN
    with pytest.raises(TrainingError, match="NaN"):
        train_and_store(TrainConfig("mlp", **QUICK), small_data, store, "mine", overwrite=True)
    assert _files(tmp_path) == before


def test_nan_through_the_cli_is_one_line_and_saves_nothing(tmp_path, mnist_path, monkeypatch, capsys):
    _poison_from_batch(monkeypatch, 0)
    code = main(["train", "--arch", "mlp", "--name", "nan-run", "--epochs", "1", "--train-size", "300",
                 "--batch-size", "50", "--no-augment", "--models", str(tmp_path), "--data", str(mnist_path)])
    err = capsys.readouterr().err
    assert code == 1 and "NaN" in err and "Traceback" not in err
    assert _files(tmp_path) == {}
    assert ModelStore(tmp_path).list() == []
