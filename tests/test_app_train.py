"""The Train page under AppTest: settings refused with a clear message, and a real short run
that a second Start queues behind and a second visitor can watch but not stop.

Fragments' ``run_every`` timers do not tick under AppTest, so the test reruns the page itself
while the run goes on; the live refresh is checked in the browser test.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

TRAIN_PAGE = "app_pages/train.py"
RUN_TIMEOUT = 300  # seconds: the child imports TensorFlow on a CPU shared with other work


def fake_entry(store: Path, name: str, accuracy: float) -> None:
    """A card (and a weights file of the right size) the listing accepts; never loaded here."""
    weights = store / f"{name}.0000.keras"
    weights.write_bytes(b"x" * 10)
    card = {"name": name, "architecture": name, "model_file": weights.name, "model_bytes": 10,
            "parameters": 1000, "epochs_run": 1, "train_seconds": 1.0,
            "test": {"accuracy": accuracy, "loss": 0.1}}
    (store / f"{name}.json").write_text(json.dumps(card), encoding="utf-8")


@pytest.fixture()
def train_env(tmp_path: Path, monkeypatch, mnist) -> Path:
    """A store holding a "shipped" mlp and a user model "taken", and a 2,000-image MNIST."""
    store = tmp_path / "models"
    store.mkdir()
    fake_entry(store, "mlp", 0.985)
    fake_entry(store, "taken", 0.5)
    small = mnist.subset(2000, 500)
    data = tmp_path / "small-mnist.npz"
    np.savez(data, x_train=small.x_train, y_train=small.y_train, x_test=small.x_test, y_test=small.y_test)
    monkeypatch.setenv("DIGITLAB_MODELS", str(store))
    monkeypatch.setenv("DIGITLAB_MNIST", str(data))
    return store


def texts(elements) -> list[str]:
    return [element.value for element in elements]


def rerun_until_stored(app) -> None:
    """Rerun the page (its refresh timer does not tick under AppTest) until the watched run is stored."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while not any("is in the store" in text for text in texts(app.success)):
        assert time.monotonic() < deadline, texts(app.error) or "the run did not finish in time"
        time.sleep(1)
        app.run()
    assert not app.exception


INVALID = [  # (widget, key, value, part of the message); one app, one case after the other
    ("text_input", "train_epochs_mlp", "0", "epochs must be 1–500"),
    ("text_input", "train_rate_mlp", "nan", "learning rate must be a finite number in (0, 1]"),
    ("text_input", "train_rate_mlp", "-0.01", "learning rate must be a finite number in (0, 1]"),
    ("text_input", "train_rate_mlp", "fast", "learning rate 'fast' is not a number"),
    ("text_input", "train_batch_mlp", "5000", "batch size must be 1–1900"),
    ("text_input", "train_size_mlp", "50000", "training-set size must be 100–2000"),
    ("text_input", "train_name_mlp", "my model!", "invalid model name"),
    ("text_input", "train_name_mlp", "mlp", "'mlp' is a shipped model"),
    ("text_input", "train_name_mlp", "taken", "a model named 'taken' already exists"),
]


def test_invalid_settings_get_a_clear_message_and_nothing_starts(train_env, make_app):
    app = make_app(TRAIN_PAGE)
    app.text_input(key="train_size_mlp").set_value("2000")
    for widget, key, value, message in INVALID:
        element = getattr(app, widget)(key=key)
        valid = element.value
        element.set_value(value)
        app.button(key="train_start").click().run()
        assert not app.exception
        assert [message in text and text.startswith("Not started: ") for text in texts(app.error)] == [True], \
            (value, texts(app.error))
        getattr(app, widget)(key=key).set_value(valid)
    assert not [header for header in texts(app.subheader) if header.startswith("Run:")]
    assert sorted(p.name for p in train_env.iterdir() if p.suffix == ".json") == ["mlp.json", "taken.json"]


def test_a_short_run_completes_and_its_model_is_stored_and_compared(train_env, make_app):
    app = make_app(TRAIN_PAGE)
    assert app.text_input(key="train_name_mlp").value == "my-mlp"
    app.text_input(key="train_epochs_mlp").set_value("1")
    app.text_input(key="train_size_mlp").set_value("1000")
    app.text_input(key="train_name_mlp").set_value("tiny-run")
    app.button(key="train_start").click().run()
    assert texts(app.toast) == ["Queued 'tiny-run': number 1 in the queue."]
    assert "Run: tiny-run" in texts(app.subheader)
    first = app.selectbox(key="train_watch").value
    assert app.text_input(key="train_name_mlp").value == "my-mlp"  # a fresh name for the next run

    app.button(key="train_start").click().run()  # a second Start while the first is going: it waits
    assert texts(app.toast) == ["Queued 'my-mlp': number 1 in the queue."]
    assert "Run: my-mlp" in texts(app.subheader)
    app.button(key="train_cancel").click().run()  # and its owner takes it off the queue
    assert app.dataframe[0].value.set_index("model").loc["my-mlp", "status"] == "cancelled"

    visitor = make_app(TRAIN_PAGE)  # another visitor: sees the run and who started it, cannot stop it
    table = visitor.dataframe[0].value.set_index("model")
    assert table.loc["tiny-run", "started by"].startswith("visitor ") and table.loc["tiny-run", "status"] in (
        "starting", "running")
    visitor.selectbox(key="train_watch").set_value(first).run()
    assert any(text.startswith("Only visitor ") for text in texts(visitor.caption))
    assert not [button for button in visitor.button if button.key and button.key.startswith("train_stop")]

    app.selectbox(key="train_watch").set_value(first).run()

    rerun_until_stored(app)
    card = json.loads((train_env / "tiny-run.json").read_text(encoding="utf-8"))
    assert card["epochs_run"] == 1 and card["config"]["train_size"] == 1000
    table = app.dataframe[-1].value
    assert list(table["model"]) == ["mlp", "tiny-run"]
    assert table["test accuracy"].iloc[1] == card["test"]["accuracy"]
    assert not (train_env / "my-mlp.json").exists()  # the cancelled second run left no model


def test_a_run_taught_by_stored_models_says_so_and_a_broken_teacher_fails_it_cleanly(train_env, make_app):
    app = make_app(TRAIN_PAGE)
    assert app.multiselect(key="train_teachers_mlp").options == ["mlp", "taken"]
    app.text_input(key="train_epochs_mlp").set_value("1")
    app.text_input(key="train_size_mlp").set_value("1000")
    app.multiselect(key="train_teachers_mlp").set_value(["taken"])
    app.slider(key="train_teacher_weight_mlp").set_value(0.3)
    app.button(key="train_start").click().run()
    assert texts(app.toast) == ["Queued 'my-mlp': number 1 in the queue."]
    assert any("taught by taken (30%)" in text for text in texts(app.caption))

    deadline = time.monotonic() + RUN_TIMEOUT  # "taken" is no model file: the run fails as it loads it
    while not any("cannot be loaded" in text for text in texts(app.error)):
        assert time.monotonic() < deadline, texts(app.error) or "the run did not fail in time"
        time.sleep(1)
        app.run()
    assert not app.exception and not (train_env / "my-mlp.json").exists()
