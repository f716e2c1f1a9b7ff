"""The model store: atomic saves, safe names, safe loading, broken files skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from digitlab.store import ModelStore, StoreError, validate_name

CARD = {"architecture": "mlp", "parameters": 0, "test": {"accuracy": 0.5}}


def _tiny_model(name: str = "tiny", units: int = 8) -> keras.Model:
    inputs = keras.Input((28, 28))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x), name=name)


@pytest.fixture()
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def _predict(model, seed=0):
    x = np.random.default_rng(seed).random((2, 28, 28), dtype=np.float32)
    return model(x, training=False).numpy()


def test_saved_model_loads_back_with_the_same_predictions(store):
    model = _tiny_model()
    store.save("mine", model, CARD)
    assert np.allclose(_predict(store.load("mine")), _predict(model), atol=1e-6)
    [entry] = store.list()
    assert entry.name == "mine" and entry.usable and "50.00 % test accuracy" in entry.headline


def test_saved_file_carries_no_optimizer_state(store):
    model = _tiny_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(np.zeros((4, 28, 28)), np.zeros(4), verbose=0)
    store.save("lean", model, CARD)
    weights = zipfile.ZipFile(store.model_path("lean")).read("model.weights.h5")
    assert b"optimizer" not in weights


@pytest.mark.parametrize("name", ["../evil", "a/b", "a\\b", "", ".hidden", "x" * 41, "with space", "dot.name"])
def test_path_tricks_and_odd_names_are_refused(store, name):
    with pytest.raises(ValueError, match="invalid model name"):
        store.save(name, _tiny_model(), CARD)
    assert not store.root.exists() or not any(store.root.iterdir())


def test_shipped_names_are_protected():
    with pytest.raises(ValueError, match="shipped"):
        validate_name("cnn")
    assert validate_name("cnn", allow_shipped=True) == "cnn"


def test_taken_name_is_not_overwritten_silently(store):
    store.save("mine", _tiny_model(units=8), CARD)
    with pytest.raises(ValueError, match="already exists"):
        store.save("mine", _tiny_model(units=16), CARD)
    assert store.load("mine").count_params() == _tiny_model(units=8).count_params()


def test_overwrite_replaces_and_removes_the_old_file(store):
    store.save("mine", _tiny_model(units=8), CARD)
    old_file = store.model_path("mine")
    store.save("mine", _tiny_model(units=16), CARD, overwrite=True)
    assert not old_file.exists()
    assert store.load("mine").count_params() == _tiny_model(units=16).count_params()
    assert sorted(p.name for p in store.root.iterdir()) == sorted(["mine.json", store.model_path("mine").name])


def test_failed_save_leaves_the_previous_model_untouched(store, monkeypatch):
    store.save("mine", _tiny_model(units=8), CARD)
    before = store.model_path("mine").read_bytes()

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", crash)
    with pytest.raises(StoreError, match="No space left"):
        store.save("mine", _tiny_model(units=16), CARD, overwrite=True)
    assert store.model_path("mine").read_bytes() == before
    assert store.list()[0].usable and not list(store.root.glob(".tmp-*"))


def _plant(store: ModelStore, name: str, payload: bytes) -> None:
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / f"{name}.x.keras").write_bytes(payload)
    card = {**CARD, "model_file": f"{name}.x.keras", "model_bytes": len(payload)}
    (store.root / f"{name}.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"", "empty"), (b"not a zip at all" * 10, "corrupt"), (None, "truncated")],
)
def test_broken_model_files_are_reported_and_others_keep_working(store, payload, reason):
    store.save("good", _tiny_model(), CARD)
    if payload is None:
        payload = store.model_path("good").read_bytes()[:2000]
    _plant(store, "broken", payload)
    with pytest.raises(StoreError, match="'broken' cannot be loaded"):
        store.load("broken")
    assert store.load("good") is not None
    assert {entry.name for entry in store.list()} == {"good", "broken"}


def test_model_with_the_wrong_shape_is_refused(store):
    inputs = keras.Input((32, 32))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    store.save("wide", model, CARD)
    with pytest.raises(StoreError, match="expected"):
        store.load("wide")


def test_lambda_layer_is_refused_by_safe_mode(store):
    inputs = keras.Input((28, 28))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(x)))
    store.save("sneaky", model, CARD)
    with pytest.raises(StoreError, match="'sneaky' cannot be loaded"):
        store.load("sneaky")


def test_card_that_points_outside_the_store_is_refused(store):
    store.root.mkdir(parents=True)
    (store.root / "evil.json").write_text(json.dumps({"model_file": "../../etc/passwd"}))
    [entry] = store.list()
    assert not entry.usable and "model file" in entry.error


def test_unreadable_card_is_listed_as_unusable(store):
    store.save("good", _tiny_model(), CARD)
    (store.root / "junk.json").write_text("{not json")
    entries = {entry.name: entry for entry in store.list()}
    assert entries["good"].usable and not entries["junk"].usable


def test_missing_or_empty_store_lists_nothing(tmp_path):
    assert ModelStore(tmp_path / "nowhere").list() == []
    (tmp_path / "empty").mkdir()
    assert ModelStore(tmp_path / "empty").list() == []


def test_read_only_store_reports_a_clear_error(store, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(StoreError, match="Permission denied"):
        store.save("mine", _tiny_model(), CARD)
    assert store.list() == []


def test_clean_removes_temp_files_and_orphans_but_not_models(store):
    store.save("good", _tiny_model(), CARD)
    (store.root / ".tmp-abc.keras").write_bytes(b"half")
    (store.root / "good.deadbeef.keras").write_bytes(b"orphan from a killed save")
    assert store.clean() == []  # too young: another process may be saving them right now
    removed = store.clean(min_age_seconds=0)
    assert sorted(removed) == [".tmp-abc.keras", "good.deadbeef.keras"]
    assert store.load("good") is not None


def test_clean_keeps_the_weights_of_a_model_whose_card_is_damaged(store):
    store.save("mine", _tiny_model(), CARD)
    weights = store.model_path("mine")
    (store.root / "mine.json").write_text("{damaged")
    assert store.clean(min_age_seconds=0) == [] and weights.exists()


def test_listing_the_store_does_not_import_tensorflow(store):
    store.save("good", _tiny_model(), CARD)
    code = (
        "import sys; from digitlab.store import ModelStore; "
        f"entries = ModelStore({str(store.root)!r}).list(); "
        "assert entries and entries[0].usable; "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent, check=True)
    assert result.stdout.split() == ["False", "False"]
