"""The Draw page under AppTest: every input path and message, without a browser.

AppTest runs no JavaScript, so a drawing is put in the way the pad would send it: a PNG data URL
in the pad's session state. Drawing with a real mouse is tested in tests/test_browser_draw.py.
"""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from app_support import pad_message
from PIL import Image, ImageDraw
from store_support import copy_store
from strokes_support import holes, narrow_eight

from app_pages import common
from digitlab.strokes import Drawing

UPLOAD = ":material/upload: Upload"


def png_bytes(image: np.ndarray, size: int = 200, dark_on_light: bool = True) -> bytes:
    """A large PNG of a 28×28 uint8 digit, the way a photo or a paint program would give it."""
    picture = Image.fromarray(255 - image if dark_on_light else image).resize((size, size))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def metric(app, label: str) -> str | None:
    return next((m.value for m in app.metric if m.label == label), None)


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def upload(app, name: str, data: bytes):
    app.segmented_control(key="draw_source").set_value(UPLOAD).run()
    app.file_uploader(key="draw_upload").set_value((name, data, "image/png")).run()
    return app


def loaded_server(monkeypatch, loaded: bool) -> None:
    """Make this process a server that has (or has not yet) loaded a model."""
    event = threading.Event()
    if loaded:
        event.set()
    monkeypatch.setattr(common, "_A_MODEL_LOADED", event)


def test_blank_canvas_asks_for_a_digit_and_lists_the_models(app_env, make_app, monkeypatch):
    loaded_server(monkeypatch, True)
    app = make_app()
    assert not app.exception
    assert "Draw a digit" in app.title[0].value
    assert "Draw a digit in the black square" in texts(app.info)
    assert metric(app, "Prediction") is None  # never a guess without a drawing
    picker = app.selectbox(key="draw_model")
    assert picker.value == "quick-mlp"  # the most accurate model is the default
    assert any("quick-lenet — lenet" in option and "parameters" in option for option in picker.options)


def pad_drawing(image: np.ndarray, size: int = 280) -> str:
    """A 28×28 digit drawn large on the pad, as the pad sends it: white on black, a PNG data URL."""
    buffer = io.BytesIO()
    Image.fromarray(image).resize((size, size)).convert("RGBA").save(buffer, format="PNG")
    return pad_message(buffer.getvalue())


def test_a_drawing_on_the_pad_is_predicted_and_cleared(app_env, make_app, mnist):
    image, label = mnist.x_test[0], int(mnist.y_test[0])
    app = make_app()
    app.session_state["draw_pad"] = {"drawing": pad_drawing(image)}
    app.run()
    assert not app.exception
    assert metric(app, "Prediction") == str(label)
    assert "its 28×28 input" in [caption for image in app.image for caption in image.captions]
    assert "What the model sees" not in texts(app.subheader)  # the details wait for "Look inside"
    assert probability_bars(app)[label] == max(probability_bars(app)) > 0.5
    app.session_state["draw_pad"] = {"drawing": None}  # what Clear sends
    app.run()
    assert metric(app, "Prediction") is None
    assert "Draw a digit in the black square" in texts(app.info)
    assert probability_bars(app) == [0.0] * 10  # the chart stays in place, empty, until the next stroke


def pad_seven(points: list[tuple[int, int]], brush: int) -> str:
    """A 7 drawn on the pad through ``points`` with a ``brush``-px brush, as the pad sends it."""
    pad = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(pad).line(points, fill=(255, 255, 255, 255), width=brush, joint="curve")
    buffer = io.BytesIO()
    pad.save(buffer, format="PNG")
    return pad_message(buffer.getvalue())


def test_a_small_digit_drawn_with_a_wide_brush_is_read_with_advice(app_env, make_app):
    app = make_app()
    app.session_state["draw_pad"] = {"drawing": pad_seven([(105, 100), (175, 100), (130, 185)], 32)}  # 85 px tall
    app.run()
    assert not app.exception and metric(app, "Prediction") is not None
    assert "draw it larger or with a thinner pen" in texts(app.info)
    app.session_state["draw_pad"] = {"drawing": pad_seven([(70, 60), (210, 60), (120, 230)], 18)}  # 170 px tall
    app.run()
    assert metric(app, "Prediction") is not None and "thinner pen" not in texts(app.info)


def pad_strokes(strokes: list[dict]) -> dict:
    """A drawing as the pad sends it after a stroke: its picture and its strokes."""
    buffer = io.BytesIO()
    Image.fromarray(Drawing.from_message(strokes, side=280).picture()).convert("RGBA").save(buffer, format="PNG")
    return {"picture": pad_message(buffer.getvalue()), "strokes": strokes}


def test_a_small_eight_drawn_with_a_wide_brush_is_read_from_its_strokes_with_its_loops_open(app_env, make_app):
    sent = pad_strokes(narrow_eight(width=34))
    app = make_app()
    app.session_state["draw_pad"] = {"drawing": sent}
    app.run()
    assert not app.exception and metric(app, "Prediction") is not None
    assert "read your strokes redrawn with MNIST's pen" in texts(app.caption)
    model_input, _ = app.session_state["watch_last_drawing"]
    assert holes(model_input, least=2) == 2  # what the model got has both loops
    assert "thinner pen" not in texts(app.info)  # nothing left to advise: the page redrew it
    assert app.session_state["draw_pad_kept"] == sent  # a fresh pad gets the strokes back, for Undo too
    app.session_state["draw_pad"] = {"drawing": sent["picture"]}  # the same picture with no strokes
    app.run()
    model_input, _ = app.session_state["watch_last_drawing"]
    assert holes(model_input, least=2) == 0 and "thinner pen" in texts(app.info)
    assert "redrawn" not in texts(app.caption)


def test_a_forged_strokes_message_is_one_line_on_the_page(app_env, make_app):
    sent = {**pad_strokes(narrow_eight(width=34)), "strokes": [{"width": "wide", "points": [1, 2]}]}
    app = make_app()
    app.session_state["draw_pad"] = {"drawing": sent}
    app.run()
    assert not app.exception and metric(app, "Prediction") is None
    assert texts(app.error) == ("The drawing could not be read: a stroke's width is not a number of pixels "
                                "from 0 to 200.")


def probability_bars(app) -> list[float]:
    """The ten bars of the Draw page's probability chart, read from the data the browser gets."""
    import pyarrow

    [chart] = app.get("vega_lite_chart")
    table = pyarrow.ipc.open_stream(chart.proto.data.data).read_all()
    assert "data" not in json.loads(chart.proto.spec)  # bars travel as data: the spec never changes
    return table.column("probability").to_pylist()


@pytest.mark.parametrize("scene", ["deep shadow", "close-up, shadow", "sheet on a desk"])
def test_a_photo_in_a_hard_scene_is_read_as_the_evenly_lit_one(app_env, make_app, mnist, scene):
    from digitlab.paper_photos import photograph

    def photo_png(light: str) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(photograph(mnist.x_test[0], light, np.random.default_rng(5))).save(buffer, format="PNG")
        return buffer.getvalue()

    even = upload(make_app(), "even.png", photo_png("even"))
    shadowed = upload(make_app(), "hard.png", photo_png(scene))
    assert not shadowed.exception
    assert metric(shadowed, "Prediction") == metric(even, "Prediction") == str(int(mnist.y_test[0]))


def test_uploaded_digit_is_predicted_and_explained(app_env, make_app, mnist):
    image, label = mnist.x_test[0], int(mnist.y_test[0])
    app = upload(make_app(), "seven.png", png_bytes(image))
    assert not app.exception
    assert metric(app, "Prediction") == str(label)
    assert metric(app, "Confidence").endswith("%")
    app.toggle(key="draw_details").set_value(True).run()
    assert "What the model sees" in texts(app.subheader)
    assert "Pixel values of the model's input" in texts(app.caption)
    steps = [caption for image in app.image for caption in image.captions if caption.startswith("1 · ")]
    assert len(steps) == 1 and "→   4 · centred in 28×28" in steps[0]  # the steps, in one strip
    app.radio(key="draw_saliency").set_value("occlusion").run()
    assert not app.exception
    assert "Occlusion" in texts(app.caption)
    app.toggle(key="draw_feed_raw").set_value(True).run()
    assert not app.exception
    assert metric(app, "Prediction") is not None
    assert "its 28×28 input (squashed, not preprocessed)" in app.image[1].captions  # next to the answer


def test_unreadable_and_blank_uploads_explain_themselves(app_env, make_app, mnist):
    app = upload(make_app(), "seven.png", png_bytes(mnist.x_test[0]))
    assert metric(app, "Prediction") is not None
    # Any file is taken, whatever its name, and replaces the last one's answer with what is wrong.
    app.file_uploader(key="draw_upload").set_value(("digit.svg", b"<svg/>", "image/svg+xml")).run()
    assert not app.exception
    assert "**digit.svg** cannot be used: not a PNG or JPEG" in texts(app.error)
    assert metric(app, "Prediction") is None
    app = upload(app, "digit.png", b"this is not a picture")
    assert not app.exception
    assert "not a PNG or JPEG" in texts(app.error)
    assert metric(app, "Prediction") is None
    blank = png_bytes(np.zeros((28, 28), np.uint8))
    app.file_uploader(key="draw_upload").set_value(("white.png", blank, "image/png")).run()
    assert not app.exception
    assert "one colour all over" in texts(app.info).lower()  # a bare white page
    assert metric(app, "Prediction") is None  # never a guess without a digit


def test_mnist_samples_are_put_in_by_the_input_choice_and_the_button(app_env, make_app):
    app = make_app()
    app.segmented_control(key="draw_source").set_value(":material/casino: MNIST").run()
    assert not app.exception
    first = app.session_state["draw_sample_index"]
    assert metric(app, "Prediction") is not None
    assert "MNIST says this is a" in texts(app.caption)
    app.button(key="draw_random").click().run()
    assert not app.exception
    assert app.segmented_control(key="draw_source").value.endswith(": MNIST")
    assert metric(app, "Prediction") is not None
    assert app.image[0].captions[0].startswith(f"MNIST test image #{app.session_state['draw_sample_index']}")
    assert first is not None


def test_an_mnist_sample_with_heavy_strokes_gets_no_drawing_advice(app_env, make_app, mnist):
    from digitlab.preprocess import preprocess

    heavy = next(index for index, image in enumerate(mnist.x_test) if preprocess(image).advice)
    app = make_app()
    app.session_state["draw_sample_index"] = heavy
    app.segmented_control(key="draw_source").set_value(":material/casino: MNIST").run()
    assert not app.exception and app.session_state["draw_sample_index"] == heavy
    assert metric(app, "Prediction") is not None and "thinner pen" not in texts(app.info)


def test_low_confidence_is_called_out(app_env, make_app, tmp_path, monkeypatch, mnist):
    import keras

    from digitlab.store import ModelStore

    inputs = keras.Input((28, 28))
    outputs = keras.layers.Dense(10, activation="softmax", kernel_initializer="zeros")(
        keras.layers.Flatten()(inputs))
    ModelStore(tmp_path).save("uniform", keras.Model(inputs, outputs), {"architecture": "mlp",
                                                                       "parameters": 7850})
    monkeypatch.setenv("DIGITLAB_MODELS", str(tmp_path))
    app = upload(make_app(), "digit.png", png_bytes(mnist.x_test[0]))
    assert not app.exception
    assert metric(app, "Confidence") == "10.0%"
    assert "Low confidence" in texts(app.warning)


def test_a_picture_refused_as_not_a_digit_shows_no_confidence_and_names_the_closest_digit(
        app_env, make_app, monkeypatch):
    monkeypatch.delenv("DIGITLAB_MODELS")  # the shipped store, which has the "not a digit" tests
    wheel = Image.new("L", (280, 280), 0)  # a circle with four spokes: strokes, but no digit's
    pen = ImageDraw.Draw(wheel)
    pen.ellipse((50, 50, 230, 230), outline=255, width=18)
    for start, end in (((140, 40), (140, 240)), ((40, 140), (240, 140)), ((70, 70), (210, 210)),
                       ((210, 70), (70, 210))):
        pen.line([start, end], fill=255, width=18)
    buffer = io.BytesIO()
    wheel.save(buffer, format="PNG")
    app = upload(make_app(), "wheel.png", buffer.getvalue())
    assert not app.exception
    assert metric(app, "Prediction") == "—" and metric(app, "Confidence") == "—"
    warning = texts(app.warning)
    assert "**Not a digit?**" in warning and "Its closest digit would be " in warning
    assert "% of its softmax)" in warning


def test_empty_store_says_how_to_get_a_model(app_env, make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_MODELS", str(tmp_path / "nothing-here"))
    app = make_app()
    assert not app.exception
    assert "No models yet" in texts(app.info)
    assert "python -m digitlab train" in texts(app.info)


def test_corrupt_models_are_flagged_and_compare_mode_still_answers(app_env, make_app, tmp_path,
                                                                    monkeypatch, mnist):
    store = tmp_path / "store"
    copy_store(app_env, store)
    (store / "broken.json").write_text("{not json", encoding="utf-8")
    garbage = b"PK\x03\x04 definitely not a keras file" * 10
    (store / "garbled.0000.keras").write_bytes(garbage)
    (store / "garbled.json").write_text(json.dumps({
        "architecture": "mlp", "parameters": 1, "model_file": "garbled.0000.keras",
        "model_bytes": len(garbage)}), encoding="utf-8")
    monkeypatch.setenv("DIGITLAB_MODELS", str(store))
    app = upload(make_app(), "digit.png", png_bytes(mnist.x_test[0]))
    assert not app.exception
    assert "broken" in texts(app.warning) and "cannot be used" in texts(app.warning)
    assert metric(app, "Prediction") == str(mnist.y_test[0])
    app.toggle(key="draw_compare").set_value(True).run()
    assert not app.exception
    assert "garbled" in texts(app.error)  # its column says why; the other columns answer
    assert {"quick-mlp says", "quick-lenet says"} <= {m.label for m in app.metric}
    verdict = texts(app.success) + texts(app.warning)
    assert "models agree" in verdict or "models disagree" in verdict


def test_draw_works_without_mnist_but_the_random_digit_says_why(app_env, make_app, tmp_path,
                                                                monkeypatch, mnist):
    monkeypatch.setenv("DIGITLAB_MNIST", str(tmp_path / "missing.npz"))
    app = make_app()
    assert not app.exception
    assert app.button(key="draw_random").disabled
    assert "MNIST is not available on this server" in texts(app.caption)  # the path and variable: in the log
    upload(app, "digit.png", png_bytes(mnist.x_test[0]))
    assert metric(app, "Prediction") == str(mnist.y_test[0])


def test_navigation_reaches_the_train_page(app_env, make_app):
    app = make_app("app_pages/train.py")
    assert not app.exception
    assert app.title



def test_a_model_added_to_the_store_appears_on_the_next_rerun(app_env, make_app, tmp_path, monkeypatch):
    store = tmp_path / "store"
    copy_store(app_env, store)
    monkeypatch.setenv("DIGITLAB_MODELS", str(store))
    app = make_app()
    assert "fresh" not in app.selectbox(key="draw_model").options
    card = json.loads((store / "quick-lenet.json").read_text(encoding="utf-8"))
    (store / "fresh.json").write_text(json.dumps({**card, "name": "fresh"}), encoding="utf-8")
    app.run()
    assert any(option.startswith("fresh — ") for option in app.selectbox(key="draw_model").options)


def test_a_stroke_does_not_reset_keras(app_env, make_app, mnist, monkeypatch):
    """Streamlit resets Keras after every run unless the app stops it; that reset cost ~300 ms of
    CPU per stroke."""
    import keras

    resets = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: resets.append(1))
    app = make_app()
    app.session_state["draw_pad"] = {"drawing": pad_drawing(mnist.x_test[0])}
    app.run()
    assert not app.exception and metric(app, "Prediction") == str(mnist.y_test[0])
    assert resets == []


def test_the_compare_verdict_names_a_model_that_declines_and_never_counts_it_as_agreeing():
    from app_pages.draw import vote_verdict
    from digitlab.reading import Reading

    probabilities = np.full(10, 0.1, np.float32)

    def said(name, digit):
        reason = None if digit is not None else "the lenet model finds it unlike every digit it learned"
        return Reading(name, digit, probabilities, 0.9, digit is not None, reason)

    kind, text, _ = vote_verdict({"cnn": said("cnn", 7), "mlp": said("mlp", 7), "lenet": said("lenet", None)})
    assert kind == "success" and text == "The 2 models that name a digit agree: it is a **7** (lenet: not a digit)."
    kind, text, _ = vote_verdict({"cnn": said("cnn", 7), "mlp": said("mlp", 7), "lenet": said("lenet", 7)})
    assert text == "All 3 models agree: it is a **7**."
    kind, text, _ = vote_verdict({"cnn": said("cnn", 7), "mlp": said("mlp", 1)})
    assert kind == "warning" and "**7** from cnn" in text and "**1** from mlp" in text
    sure_seven = Reading("cnn", 7, np.eye(10, dtype=np.float32)[7] * 0.75 + 0.03, 0.78, True)
    kind, text, _ = vote_verdict({"cnn": sure_seven, "mlp": Reading("mlp", 1, probabilities, 0.1, False)})
    assert kind == "warning" and text.endswith("Their answers averaged say **7** (44%).")
    kind, _, _ = vote_verdict({"cnn": said("cnn", None), "mlp": said("mlp", None)})
    assert kind == "info"


def test_the_draw_page_shows_its_pad_before_tensorflow_is_imported():
    """Importing TensorFlow takes 5-10 s on two cores: every module the Draw page imports must leave
    it out, so that a visitor sees the pad at once and TensorFlow loads after it (draw.render)."""
    root = Path(__file__).parent.parent
    tree = ast.parse((root / "app_pages" / "draw.py").read_text())
    modules = sorted({node.module for node in ast.walk(tree)
                      if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("app_pages",
                                                                                                      "digitlab"))})
    assert "app_pages.inside" in modules and "digitlab.reading" in modules
    code = f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; print(sorted(" \
           "{'tensorflow', 'keras'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert result.stdout.strip() == "[]"


def test_until_the_first_model_is_loaded_the_pad_says_the_answer_is_coming(app_env, make_app, monkeypatch):
    """The pad is up before TensorFlow: a visitor who draws at once is told why no answer yet."""
    loaded_server(monkeypatch, False)
    app = make_app()  # its first run shows the page, then loads the model
    assert not app.exception
    assert "Loading the model" in texts(app.info) and "Draw a digit in the black square" not in texts(app.info)
    app.run()
    assert "Draw a digit in the black square" in texts(app.info) and "Loading the model" not in texts(app.info)
