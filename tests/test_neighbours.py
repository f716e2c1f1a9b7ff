"""Nearest training digits and the 2-D map in a model's penultimate space (UCI digits, no MNIST)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from digitlab.neighbours import FeatureSpace


@pytest.fixture(scope="module")
def uci():
    from digitlab.other_handwriting import load_uci_digits

    return load_uci_digits()


@pytest.fixture(scope="module")
def space(uci) -> FeatureSpace:
    """An MLP trained briefly on 1,500 UCI digits; the space holds those, the map the other 297."""
    from digitlab.architectures import build_model

    keras.utils.set_random_seed(0)
    model = build_model("mlp", units=64)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(uci.images[:1500], uci.labels[:1500], epochs=5, batch_size=64, verbose=0)
    return FeatureSpace(model, uci.images[:1500], uci.labels[:1500], uci.images[1500:], uci.labels[1500:])


def test_a_training_digit_is_its_own_nearest_neighbour(space, uci):
    neighbours = space.nearest(uci.images[7])
    assert len(neighbours) == 8 and neighbours[0].index == 7
    assert neighbours[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert [n.similarity for n in neighbours] == sorted((n.similarity for n in neighbours), reverse=True)


def test_neighbours_of_an_unseen_digit_mostly_share_its_label(space, uci):
    agree = [np.mean([n.label == uci.labels[i] for n in space.nearest(uci.images[i])]) for i in range(1500, 1560)]
    assert np.mean(agree) > 0.8


def test_the_map_places_a_drawing_where_its_features_project(space, uci):
    assert space.map.points.shape == (297, 2) and space.map.labels.shape == (297,)
    np.testing.assert_allclose(space.place(uci.images[1500]), space.map.points[0], atol=1e-3)
    assert 0 < space.map.explained[1] <= space.map.explained[0] < 1
    assert space.dimensions == 64
