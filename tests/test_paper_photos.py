"""The paper-photos test set: MNIST test digits written on paper and photographed under five lights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitlab.config import TrainConfig
from digitlab.paper_photos import LIGHTS, load_paper_photos, photograph, scores_by_light
from digitlab.preprocess import preprocess
from digitlab.store import ModelStore
from digitlab.training import train


@pytest.fixture(scope="module")
def photos(mnist):
    return load_paper_photos(mnist.x_test, mnist.y_test, digits=12)


def test_the_set_is_the_same_every_time_and_goes_light_by_light(photos, mnist):
    again = load_paper_photos(mnist.x_test, mnist.y_test, digits=12)
    assert np.array_equal(photos.pictures, again.pictures)
    assert len(photos.labels) == 12 * len(LIGHTS)
    assert np.array_equal(photos.labels, np.tile(mnist.y_test[:12], len(LIGHTS)))


@pytest.mark.parametrize("light", ["shadow", "deep shadow", "dim room"])
def test_a_shadow_darkens_one_side_of_the_page(light, mnist):
    photo = photograph(np.zeros((28, 28), np.uint8), light, np.random.default_rng(3)).astype(float) / 255
    even = photograph(np.zeros((28, 28), np.uint8), "even", np.random.default_rng(3)).astype(float) / 255
    edges = [photo[:20].mean(), photo[-20:].mean(), photo[:, :20].mean(), photo[:, -20:].mean()]
    assert max(edges) - min(edges) > 0.1
    assert np.ptp([even[:20].mean(), even[-20:].mean(), even[:, :20].mean(), even[:, -20:].mean()]) < 0.01


def test_every_light_gives_the_model_nearly_the_input_even_light_gives(photos):
    per_light = len(photos.labels) // len(LIGHTS)
    even = photos.images[:per_light]
    for index, light in enumerate(LIGHTS):
        assert all(preprocess(picture).inverted for picture in photos.pictures[index * per_light:][:per_light])
        lit = photos.images[index * per_light:(index + 1) * per_light]
        assert np.abs(lit - even).mean() < 0.05, light  # place and size differ a little; the digit does not


def test_scores_are_counted_per_light():
    right = np.ones(10, bool)
    right[[2, 9]] = False
    scores = scores_by_light(right)
    assert [score.light for score in scores] == list(LIGHTS)
    assert [(score.correct, score.of) for score in scores] == [(2, 2), (1, 2), (2, 2), (2, 2), (1, 2)]


def test_evaluate_on_photos_reports_each_light(small_data, mnist_path, tmp_path, capsys):
    from digitlab.cli import main

    store = ModelStore(tmp_path)
    store.save("mine", train(TrainConfig("mlp", epochs=1, batch_size=64, seed=1), small_data).model,
               {"architecture": "mlp"})
    argv = ["evaluate", "mine", "--on", "photos", "--models", str(tmp_path), "--data", str(mnist_path), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "photos" and [item["light"] for item in report["by_light"]] == list(LIGHTS)
    assert sum(item["correct"] for item in report["by_light"]) == report["correct"]
    assert main(argv[:-1]) == 0
    assert "by light: even " in capsys.readouterr().out
