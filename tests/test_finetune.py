"""Fine-tuning on a writer's digits: the split, the forgetting meter, stop and store — on small data.

The writer is the synthetic continental writer; the "MNIST" for replay and the meter is made of
UCI digits, so no MNIST is needed.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from handwriting_support import store_tiny_model, uci_inputs

from digitlab.data import Mnist
from digitlab.digits_db import DigitsDb, NewDigit, picture_to_png
from digitlab.evaluation import evaluate
from digitlab.finetune import FinetuneConfig, ForgettingMeter, finetune_and_store, finetune_mix, split_writer
from digitlab.inference import Predictor
from digitlab.jobs.child import RunSpec, run_finetune_and_store
from digitlab.jobs.queue import RunQueue
from digitlab.preprocess import preprocess
from digitlab.store import ModelStore
from digitlab.synthetic_writer import synthetic_writer
from digitlab.training import TrainingError
from digitlab.writer_scores import load_writer_digits

QUICK = {"epochs": 2, "copies": 2, "replay_ratio": 1.0, "batch_size": 32, "learning_rate": 1e-3}


def test_the_split_is_stratified_seeded_and_keeps_every_digit_to_learn_from():
    labels = np.repeat(np.arange(10), [10, 10, 10, 10, 10, 10, 10, 10, 10, 3])
    split = split_writer(labels, 0.3, seed=0)
    assert split.note is None
    assert np.bincount(labels[split.heldout], minlength=10).tolist() == [3] * 9 + [1]
    assert set(labels[split.finetune]) == set(range(10))
    assert not set(split.finetune) & set(split.heldout) and len(split.finetune) + len(split.heldout) == len(labels)
    again, other = split_writer(labels, 0.3, seed=0), split_writer(labels, 0.3, seed=1)
    assert np.array_equal(again.heldout, split.heldout) and not np.array_equal(other.heldout, split.heldout)


def test_too_few_digits_to_hold_any_out_is_said():
    split = split_writer(np.arange(10), 0.3, seed=0)  # one drawing of each digit
    assert len(split.heldout) == 0 and len(split.finetune) == 10
    assert "too few digits to hold any out" in split.note
    assert "held-out fraction 0" in split_writer(np.repeat(np.arange(10), 5), 0.0, seed=0).note
    with pytest.raises(ValueError, match="at least 10 labelled digits"):
        split_writer(np.arange(9), 0.3, seed=0)


def test_each_epoch_mixes_the_writers_copies_with_replay():
    replay = Mnist(np.full((500, 28, 28), 7, np.uint8), np.full(500, 5, np.uint8), np.zeros((1, 28, 28)), np.zeros(1))
    config = FinetuneConfig(base="b", writer="w", copies=3, replay_ratio=2.0)
    x, y = finetune_mix(config, np.ones((20, 28, 28), np.float32), np.arange(20) % 10, replay)
    assert x.dtype == np.uint8 and len(x) == 20 * 3 + 120
    assert (x[:60] == 255).all() and (y[60:] == 5).all()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A store with a tiny base model, a writer of 60 continental digits, and UCI digits as 'MNIST'."""
    root = tmp_path_factory.mktemp("finetune")
    store_tiny_model(root / "models", "base")
    pictures, labels = synthetic_writer(per_digit=6, seed=3)
    db = DigitsDb(root / "digits.sqlite")
    db.add_many([NewDigit("cont", int(label), picture_to_png(picture), preprocess(picture).image)
                 for picture, label in zip(pictures, labels, strict=True)])
    train_x, train_y = uci_inputs(600, start=0)
    test_x, test_y = uci_inputs(300, start=1400)
    data = Mnist(np.rint(train_x * 255).astype(np.uint8), train_y.astype(np.uint8),
                 np.rint(test_x * 255).astype(np.uint8), test_y.astype(np.uint8), "UCI")
    np.savez(root / "uci-as-mnist.npz", x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
             y_test=data.y_test)
    return root, db, data


def test_the_run_card_carries_the_forgetting_meter_and_the_base_is_untouched(setup):
    root, db, data = setup
    store = ModelStore(root / "models")
    base_file = store.model_path("base").read_bytes()
    digits = load_writer_digits(db, "cont")
    card = finetune_and_store(FinetuneConfig("base", "cont", **QUICK), digits, data, store, "base-cont")
    assert store.model_path("base").read_bytes() == base_file
    tuned = card["finetune"]
    meter = ForgettingMeter.from_dict(tuned["meter"])
    assert tuned["finetune_digits"] == 40 and meter.heldout_digits == 20  # 2 of each digit's 6
    assert tuned["note"] is None
    # Every figure of the meter is what evaluating the two models gives.
    base, after = Predictor(store.load("base")), Predictor(store.load("base-cont"))
    assert meter.mnist_before == pytest.approx(evaluate(base, data.x_test, data.y_test).accuracy)
    assert meter.mnist_after == pytest.approx(evaluate(after, data.x_test, data.y_test).accuracy, abs=1e-6)
    assert meter.mnist_after == pytest.approx(card["test"]["accuracy"])
    held = [digit for digit in digits.digits if digit.id in set(tuned["heldout_ids"])]
    images, labels = np.stack([d.model_input for d in held]), np.array([d.label for d in held])
    assert meter.heldout_before == pytest.approx(evaluate(base, images, labels).accuracy)
    assert meter.heldout_after == pytest.approx(evaluate(after, images, labels).accuracy, abs=1e-6)
    assert card["epochs_run"] == 2 and len(card["history"]) == 2
    assert json.loads((root / "models" / "base-cont.json").read_text())["finetune"]["writer"] == "cont"
    assert "base-cont" in [entry.name for entry in store.list() if entry.usable]  # it is in the Draw picker


def test_fine_tuning_lifts_the_writers_held_out_accuracy(setup):
    """On a style the base never saw, a longer run should learn it (the held-out digits are unseen)."""
    root, db, data = setup
    store = ModelStore(root / "models")
    config = FinetuneConfig("base", "cont", epochs=6, copies=4, replay_ratio=1.0, batch_size=32, learning_rate=2e-3)
    card = finetune_and_store(config, load_writer_digits(db, "cont"), data, store, "base-cont-long")
    meter = ForgettingMeter.from_dict(card["finetune"]["meter"])
    assert meter.heldout_after > meter.heldout_before + 0.1


def test_a_stop_before_the_first_epoch_keeps_nothing(setup):
    root, db, data = setup
    store = ModelStore(root / "models")
    stop = threading.Event()
    stop.set()
    with pytest.raises(TrainingError, match="before the first epoch"):
        finetune_and_store(FinetuneConfig("base", "cont", **QUICK), load_writer_digits(db, "cont"), data, store,
                           "never", stop=stop)
    assert not store.card_path("never").exists()


def test_settings_and_names_are_refused_before_any_work(setup):
    root, db, data = setup
    store, digits = ModelStore(root / "models"), load_writer_digits(db, "cont")
    with pytest.raises(ValueError, match="learning rate"):
        finetune_and_store(FinetuneConfig("base", "cont", learning_rate=5.0), digits, data, store, "x")
    with pytest.raises(ValueError, match="already exists"):
        finetune_and_store(FinetuneConfig("base", "cont"), digits, data, store, "base")
    with pytest.raises(Exception, match="no model named 'nope'"):
        finetune_and_store(FinetuneConfig("nope", "cont"), digits, data, store, "y")


def test_the_job_runner_fine_tunes_from_a_spec(setup):
    root, _, _ = setup
    config = FinetuneConfig("base", "cont", digits_db=str(root / "digits.sqlite"), **QUICK)
    events = []
    from dataclasses import asdict

    card = run_finetune_and_store(RunSpec(asdict(config), "from-job", str(root / "models"),
                                          str(root / "uci-as-mnist.npz")),
                                  on_event=events.append, stop=threading.Event(), keep_if_stopped=True)
    assert card["name"] == "from-job" and card["finetune"]["base"] == "base"
    assert [event.epoch for event in events if event.kind == "epoch"] == [1, 2]


def test_the_command_line_fine_tunes_and_prints_the_meter(setup, capsys):
    from digitlab.cli import main

    root, _, _ = setup
    arguments = ["finetune", "--base", "base", "--writer", "cont", "--name", "cli-cont", "--models",
                 str(root / "models"), "--data", str(root / "uci-as-mnist.npz"), "--digits-db",
                 str(root / "digits.sqlite"), "--epochs", "1", "--copies", "2", "--replay-ratio", "1"]
    assert main([*arguments, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["name"] == "cli-cont" and summary["heldout_digits"] == 20 and summary["epochs_run"] == 1
    assert set(summary["meter"]) == {"mnist_before", "mnist_after", "heldout_before", "heldout_after",
                                     "heldout_digits"}
    assert main(arguments) == 1
    err = capsys.readouterr().err
    assert "'cli-cont' already exists" in err and err.count("\n") == 1


def test_the_train_page_queues_a_fine_tune_that_lands_in_the_store(setup, monkeypatch):
    import time

    from app_support import app_against

    root, _, _ = setup
    monkeypatch.setenv("DIGITLAB_DIGITS_DB", str(root / "digits.sqlite"))
    with app_against(root / "models", root / "uci-as-mnist.npz", page="app_pages/train.py") as app:
        assert not app.exception
        assert "Fine-tune on your digits" in "\n".join(h.value for h in app.subheader)
        app.selectbox(key="finetune_base").set_value("base")
        app.number_input(key="finetune_epochs").set_value(1)
        app.text_input(key="finetune_name").set_value("page-cont")
        assert app.selectbox(key="finetune_writer").value is None  # this session labels as "me", not "cont"
        app.button(key="finetune_start").click().run()
        assert "Not started: choose the writer whose digits to teach." in "\n".join(e.value for e in app.error)
        app.selectbox(key="finetune_writer").set_value("cont")
        app.button(key="finetune_start").click().run()
        assert "Queued fine-tuning base on cont's digits as 'page-cont'" in "\n".join(s.value for s in app.toast)
        [queued] = [run for run in RunQueue(root / "models").runs() if run.name == "page-cont"]
        assert app.session_state["train_watch"] == queued.id  # the page watches the run it just queued
        card_path = root / "models" / "page-cont.json"
        deadline = time.monotonic() + 180
        while not card_path.exists() and time.monotonic() < deadline:
            time.sleep(1)
        assert card_path.exists(), "the fine-tuning child did not store its model"
        time.sleep(2)  # the executor's follower thread reads the child's result line
        app.run()
        assert "base fine-tuned on cont's digits · 1 epoch ·" in "\n".join(c.value for c in app.caption)
        [meters] = [frame.value for frame in app.dataframe if "held-out after" in frame.value.columns]
        assert "page-cont" in list(meters["model"])
