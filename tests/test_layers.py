"""The layer view: every layer's output for one drawing, with shapes, parameters and first filters."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from digitlab.architectures import build_model
from digitlab.display import map_grid
from digitlab.inference import Predictor
from digitlab.layers import LayerInspector, first_filters


@pytest.fixture(scope="module", params=["mlp", "lenet", "cnn"])
def model(request) -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_model(request.param)


@pytest.fixture()
def drawing() -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    image[6:22, 12:16] = 1.0  # a fat "1"
    return image


def test_every_layer_is_listed_with_the_shape_of_its_output(model, drawing):
    outputs = LayerInspector(model).outputs(drawing)
    assert [output.name for output in outputs] == [layer.name for layer in model.layers[1:]]
    for output, layer in zip(outputs, model.layers[1:], strict=True):
        assert output.values.shape == output.shape == tuple(layer.output.shape[1:])
    assert sum(output.parameters for output in outputs) == model.count_params()


def test_the_last_layer_is_the_softmax_the_predictor_gives(model, drawing):
    last = LayerInspector(model).outputs(drawing)[-1]
    assert last.activation == "softmax" and last.shape == (10,)
    np.testing.assert_allclose(last.values, Predictor(model).probabilities(drawing)[0], atol=1e-5)


def test_conv_layers_give_one_map_per_filter_scaled_to_unit_range(drawing):
    keras.utils.set_random_seed(0)
    lenet = build_model("lenet")
    conv = next(output for output in LayerInspector(lenet).outputs(drawing) if output.kind == "Conv2D")
    maps = conv.feature_maps()
    assert maps.shape == (20, 24, 24)  # 20 filters of 5×5 over 28×28, no padding
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    with pytest.raises(ValueError, match="not feature maps"):
        LayerInspector(lenet).outputs(drawing)[-1].feature_maps()


def test_first_filters_are_conv_kernels_or_mlp_templates():
    keras.utils.set_random_seed(0)
    name, kernels = first_filters(build_model("lenet"))
    assert kernels.shape == (20, 5, 5) and name == "conv1"
    mlp = build_model("mlp")
    _, templates = first_filters(mlp)
    assert templates.shape == (mlp.layers[2].units, 28, 28)  # one 28×28 template per first-layer unit
    assert templates.min() >= 0.0 and templates.max() <= 1.0


def test_mlp_template_shows_where_a_unit_looks():
    model = build_model("mlp")
    dense = next(layer for layer in model.layers if isinstance(layer, keras.layers.Dense))
    kernel = np.zeros((784, dense.units), np.float32)
    kernel[:, 0] = -0.1
    kernel[14 * 28 + 3, 0] = 1.0  # unit 0 wants ink at row 14, column 3
    dense.set_weights([kernel, np.zeros(dense.units, np.float32)])
    _, templates = first_filters(model)
    assert np.unravel_index(templates[0].argmax(), (28, 28)) == (14, 3)
    assert templates[0, 0, 0] == pytest.approx(0.45)  # a small negative weight: a bit darker than 0.5


def test_a_batch_is_refused(model):
    with pytest.raises(ValueError, match="one drawing"):
        LayerInspector(model).outputs(np.zeros((2, 28, 28), np.float32))


def test_map_grid_places_each_map_in_its_cell():
    maps = np.zeros((5, 7, 7), np.float32)
    maps[3] = 1.0  # the fourth map is all white
    grid = map_grid(maps, columns=4, cell=14, gap=2)
    assert grid.shape == (2 * 14 + 2, 4 * 14 + 3 * 2)
    assert (grid[:14, 3 * 16:3 * 16 + 14] == 255).all() and grid[:14, :14].max() == 0
    assert (grid[16:, 16:] == 96).all()  # cells after the fifth map stay the gap colour
