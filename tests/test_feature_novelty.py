"""Each model's own "not a digit" test: distances in its penultimate layer, stored beside its weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitlab.config import TrainConfig
from digitlab.data import to_float
from digitlab.feature_novelty import (
    CENTRES_PER_CLASS,
    FeatureCheck,
    FeatureStats,
    fit_stats,
    load_check,
    load_stats,
    stats_path,
    unlike_reason,
)
from digitlab.inference import Predictor
from digitlab.nondigits import generate
from digitlab.preprocess import preprocess
from digitlab.reading import read_input
from digitlab.store import ModelStore
from digitlab.training import train


def clusters(rng, per_class: int = 200, dimensions: int = 6) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.normal(0, 10, (10, dimensions))
    labels = np.repeat(np.arange(10), per_class)
    return centres[labels] + rng.normal(0, 1, (len(labels), dimensions)), labels


def test_a_rare_way_of_writing_a_digit_keeps_a_centre_of_its_own(rng):
    """Like 1s with a base among bare ones: 2 % of one class lie off to one side. A single mean a
    class calls the next such digit unlike every digit; a few centres a class do not."""
    features, labels = clusters(rng, per_class=2000)
    based = np.flatnonzero(labels == 1)[:40]
    features[based, 5] += 12.0
    held = features + rng.normal(0, 0.3, features.shape)
    another_based = features[based[:5]] + rng.normal(0, 0.3, (5, features.shape[1]))
    assert fit_stats(features, labels, [held], centres_per_class=1).unlike(another_based).all()
    assert not fit_stats(features, labels, [held]).unlike(another_based).any()


def test_points_near_a_class_pass_and_a_point_far_from_all_is_flagged(rng):
    features, labels = clusters(rng)
    held, _ = clusters(np.random.default_rng(1234))  # the same centres: the same rng seed
    stats = fit_stats(features, labels, [held], quantile=0.99)
    assert stats.unlike(held).mean() == pytest.approx(0.01, abs=0.006)
    far = features.mean(axis=0, keepdims=True) + 1000.0
    assert stats.unlike(far).tolist() == [True]
    # The distance is Mahalanobis: stretching one feature a thousandfold changes nothing relative.
    stretched = features * np.array([1000, 1, 1, 1, 1, 1])
    wide = fit_stats(stretched, labels, [stretched], quantile=0.99)
    assert wide.unlike(stretched).mean() == pytest.approx(0.01, abs=0.006)


def test_statistics_survive_a_save_and_a_bad_file_is_refused(rng, tmp_path):
    features, labels = clusters(rng)
    stats = fit_stats(features, labels, [features])
    again = load_stats(stats.save(tmp_path / "m.1234.features.npz"))
    np.testing.assert_array_equal(again.distances(features), stats.distances(features))
    (tmp_path / "bad.features.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="is not a model's feature statistics"):
        load_stats(tmp_path / "bad.features.npz")
    with pytest.raises(FileNotFoundError):
        load_stats(tmp_path / "missing.features.npz")


class FixedModel:
    def __init__(self, digit: int):
        self.probabilities = np.full(10, 0.01, np.float32)
        self.probabilities[digit] = 0.91

    def predict_one(self, image):
        return int(np.argmax(self.probabilities)), self.probabilities

    def read_one(self, image):
        return self.probabilities, np.zeros(4, np.float32)


class AlwaysUnlike:
    def reason(self, features):
        return unlike_reason("picky")


def test_a_model_whose_features_find_an_input_unlike_digits_declines_and_the_others_answer():
    readings = read_input(np.zeros((28, 28), np.float32), {"picky": FixedModel(8), "calm": FixedModel(8)},
                          feature_checks={"picky": AlwaysUnlike(), "calm": None})
    assert readings["picky"].digit is None and readings["picky"].reason == unlike_reason("picky")
    assert readings["picky"].top_digit == 8  # what it would have said is still shown
    assert readings["calm"].digit == 8


@pytest.fixture(scope="module")
def small_model(small_data):
    return train(TrainConfig("mlp", epochs=2, batch_size=64, validation_fraction=0.1, seed=2), small_data).model


def test_a_trained_models_own_test_flags_shapes_far_more_often_than_unseen_digits(small_model, small_data):
    features = Predictor(small_model).features
    fit, held = slice(None, 2000), slice(2000, None)
    stats = fit_stats(features(to_float(small_data.x_train[fit])), small_data.y_train[fit],
                      [features(to_float(small_data.x_train[held]))], quantile=0.99)
    alarms = stats.unlike(features(to_float(small_data.x_test))).mean()
    shapes = [preprocess(drawing.picture).image for drawing in generate(200, seed=3)]
    caught = stats.unlike(features(np.stack([image for image in shapes if image is not None]))).mean()
    assert alarms < 0.03 and caught > 5 * alarms


def test_the_check_is_found_beside_its_weights_and_goes_with_them(small_model, rng, tmp_path):
    store = ModelStore(tmp_path)
    store.save("mine", small_model, {"architecture": "mlp"})
    model_file = store.read_card("mine")["model_file"]
    assert load_check(tmp_path, "mine", model_file, small_model) is None  # none fitted yet
    dimensions = Predictor(small_model).feature_dimensions
    features, labels = clusters(rng, dimensions=dimensions)
    fit_stats(features, labels, [features]).save(stats_path(tmp_path, model_file))
    check = load_check(tmp_path, "mine", model_file, small_model)
    blank = Predictor(small_model).features(np.zeros((3, 28, 28)))
    assert isinstance(check, FeatureCheck) and len(check.reasons(blank)) == 3
    wrong = FeatureStats(np.zeros((10, 3), np.float32), np.eye(3, dtype=np.float32), 1.0)
    with pytest.raises(ValueError, match="for another model"):
        FeatureCheck("mine", wrong, dimensions)

    store.save("mine", small_model, {"architecture": "mlp"}, overwrite=True)  # retrained: new weights
    assert not stats_path(tmp_path, model_file).exists()  # the old statistics went with the old weights
    new_file = json.loads((tmp_path / "mine.json").read_text())["model_file"]
    fit_stats(features, labels, [features]).save(stats_path(tmp_path, new_file))
    store.delete("mine")
    assert not stats_path(tmp_path, new_file).exists()


def test_clean_removes_statistics_whose_weights_are_gone(rng, tmp_path):
    features, labels = clusters(rng)
    orphan = fit_stats(features, labels, [features]).save(tmp_path / "gone.0000abcd.features.npz")
    assert ModelStore(tmp_path).clean(min_age_seconds=0) == [orphan.name]


def test_predict_uses_the_models_own_test(small_model, rng, tmp_path, capsys):
    from PIL import Image, ImageDraw

    from digitlab.cli import main

    store = ModelStore(tmp_path)
    store.save("mine", small_model, {"architecture": "mlp"})
    features, labels = clusters(rng, dimensions=Predictor(small_model).feature_dimensions)
    strict = fit_stats(features, labels, [features])
    FeatureStats(strict.means, strict.whiten, -1.0).save(stats_path(tmp_path, store.read_card("mine")["model_file"]))
    picture = Image.new("L", (200, 200))
    ImageDraw.Draw(picture).line([(100, 30), (100, 170)], fill=255, width=14)
    picture.save(tmp_path / "one.png")
    assert main(["predict", str(tmp_path / "one.png"), "--model", "mine", "--models", str(tmp_path), "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["digit"] is None and result["reason"] == unlike_reason("mine")


def test_a_freshly_trained_model_gets_its_own_statistics_from_its_own_split(small_data, tmp_path):
    from digitlab.runs import train_and_store

    config = TrainConfig("mlp", epochs=1, batch_size=64, validation_fraction=0.1, seed=4)
    card = train_and_store(config, small_data, ModelStore(tmp_path), "fresh")
    model = ModelStore(tmp_path).load("fresh")
    check = load_check(tmp_path, "fresh", card["model_file"], model)
    assert check is not None
    unseen = check.reasons(Predictor(model).features(to_float(small_data.x_test)))
    assert np.mean([reason is not None for reason in unseen]) < 0.03
    tiny = train_and_store(TrainConfig("mlp", epochs=1, train_size=100, batch_size=32, validation_fraction=0.1),
                           small_data, ModelStore(tmp_path), "tiny")
    assert not stats_path(tmp_path, tiny["model_file"]).exists()  # 10 digits a class: too few to say


def test_a_fine_tuned_model_gets_its_own_statistics_too(small_data, tmp_path):
    from digitlab.digits_db import DigitsDb, NewDigit, picture_to_png
    from digitlab.finetune import finetune_and_store
    from digitlab.finetune_config import FinetuneConfig
    from digitlab.runs import train_and_store
    from digitlab.synthetic_writer import synthetic_writer
    from digitlab.writer_scores import load_writer_digits

    store = ModelStore(tmp_path / "models")
    train_and_store(TrainConfig("mlp", epochs=1, batch_size=64, validation_fraction=0.1, seed=4), small_data,
                    store, "base")
    pictures, labels = synthetic_writer(per_digit=6, seed=3)
    db = DigitsDb(tmp_path / "digits.sqlite")
    db.add_many([NewDigit("cont", int(label), picture_to_png(picture), preprocess(picture).image)
                 for picture, label in zip(pictures, labels, strict=True)])
    writer = load_writer_digits(db, "cont")
    card = finetune_and_store(FinetuneConfig("base", "cont", epochs=1), writer, small_data, store, "tuned")
    assert stats_path(store.root, card["model_file"]).exists()
    # Calibrated on the split its base held out, as a model trained from scratch is on its own.
    assert card["calibration"]["temperature"] > 0 and card["calibration"]["validation_samples"] == 300
    # The digits the writer taught it are digits to it, whatever MNIST's classes say.
    check = load_check(store.root, "tuned", card["model_file"], store.load("tuned"))
    taught = [writer.digits.index(digit) for digit in writer.digits if digit.id not in card["finetune"]["heldout_ids"]]
    features = Predictor(store.load("tuned")).features(writer.images[taught])
    assert not check.stats.unlike(features).any()
    assert check.stats.means.shape[0] == 10 * CENTRES_PER_CLASS + len(taught)


def test_fit_novelty_refits_only_the_named_model_and_says_what_it_measured(small_model, mnist, tmp_path, capsys):
    from standin_digits import write_npz

    from digitlab.cli import main

    store = ModelStore(tmp_path / "models")
    for name in ("mine", "other"):
        store.save(name, small_model, {"architecture": "mlp"})
    data = write_npz(mnist.subset(7000, 1000), tmp_path / "digits.npz")  # 2,000 fitted, 5,000 held out
    argv = ["fit-novelty", "--model", "mine", "--nondigits", "100", "--models", str(store.root),
            "--data", str(data), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    [mine] = report["models"]
    mine_file = store.read_card("mine")["model_file"]
    assert mine["model"] == "mine" and mine["path"] == str(stats_path(store.root, mine_file))
    assert (store.root / "novelty.npz").is_file()
    assert not stats_path(store.root, store.read_card("other")["model_file"]).exists()
    assert all(0 <= share < 0.05 for share in mine["false_alarms_with_pixels"].values())
    assert mine["detection_with_pixels"] >= report["detection"]  # the own test only adds to the pixel test
    assert load_check(store.root, "mine", mine_file, store.load("mine")) is not None


def test_one_pass_gives_the_models_own_answer_and_its_softmax_layers_input(small_model, small_data):
    import keras

    image = to_float(small_data.x_test[:1])
    probabilities, features = Predictor(small_model).read_one(image[0])
    trunk = keras.Model(small_model.inputs, small_model.layers[-1].input)
    assert np.allclose(probabilities, small_model(image, training=False).numpy()[0], atol=1e-5)
    assert np.allclose(features, trunk(image, training=False).numpy()[0], atol=1e-5)


def test_the_statistics_see_the_digits_as_the_training_showed_them(small_data):
    from digitlab.feature_novelty import as_learned

    images, labels = small_data.x_train[:600], small_data.y_train[:600]
    plain, same = as_learned(images, labels, TrainConfig("mlp", augment=False))
    np.testing.assert_array_equal(plain, to_float(images))
    np.testing.assert_array_equal(same, labels)
    shown, shown_labels = as_learned(images, labels, TrainConfig("mlp", augment=True, seed=2))
    assert shown.shape == plain.shape and shown.dtype == np.float32
    assert float(np.abs(shown - plain).mean()) > 0.02  # distorted and styled, not the plain digits
    # A 1's stem drawn into a 7 or a 4 is counted as the digit it became.
    assert 0 < int((shown_labels != labels).sum()) < len(labels) // 4
    np.testing.assert_array_equal(as_learned(images, labels, TrainConfig("mlp", augment=True, seed=2))[0], shown)
