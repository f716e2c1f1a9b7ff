"""Watch it learn on the Train page (AppTest): pin pictures from three sources, start a run, and
see each pinned picture's probability charted per epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.test_app_train import TRAIN_PAGE, fake_entry, rerun_until_stored, texts

LAST_DRAWING_KEY = "watch_last_drawing"


@pytest.fixture()
def watch_env(tmp_path: Path, monkeypatch, mnist) -> tuple[Path, object]:
    """A store with a "shipped" mlp whose card lists two misread test digits, and a small MNIST."""
    store = tmp_path / "models"
    store.mkdir()
    fake_entry(store, "mlp", 0.985)
    card = json.loads((store / "mlp.json").read_text())
    card["test"]["mistakes"] = [{"index": index, "label": int(mnist.y_test[index]), "predicted": predicted,
                                 "probabilities": [0.1] * 10} for index, predicted in ((3, 8), (7, 2))]
    (store / "mlp.json").write_text(json.dumps(card))
    small = mnist.subset(2000, 500)
    data = tmp_path / "small-mnist.npz"
    np.savez(data, x_train=small.x_train, y_train=small.y_train, x_test=small.x_test, y_test=small.y_test)
    monkeypatch.setenv("DIGITLAB_MODELS", str(store))
    monkeypatch.setenv("DIGITLAB_MNIST", str(data))
    return store, small


def drawn_seven() -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    image[5:8, 6:22] = 1.0
    for row in range(8, 24):
        image[row, 20 - (row - 8) // 2: 23 - (row - 8) // 2] = 1.0
    return image


def expander_label(app) -> str:
    return next(e.label for e in app.expander if e.label.startswith("Watch it learn"))


def test_pins_come_from_the_drawing_and_a_misread_digit_and_can_be_removed(watch_env, make_app):
    app = make_app(TRAIN_PAGE)
    assert "(0/4 pinned)" in expander_label(app)
    assert any("Draw a digit on the **Draw** page first" in text for text in texts(app.caption))

    app.session_state[LAST_DRAWING_KEY] = (drawn_seven(), 7)
    app.run()
    [digit_box] = [box for box in app.selectbox if box.label == "It is a"]
    assert digit_box.value == 7  # the answer it got, as a start
    app.button(key="watch_pin_drawing").click().run()
    app.selectbox(key="watch_misread_digit").set_value(7)
    app.button(key="watch_pin_misread").click().run()
    assert not app.exception
    assert "(2/4 pinned)" in expander_label(app)
    _, small = watch_env
    [drawing, misread] = app.session_state["watch_pins"]
    assert (drawing.title, drawing.digit) == ("your drawing", 7)
    assert misread.title == "test digit #7" and misread.digit == int(small.y_test[7])
    np.testing.assert_allclose(misread.image, small.x_test[7] / 255.0, atol=1e-6)

    app.session_state[LAST_DRAWING_KEY] = (np.rot90(drawn_seven()).copy(), 3)  # a new drawing, read as 3
    app.run()
    assert [box.value for box in app.selectbox if box.label == "It is a"] == [3]
    app.button(key="watch_unpin_0").click().run()
    assert [pin.title for pin in app.session_state["watch_pins"]] == ["test digit #7"]
    for _ in range(3):
        app.button(key="watch_pin_misread").click().run()
    assert "(4/4 pinned)" in expander_label(app)
    assert any("unpin one to add another" in text for text in texts(app.caption))


def test_a_run_with_pins_charts_their_probabilities_each_epoch(watch_env, make_app):
    store, small = watch_env
    app = make_app(TRAIN_PAGE)
    app.session_state[LAST_DRAWING_KEY] = (small.x_test[0] / 255.0, int(small.y_test[0]))
    app.run()
    app.button(key="watch_pin_drawing").click().run()
    app.button(key="watch_pin_misread").click().run()
    app.text_input(key="train_epochs_mlp").set_value("2")
    app.text_input(key="train_size_mlp").set_value("1000")
    app.text_input(key="train_name_mlp").set_value("watched")
    app.button(key="train_start").click().run()
    assert texts(app.toast) == ["Queued 'watched': number 1 in the queue."]
    rerun_until_stored(app)
    assert any(text.startswith("**Watch it learn**") for text in texts(app.markdown))
    reads = [text for text in texts(app.caption) if "→ reads" in text]
    assert len(reads) == 2 and reads[0].startswith("your drawing · a ")
    assert (store / "watched.json").exists()
