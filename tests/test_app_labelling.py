"""Labelling on the Draw page under AppTest, with a tiny model and UCI digits (no MNIST needed)."""

from __future__ import annotations

import io

import pytest
from app_support import app_against, pad_message
from handwriting_support import fill_writer, store_tiny_model, uci_pictures
from PIL import Image

from digitlab.digits_db import DigitsDb


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-models")
    store_tiny_model(root, "tiny")
    store_tiny_model(root, "tiny-two")
    return root


@pytest.fixture()
def db_path(tmp_path, monkeypatch):
    path = tmp_path / "digits.sqlite"
    monkeypatch.setenv("DIGITLAB_DIGITS_DB", str(path))
    return path


def draw(app, index: int = 0):
    """Put a UCI digit on the pad the way the pad sends it; returns its label."""
    pictures, labels = uci_pictures(index + 1)
    buffer = io.BytesIO()
    Image.fromarray(pictures[index]).resize((280, 280)).convert("RGBA").save(buffer, format="PNG")
    app.session_state["draw_pad"] = {"drawing": pad_message(buffer.getvalue())}
    app.run()
    return int(labels[index])


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def prediction(app) -> str | None:
    return next((m.value for m in app.metric if m.label == "Prediction"), None)


def test_right_keeps_the_drawing_with_every_models_answer(tiny_store, db_path, tmp_path):
    with app_against(tiny_store, tmp_path / "no-mnist.npz") as app:
        draw(app)
        said = int(prediction(app))
        app.button(key="your_right").click().run()
        assert not app.exception
        assert f"Saved as a {said}: 1 of your {said}s so far." in texts(app.success)
        [stored] = DigitsDb(db_path).digits("me")
        assert stored.label == said and stored.picture_png.startswith(b"\x89PNG")
        assert {answer.model for answer in stored.answers} == {"tiny", "tiny-two"}
        assert all(answer.digit == said for answer in stored.answers if answer.model == app.selectbox(
            key="draw_model").value)


def test_wrong_stores_the_digit_it_really_is_and_the_gallery_counts_and_deletes(tiny_store, db_path, tmp_path):
    with app_against(tiny_store, tmp_path / "no-mnist.npz") as app:
        draw(app)
        app.button(key="your_wrong_7").click().run()
        draw(app, 1)
        app.button(key="your_wrong_7").click().run()
        assert "2 of your 7s so far" in texts(app.success)
        app.toggle(key="your_gallery").set_value(True).run()
        assert "**me**: 2 digits" in texts(app.caption) and "2 × 7" in texts(app.caption)
        assert [caption for image in app.image for caption in image.captions].count("a 7") == 2
        [first, second] = DigitsDb(db_path).digits("me")
        app.button(key=f"your_delete_{second.id}").click().run()
        assert [digit.id for digit in DigitsDb(db_path).digits("me")] == [first.id]
        assert "**me**: 1 digit —" in texts(app.caption)


def test_a_drawing_is_saved_once_and_a_second_label_changes_it(tiny_store, db_path, tmp_path):
    """Y, then a click on Right (or Right, then the digit it really is) keeps one drawing, not two."""
    with app_against(tiny_store, tmp_path / "no-mnist.npz") as app:
        draw(app)
        app.button(key="your_wrong_4").click().run()
        app.button(key="your_wrong_4").click().run()
        assert "saved already, as a 4" in texts(app.info)
        app.button(key="your_wrong_9").click().run()
        assert "Changed from a 4 to a 9" in texts(app.success)
        assert [digit.label for digit in DigitsDb(db_path).digits("me")] == [9]
        app.toggle(key="your_gallery").set_value(True).run()
        [stored] = DigitsDb(db_path).digits("me")
        app.button(key=f"your_delete_{stored.id}").click().run()
        assert DigitsDb(db_path).digits("me") == []
        app.button(key="your_wrong_9").click().run()  # deleted meanwhile: saved afresh
        assert "1 of your 9s so far" in texts(app.success)
        assert [digit.label for digit in DigitsDb(db_path).digits("me")] == [9]
        draw(app, 1)  # another drawing is saved as a new one
        app.button(key="your_wrong_9").click().run()
        assert "2 of your 9s so far" in texts(app.success)


def test_the_writer_name_is_remembered_in_the_session(tiny_store, db_path, tmp_path):
    fill_writer(DigitsDb(db_path), "ana", 1)  # a known writer to pick (AppTest cannot type a new option)
    with app_against(tiny_store, tmp_path / "no-mnist.npz") as app:
        assert app.selectbox(key="your_writer_pick").value == "me"
        assert app.selectbox(key="your_writer_pick").options == ["ana", "me"]
        app.selectbox(key="your_writer_pick").set_value("ana").run()
        draw(app)
        app.button(key="your_wrong_3").click().run()
        assert "1 of ana's 3s so far" in texts(app.success)  # the filled digit is UCI's first, a 0
        app.switch_page("app_pages/evaluate.py").run()
        app.switch_page("app_pages/draw.py").run()
        assert app.selectbox(key="your_writer_pick").value == "ana"
        assert DigitsDb(db_path).counts() == {"ana": [1, 0, 0, 1, 0, 0, 0, 0, 0, 0]}


def test_compare_mode_keeps_the_label_buttons(tiny_store, db_path, tmp_path):
    with app_against(tiny_store, tmp_path / "no-mnist.npz") as app:
        app.toggle(key="draw_compare").set_value(True).run()
        draw(app)
        assert "Every model on the same picture" in texts(app.subheader)
        app.button(key="your_wrong_4").click().run()
        assert [digit.label for digit in DigitsDb(db_path).digits()] == [4]


def test_a_corrupt_database_gives_a_message_and_drawing_keeps_working(tiny_store, db_path, tmp_path):
    db_path.write_bytes(b"not a database " * 500)
    with app_against(tiny_store, tmp_path / "no-mnist.npz") as app:
        assert "is corrupt" in texts(app.error)
        draw(app)
        assert prediction(app) is not None
        app.button(key="your_right").click().run()
        assert not app.exception
        assert "Not saved: the digits database" in texts(app.error) and "Drawing still works" in texts(app.error)
        assert prediction(app) is not None


def test_the_evaluate_page_scores_every_model_on_the_writers_digits(tiny_store, db_path, tmp_path):
    db = DigitsDb(db_path)
    fill_writer(db, "me", 40)
    with app_against(tiny_store, tmp_path / "no-mnist.npz", page="app_pages/evaluate.py") as app:
        assert not app.exception
        assert "Your digits" in texts(app.subheader)
        app.selectbox(key="evaluate_writer").set_value("me").run()
        [models] = [frame.value for frame in app.dataframe if "misread" in frame.value.columns]
        assert list(models["model"]) == ["tiny", "tiny-two"]
        assert (models["correct"] + models["misread"] == 40).all() and (models["accuracy"] > 0.5).all()
        [per_digit] = [frame.value for frame in app.dataframe if {"model", "9"} <= set(frame.value.columns)]
        assert list(per_digit["model"]) == ["tiny", "tiny-two"]
        captions = [caption for image in app.image for caption in image.captions if caption.startswith("a ")]
        wrong = int(models["misread"].max())
        assert wrong <= len(captions) <= int(models["misread"].sum())
        assert all("tiny " in caption and "tiny-two " in caption for caption in captions)



def test_the_evaluate_page_scores_another_writers_digits_only_when_picked(tiny_store, db_path, tmp_path):
    fill_writer(DigitsDb(db_path), "ana", 12)  # others on the same server, one of them under
    fill_writer(DigitsDb(db_path), "me", 5)  # the name every new visitor starts with
    with app_against(tiny_store, tmp_path / "no-mnist.npz", page="app_pages/evaluate.py") as app:
        assert not app.exception
        assert app.selectbox(key="evaluate_writer").value is None
        assert "Pick a writer to score their digits." in texts(app.caption)
        assert not [frame for frame in app.dataframe if "misread" in frame.value.columns]
        app.selectbox(key="evaluate_writer").set_value("ana").run()
        [models] = [frame.value for frame in app.dataframe if "misread" in frame.value.columns]
        assert (models["correct"] + models["misread"] == 12).all()

def test_the_evaluate_page_offers_the_model_and_its_card_for_download(tiny_store, db_path, tmp_path):
    with app_against(tiny_store, tmp_path / "no-mnist.npz", page="app_pages/evaluate.py") as app:
        assert not app.exception
        assert "Take your model home" in texts(app.subheader)
        app.selectbox(key="evaluate_download_model").set_value("tiny-two").run()
        labels = [button.proto.label for button in app.get("download_button")]
        assert any(label.startswith("tiny-two.keras (") for label in labels)
        assert "tiny-two.json (run card)" in labels
