"""Watch it learn: pinned pictures read after every epoch, from the training loop to the queue."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from digitlab.config import TrainConfig
from digitlab.inference import Predictor
from digitlab.jobs.process import TrainingJob
from digitlab.jobs.queue import RunQueue, RunRequest
from digitlab.training import train
from digitlab.watch import MAX_PINS, Pin, make_pin, pins_from_json, pins_to_json, watch_points

QUICK = {"epochs": 3, "batch_size": 64, "train_size": 2000, "validation_fraction": 0.1, "seed": 5}


def pins_from(data, count: int = 2) -> list[Pin]:
    """Test digits as pins, titled the way the page titles them."""
    return [make_pin(f"test digit #{index}", data.x_test[index] / 255.0, int(data.y_test[index]))
            for index in range(count)]


def test_a_pin_survives_the_trip_through_json_to_the_nearest_grey_level(rng):
    image = rng.random((28, 28)).astype(np.float32)
    [back] = pins_from_json(pins_to_json([make_pin("your   drawing", image, 7)]))
    assert back.title == "your drawing" and back.digit == 7
    assert np.abs(back.image - image).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize(("image", "digit", "message"), [
    (np.zeros((20, 20)), None, "28×28"),
    (np.full((28, 28), np.nan), None, "28×28"),
    (np.zeros((28, 28)), 10, "0–9"),
    (np.zeros((28, 28)), True, "0–9"),
])
def test_a_bad_pin_is_refused_in_one_line(image, digit, message):
    with pytest.raises(ValueError, match=message):
        make_pin("x", image, digit)


def test_more_than_four_pins_are_refused():
    pins = [make_pin(str(i), np.zeros((28, 28))) for i in range(MAX_PINS + 1)]
    with pytest.raises(ValueError, match=f"at most {MAX_PINS}"):
        pins_to_json(pins)


def test_a_forged_pin_is_refused_not_decoded_into_a_wrong_picture():
    with pytest.raises(ValueError, match="784 bytes"):
        Pin.from_dict({"title": "x", "image": "AAAA"})
    with pytest.raises(ValueError, match="needs a title"):
        Pin.from_dict({"image": "not base64 !"})


def test_every_epoch_reports_the_pins_and_the_last_matches_the_model(small_data):
    pins = pins_from(small_data, 3)
    events = []
    result = train(TrainConfig("mlp", **QUICK), small_data, on_event=events.append, watch=pins)
    epochs = [event for event in events if event.kind == "epoch"]
    assert len(epochs) == QUICK["epochs"]
    for event in epochs:
        assert np.asarray(event.watched).shape == (3, 10)
        np.testing.assert_allclose(np.sum(event.watched, axis=1), 1.0, atol=1e-3)
    assert [event.watched for event in events if event.kind != "epoch"] == [None] * (len(events) - len(epochs))
    best = epochs[result.best_epoch - 1].watched
    now = Predictor(result.model).probabilities(np.stack([pin.image for pin in pins]))
    np.testing.assert_allclose(best, now, atol=1e-4)


def test_the_watched_digit_grows_from_the_first_epoch_to_the_last(small_data):
    """What the chart shows a learner: the right digit's probability rising as the model learns."""
    pins = pins_from(small_data, 4)
    events = []
    train(TrainConfig("mlp", **{**QUICK, "learning_rate": 3e-4}), small_data, on_event=events.append, watch=pins)
    epochs = [{"epoch": e.epoch, "watched": e.watched} for e in events if e.kind == "epoch"]
    points = watch_points(epochs, pins)
    first = np.mean([p.probability for p in points if p.epoch == 1])
    last = np.mean([p.probability for p in points if p.epoch == QUICK["epochs"]])
    assert last > first
    assert {p.pin for p in points} == {0, 1, 2, 3}


def test_a_run_without_pins_reports_none_and_charts_nothing(small_data):
    events = []
    train(TrainConfig("mlp", **{**QUICK, "epochs": 1}), small_data, on_event=events.append)
    assert all(event.watched is None for event in events)
    assert watch_points([{"epoch": 1, "logs": {}}], []) == []


def test_the_queue_keeps_a_runs_pins(tmp_path, small_data):
    pins = pins_from(small_data)
    queue = RunQueue(tmp_path)
    [run] = queue.submit([RunRequest(TrainConfig("mlp", **QUICK), "watched", watch=tuple(pins))],
                         "me", data_size=len(small_data.x_train))
    [again] = [r for r in RunQueue(tmp_path).runs() if r.id == run.id]
    assert [pin.title for pin in again.pins] == [pin.title for pin in pins]
    assert [pin.digit for pin in again.pins] == [pin.digit for pin in pins]
    [plain] = queue.submit([RunRequest(TrainConfig("mlp", **QUICK), "plain")], "me",
                           data_size=len(small_data.x_train))
    assert plain.pins == ()


def test_a_queue_file_from_before_pins_gains_the_column(tmp_path, small_data):
    path = tmp_path / "queue.sqlite"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
                    "config TEXT NOT NULL, owner TEXT NOT NULL, owner_label TEXT NOT NULL, executor TEXT NOT NULL, "
                    "sweep TEXT, status TEXT NOT NULL, submitted_at REAL NOT NULL, started_at REAL, "
                    "finished_at REAL, worker TEXT, heartbeat_at REAL, stop_requested TEXT, "
                    "epochs TEXT NOT NULL DEFAULT '[]', last_batch TEXT, card TEXT, error TEXT, runner TEXT)")
        old.execute("INSERT INTO runs (name, config, owner, owner_label, executor, status, submitted_at) "
                    "VALUES ('old', '{}', 'me', 'me', 'local', 'done', 1.0)")
    old.close()
    runs = RunQueue(tmp_path).runs()
    assert [(run.name, run.pins) for run in runs] == [("old", ())]


def test_a_training_child_reports_the_pins_each_epoch(tmp_path, mnist_path, small_data):
    """The page's path: the pins go to a child process and come back in its epoch events."""
    pins = pins_from(small_data)
    job = TrainingJob(TrainConfig("mlp", **{**QUICK, "epochs": 2}), "watched", tmp_path, data_path=mnist_path,
                      watch=pins_to_json(pins))
    job.start()
    snapshot = job.wait(180)
    assert snapshot.status == "done", snapshot.error
    points = watch_points(snapshot.epochs, pins)
    assert [(p.epoch, p.pin) for p in points] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert all(0.0 <= p.probability <= 1.0 for p in points)
