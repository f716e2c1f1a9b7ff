"""The Evaluate page's "Honest confidence" section under AppTest: the ECE table and its notices."""

from __future__ import annotations

import json

import pytest
from app_support import app_against
from store_support import copy_store

EVALUATE_PAGE = "app_pages/evaluate.py"


def ece_table(app):
    return next(frame.value for frame in app.dataframe if "ECE before" in frame.value.columns)


def test_ece_table_shows_each_model_and_test_set_from_the_cards(app_env, make_app):
    app = make_app(EVALUATE_PAGE)
    assert not app.exception
    table = ece_table(app)
    card = json.loads((app_env / "quick-mlp.json").read_text())["calibration"]
    row = table[(table.model == "quick-mlp") & (table["test set"] == "MNIST test")].iloc[0]
    assert row["ECE after"] == pytest.approx(card["sets"]["mnist"]["ece_after"] * 100)
    assert row["temperature"] == card["temperature"]
    assert set(table["test set"]) == {"MNIST test", "UCI digits"}
    assert app.selectbox(key="evaluate_calibration_model").value == "quick-lenet"


def test_a_model_without_a_temperature_says_how_to_fit_one(app_models, mnist_path, tmp_path):
    store = tmp_path / "models"
    copy_store(app_models, store)
    card_path = store / "quick-lenet.json"
    card = json.loads(card_path.read_text())
    del card["calibration"]
    card_path.write_text(json.dumps(card))
    with app_against(store, mnist_path, EVALUATE_PAGE) as app:
        assert not app.exception
        notices = [info.value for info in app.info]
        assert any("python -m digitlab calibrate quick-lenet" in text for text in notices)
        assert set(ece_table(app).model) == {"quick-mlp"}
