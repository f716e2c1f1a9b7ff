"""The paper-photos test set: MNIST test digits written on paper and photographed in eight scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitlab.config import TrainConfig
from digitlab.evaluation import evaluate
from digitlab.inference import Predictor
from digitlab.paper_photos import SCENES, load_paper_photos, photograph, scene_scores, scores_by_scene
from digitlab.preprocess import preprocess
from digitlab.store import SHIPPED_MODELS, ModelStore
from digitlab.training import train

# Measured with the shipped models on the 1,800 photos (99.89 / 99.89 / 99.83 %, docs/handwriting.md).
PHOTO_TARGETS = {"cnn": 0.995, "lenet": 0.995, "mlp": 0.995}


@pytest.fixture(scope="module")
def photos(mnist):
    return load_paper_photos(mnist.x_test, mnist.y_test, digits=12)


def test_the_set_is_the_same_every_time_and_goes_scene_by_scene(photos, mnist):
    again = load_paper_photos(mnist.x_test, mnist.y_test, digits=12)
    assert np.array_equal(photos.pictures, again.pictures)
    assert len(photos.labels) == 12 * len(SCENES)
    assert np.array_equal(photos.labels, np.tile(mnist.y_test[:12], len(SCENES)))


@pytest.mark.parametrize("scene", ["shadow", "deep shadow", "dim room", "ruled, shadow"])
def test_a_shadow_darkens_one_side_of_the_page(scene, mnist):
    photo = photograph(np.zeros((28, 28), np.uint8), scene, np.random.default_rng(3)).astype(float) / 255
    even = photograph(np.zeros((28, 28), np.uint8), "even", np.random.default_rng(3)).astype(float) / 255
    edges = [photo[:20].mean(), photo[-20:].mean(), photo[:, :20].mean(), photo[:, -20:].mean()]
    assert max(edges) - min(edges) > 0.1
    assert np.ptp([even[:20].mean(), even[-20:].mean(), even[:, :20].mean(), even[:, -20:].mean()]) < 0.01


def test_squared_paper_has_lines_both_ways_and_ruled_paper_one_way():
    blank = np.zeros((28, 28), np.uint8)
    squared = photograph(blank, "squared paper", np.random.default_rng(4)).astype(float)
    ruled = photograph(blank, "ruled, shadow", np.random.default_rng(4)).astype(float)
    assert squared.mean(axis=1).std() > 3 and squared.mean(axis=0).std() > 3  # rows and columns vary
    assert ruled.mean(axis=1).std() > 3


def test_every_scene_gives_the_model_nearly_the_input_even_light_gives(photos):
    per_scene = len(photos.labels) // len(SCENES)
    even = photos.images[:per_scene]
    for index, scene in enumerate(SCENES):
        assert all(preprocess(picture).inverted for picture in photos.pictures[index * per_scene:][:per_scene])
        lit = photos.images[index * per_scene:(index + 1) * per_scene]
        assert np.abs(lit - even).mean() < 0.05, scene  # place and size differ a little; the digit does not


def test_scores_are_counted_per_scene():
    right = np.ones(2 * len(SCENES), bool)
    right[[2, 2 * len(SCENES) - 1]] = False
    scores = scores_by_scene(right)
    assert [score.scene for score in scores] == list(SCENES)
    assert [(score.correct, score.of) for score in scores] == [(2, 2), (1, 2), *[(2, 2)] * (len(SCENES) - 3), (1, 2)]


def test_a_close_up_fills_the_photo_with_the_digit(mnist):
    close = photograph(mnist.x_test[0], "close-up, shadow", np.random.default_rng(6)).astype(float) / 255
    ink = close < np.median(close) - 0.25
    assert ink[:8].any() and ink[-8:].any()  # the 7's bar and its stem's foot reach the frame's edges
    result = preprocess(np.rint(close * 255).astype(np.uint8))
    assert result.inverted and result.image is not None


def test_evaluate_on_photos_reports_each_scene(small_data, mnist_path, tmp_path, capsys, monkeypatch):
    import digitlab.paper_photos
    from digitlab.cli import main

    monkeypatch.setattr(digitlab.paper_photos, "DIGITS", 20)  # 140 photos: the command, not the figure

    store = ModelStore(tmp_path)
    store.save("mine", train(TrainConfig("mlp", epochs=1, batch_size=64, seed=1), small_data).model,
               {"architecture": "mlp"})
    argv = ["evaluate", "mine", "--on", "photos", "--models", str(tmp_path), "--data", str(mnist_path), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "photos" and [item["scene"] for item in report["by_scene"]] == list(SCENES)
    assert [item["of"] for item in report["by_scene"]] == [20] * len(SCENES)
    assert sum(item["correct"] for item in report["by_scene"]) == report["correct"]
    assert main(argv[:-1]) == 0
    assert "by scene: even " in capsys.readouterr().out


@pytest.mark.slow
def test_the_shipped_models_read_the_paper_photos_scene_by_scene(real_mnist):
    photos = load_paper_photos(real_mnist.x_test, real_mnist.y_test)
    store = ModelStore()
    for name in sorted(SHIPPED_MODELS):
        result = evaluate(Predictor(store.load(name)), photos.images, photos.labels)
        assert result.accuracy >= PHOTO_TARGETS[name], name
        assert all(score.correct >= 0.95 * score.of for score in scene_scores(result)), name
