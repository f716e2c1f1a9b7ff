"""The Evaluate page under AppTest: the comparison table, curves, confusion cells, mistakes."""

from __future__ import annotations

import json
import shutil

import numpy as np
from store_support import copy_store

import digitlab.paper_photos

EVALUATE_PAGE = "app_pages/evaluate.py"


def card(store, name: str) -> dict:
    return json.loads((store / f"{name}.json").read_text(encoding="utf-8"))


def test_comparison_table_has_every_model_and_measured_speed(app_env, make_app):
    app = make_app(EVALUATE_PAGE)
    assert not app.exception
    table = app.dataframe[0].value
    assert list(table["model"]) == ["quick-lenet", "quick-mlp"]
    for column in ("test accuracy", "test loss", "parameters", "file MB", "training s",
                   "inference ms", "correct", "incorrect"):
        assert table[column].notna().all(), column
    assert (table["inference ms"] > 0).all()
    mlp = card(app_env, "quick-mlp")
    row = table[table.model == "quick-mlp"].iloc[0]
    assert row["incorrect"] == mlp["test"]["incorrect"]
    assert "Learning curves" in [header.value for header in app.subheader]


def test_most_confused_cell_is_picked_first_and_cells_can_be_picked(app_env, make_app):
    app = make_app(EVALUATE_PAGE)
    assert app.selectbox(key="evaluate_model").value == "quick-mlp"  # the most accurate
    test = card(app_env, "quick-mlp")["test"]
    matrix = np.array(test["confusion"])
    np.fill_diagonal(matrix, 0)
    true, predicted = np.unravel_index(matrix.argmax(), matrix.shape)
    gallery_title = [h.value for h in app.subheader if h.value.startswith("True")]
    count = matrix[true, predicted]
    assert gallery_title == [f"True {true}, predicted {predicted}: {count} test image{'s' if count > 1 else ''}"]

    # Pick another off-diagonal cell with mistakes, as a click on the table would.
    matrix[true, predicted] = 0
    true, predicted = (int(v) for v in np.unravel_index(matrix.argmax(), matrix.shape))
    app.session_state["evaluate_confusion_quick-mlp"] = {"selection": {"cells": [[true, str(predicted)]]}}
    app.run()
    assert not app.exception
    expected = [m["index"] for m in test["mistakes"] if m["label"] == true and m["predicted"] == predicted]
    gallery = app.image[-1].captions  # the MNIST mistakes come last, after the UCI misreads
    assert [int(caption.split(":")[0][1:]) for caption in gallery] == expected[:60]


def test_a_cell_without_mistakes_says_so(app_env, make_app):
    app = make_app(EVALUATE_PAGE)
    matrix = np.array(card(app_env, "quick-mlp")["test"]["confusion"])
    true, predicted = next((t, p) for t in range(10) for p in range(10) if t != p and matrix[t, p] == 0)
    app.session_state["evaluate_confusion_quick-mlp"] = {"selection": {"cells": [[true, str(predicted)]]}}
    app.run()
    assert not app.exception
    assert f"quick-mlp read no test image of {true} as {predicted}." in "\n".join(s.value for s in app.success)
    assert not [h for h in app.subheader if h.value.startswith("True")]


def test_a_corrupt_model_is_flagged_and_missing_mnist_is_explained(app_env, make_app, tmp_path,
                                                                    monkeypatch):
    store = tmp_path / "store"
    copy_store(app_env, store)
    (store / "broken.json").write_text("[1, 2", encoding="utf-8")
    monkeypatch.setenv("DIGITLAB_MODELS", str(store))
    monkeypatch.setenv("DIGITLAB_MNIST", str(tmp_path / "missing.npz"))
    app = make_app(EVALUATE_PAGE)
    assert not app.exception
    assert "broken" in app.warning[0].value
    assert len(app.dataframe[0].value) == 2
    assert any("MNIST is not available on this server" in error.value for error in app.error)  # the gallery


def test_empty_store(app_env, make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_MODELS", str(tmp_path))
    app = make_app(EVALUATE_PAGE)
    assert not app.exception
    assert "No models yet" in app.info[0].value


def test_every_model_is_tested_on_handwriting_that_is_not_mnist(app_env, make_app):
    app = make_app(EVALUATE_PAGE)
    assert "On handwriting that is not MNIST" in [header.value for header in app.subheader]
    table = app.dataframe[1].value
    assert list(table["model"]) == ["quick-lenet", "quick-mlp"]
    assert table["UCI accuracy"].between(0.3, 1.0).all()  # tiny models, trained on 2,000 digits
    assert (table["UCI accuracy"] > table["UCI, squashed without preprocessing"]).all()
    app.selectbox(key="evaluate_uci_model").set_value("quick-mlp").run()
    assert not app.exception
    gallery = app.image[0]  # the UCI misreads come before the MNIST mistakes
    assert len(gallery.captions) > 0 and gallery.captions[0].startswith("#")
    assert any("of 1,797 misread" in caption.value for caption in app.caption)


def test_mnist_uci_and_hard_styles_side_by_side_with_each_models_misreads(app_env, make_app):
    app = make_app(EVALUATE_PAGE)
    table = app.dataframe[1].value
    assert {"MNIST test accuracy", "UCI accuracy", "hard-styles accuracy",
            "heavy-pen accuracy"} <= set(table.columns)
    assert table["hard-styles accuracy"].between(0.2, 1.0).all()  # tiny models, trained on 2,000 digits
    assert table["heavy-pen accuracy"].between(0.1, 1.0).all()
    app.selectbox(key="evaluate_uci_model").set_value("quick-lenet").run()
    app.radio(key="evaluate_other_set").set_value(app.radio(key="evaluate_other_set").options[1]).run()
    assert not app.exception
    assert any("Most misread styles" in block.value for block in app.markdown)
    assert any("of 1,080 misread" in caption.value for caption in app.caption)
    assert app.image[0].captions[0].startswith("#")
    heavy = app.radio(key="evaluate_other_set").options[2]
    assert "heavy pen" in heavy
    app.radio(key="evaluate_other_set").set_value(heavy).run()
    assert not app.exception and any("Most misread styles" in block.value for block in app.markdown)


def test_the_heavy_pen_is_also_scored_as_the_draw_page_reads_it(app_env, make_app):
    """The Draw page redraws a heavy drawing from its strokes: the page scores that too, and its
    gallery shows the redrawn inputs."""
    app = make_app(EVALUATE_PAGE)
    table = app.dataframe[1].value
    assert table["heavy pen, as the Draw page reads it"].between(0.1, 1.0).all()
    as_read = next(option for option in app.radio(key="evaluate_other_set").options if "Draw page reads" in option)
    app.radio(key="evaluate_other_set").set_value(as_read).run()
    assert not app.exception and any("Most misread styles" in block.value for block in app.markdown)


def test_mistakes_the_servers_test_set_lacks_are_counted_not_a_crash(app_env, make_app, tmp_path, monkeypatch,
                                                                     mnist):
    """A card scored on the full test set, a server with a shorter copy of it: the page says so."""
    test = card(app_env, "quick-mlp")["test"]
    matrix = np.array(test["confusion"])
    np.fill_diagonal(matrix, 0)
    true, predicted = np.unravel_index(matrix.argmax(), matrix.shape)
    indices = sorted(m["index"] for m in test["mistakes"] if m["label"] == true and m["predicted"] == predicted)
    keep = indices[len(indices) // 2] + 1 if len(indices) > 1 else indices[0]  # some in, some out of the copy
    short = tmp_path / "short.npz"
    np.savez(short, x_train=mnist.x_train[:100], y_train=mnist.y_train[:100], x_test=mnist.x_test[:keep],
             y_test=mnist.y_test[:keep])
    monkeypatch.setenv("DIGITLAB_MNIST", str(short))
    app = make_app(EVALUATE_PAGE)
    assert not app.exception
    missing = sum(index >= keep for index in indices[:60])
    assert any(text.startswith(f"{missing} of these are not in this server's MNIST test set") for text in
               [c.value for c in app.caption])


def test_photos_on_paper_sit_beside_the_other_sets_with_their_misreads_by_scene(app_env, make_app, monkeypatch):
    photos = len(digitlab.paper_photos.SCENES) * 20  # the page's handling of the set, not the set's figure
    monkeypatch.setattr(digitlab.paper_photos, "DIGITS", 20)
    monkeypatch.setattr(digitlab.paper_photos, "PHOTO_COUNT", photos)
    app = make_app(EVALUATE_PAGE)
    assert app.toggle(key="evaluate_photos").label.startswith(f"Also the {photos:,} paper photos")
    assert app.dataframe[1].value["paper-photos accuracy"].isna().all()  # built only when asked for
    app.toggle(key="evaluate_photos").set_value(True).run()
    table = app.dataframe[1].value
    assert table["paper-photos accuracy"].between(0.2, 1.0).all()  # tiny models, trained on 2,000 digits
    app.selectbox(key="evaluate_uci_model").set_value("quick-lenet").run()
    sets = app.radio(key="evaluate_other_set")
    sets.set_value(next(option for option in sets.options if option.startswith("paper photos"))).run()
    assert not app.exception
    [by_scene] = [block.value for block in app.markdown if "Read right, by scene" in block.value]
    assert all(scene in by_scene for scene in ("even", "deep shadow", "dim room", "corners", "squared paper"))
    assert any(f"of {photos:,} misread" in caption.value for caption in app.caption)


def test_the_shipped_models_averaged_get_their_own_row_and_misreads(app_env, make_app, tmp_path, monkeypatch):
    store = tmp_path / "store"
    copy_store(app_env, store)
    for quick, shipped in (("quick-mlp", "mlp"), ("quick-lenet", "lenet")):  # the same weights, shipped names
        shutil.copy(store / f"{quick}.json", store / f"{shipped}.json")
    monkeypatch.setenv("DIGITLAB_MODELS", str(store))
    app = make_app(EVALUATE_PAGE)
    assert not app.exception
    table = app.dataframe[1].value.set_index("model")
    assert list(table.index) == ["lenet", "mlp", "quick-lenet", "quick-mlp", "lenet+mlp (averaged)"]
    averaged = table.loc["lenet+mlp (averaged)"]
    for column in ("MNIST test accuracy", "UCI accuracy", "hard-styles accuracy"):
        assert min(table.loc["lenet", column], table.loc["mlp", column]) - 0.05 <= averaged[column] <= 1.0, column
    assert averaged["UCI accuracy"] != table.loc["lenet", "UCI accuracy"]  # measured, not copied from a member
    app.selectbox(key="evaluate_uci_model").set_value("lenet+mlp").run()
    assert not app.exception and any("of 1,797 misread" in caption.value for caption in app.caption)
