"""The Draw page's deeper Look-inside views under AppTest: layers, probe, where the drawing lands."""

from __future__ import annotations

import io

import numpy as np
from app_support import pad_message
from PIL import Image


def pad_drawing(image: np.ndarray, size: int = 280) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).resize((size, size)).convert("RGBA").save(buffer, format="PNG")
    return pad_message(buffer.getvalue())


def looking_inside(make_app, mnist, *, compare: bool = False):
    app = make_app()
    app.session_state["draw_pad"] = {"drawing": pad_drawing(mnist.x_test[0])}
    app.session_state["draw_details"] = True
    app.session_state["draw_compare"] = compare
    return app.run()


def markdown(app) -> str:
    return "\n".join(element.value for element in app.markdown)


def test_layers_view_waits_for_its_switch(app_env, make_app, mnist):
    app = looking_inside(make_app, mnist)
    assert not app.exception
    assert app.toggle(key="inside_layers").value is False
    assert "First layer's" not in markdown(app)


def test_layers_view_lists_every_layer_with_its_shape(app_env, make_app, mnist):
    app = looking_inside(make_app, mnist)
    app.toggle(key="inside_layers").set_value(True).run()
    assert not app.exception
    summary = next(frame.value for frame in app.dataframe if "output shape" in frame.value.columns)
    assert list(summary["output shape"])[-1] == "10" and summary["parameters"].sum() > 100_000
    assert "First layer's weight templates" in markdown(app)  # quick-mlp is the default model


def test_compare_mode_shows_each_models_layers(app_env, make_app, mnist):
    app = looking_inside(make_app, mnist, compare=True)
    app.toggle(key="inside_layers").set_value(True).run()
    assert not app.exception
    summaries = [frame.value for frame in app.dataframe if "output shape" in frame.value.columns]
    assert len(summaries) == 2
    assert any((summary["does"] == "Conv2D").any() for summary in summaries)  # quick-lenet's
    assert "First layer's filters" in markdown(app)
    lenet_map = app.number_input(key="inside_map_quick-lenet_conv1")
    lenet_map.set_value(3).run()
    assert not app.exception and "map 3" in [c for image in app.image for c in image.captions]


def test_probe_charts_every_model_across_every_sweep(app_env, make_app, mnist):
    app = looking_inside(make_app, mnist)
    assert app.toggle(key="inside_probe").value is False
    app.toggle(key="inside_probe").set_value(True).run()
    assert not app.exception
    assert any("what centring protects" in caption.value for caption in app.caption)


def test_where_it_lands_shows_eight_neighbours_and_the_map(app_env, make_app, mnist):
    app = looking_inside(make_app, mnist)
    app.toggle(key="inside_lands").set_value(True).run()
    assert not app.exception
    neighbours = next(image for image in app.image if len(image.captions) == 8)
    labels = [int(caption.split(" · ")[0]) for caption in neighbours.captions]
    assert labels.count(int(mnist.y_test[0])) >= 4  # a real 7 lands among 7s


def test_why_not_compares_the_answer_with_a_picked_digit(app_env, make_app, mnist):
    app = looking_inside(make_app, mnist)
    app.toggle(key="inside_why_not").set_value(True).run()
    assert not app.exception
    captions = [caption for image in app.image for caption in image.captions]
    assert any(caption.startswith(f"ink that makes it a {mnist.y_test[0]} rather than") for caption in captions)


def test_where_it_lands_says_when_mnist_is_missing(app_models, tmp_path, mnist):
    from app_support import app_against

    with app_against(app_models, tmp_path / "no-mnist.npz") as app:
        app.session_state["draw_pad"] = {"drawing": pad_drawing(mnist.x_test[0])}
        app.session_state["draw_details"] = True
        app.session_state["inside_lands"] = True
        app.run()
        assert not app.exception
        assert any("needs MNIST" in info.value for info in app.info)


def test_a_dropout_after_feature_maps_is_named_but_its_maps_are_not_shown_twice():
    from streamlit.testing.v1 import AppTest

    def two_layers():
        import numpy as np

        from app_pages.inside import layer_ui
        from digitlab.layers import LayerOutput

        maps = np.random.default_rng(0).random((7, 7, 4)).astype(np.float32)
        for kind in ("MaxPooling2D", "Dropout"):
            layer_ui("cnn", LayerOutput(kind.lower(), kind, f"{kind} does this", (7, 7, 4), 0, None, maps))

    app = AppTest.from_function(two_layers, default_timeout=60).run()
    assert not app.exception
    assert "**dropout**" in "\n".join(element.value for element in app.markdown)  # still listed
    assert [box.key for box in app.number_input] == ["inside_map_cnn_maxpooling2d"]  # one grid, the pool's


def test_look_inside_and_its_views_stay_on_after_a_clear(app_env, make_app, mnist):
    app = looking_inside(make_app, mnist)
    app.toggle(key="draw_details").set_value(True).run()
    app.toggle(key="inside_probe").set_value(True).run()
    app.session_state["draw_pad"] = {"drawing": None}  # what Clear sends: no answer, so no switches
    app.run()
    assert not app.exception and not [toggle for toggle in app.toggle if toggle.key == "inside_probe"]
    app.session_state["draw_pad"] = {"drawing": pad_drawing(mnist.x_test[1])}  # the next digit
    app.run()
    assert not app.exception
    assert app.toggle(key="draw_details").value is True and app.toggle(key="inside_probe").value is True
    assert any(element.key == "inside_probe" for element in app.toggle)
