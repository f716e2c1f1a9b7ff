"""Look inside in real headless Chromium: draw a digit, open the layer view and the robustness probe."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import BROWSER_MARKS, chromium, draw_page, streamlit_server
from test_browser_draw import ANSWER_TIMEOUT, FIRST_ANSWER_TIMEOUT, answer_after, stroke, vertical_line

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def page(app_models: Path, mnist_path: Path):
    with streamlit_server(app_models, mnist_path) as url, chromium() as browser, draw_page(browser, url) as page:
        yield page


def test_layer_view_and_probe_open_on_a_drawn_digit(page):
    answer_after(page, stroke(page, vertical_line()), "1", FIRST_ANSWER_TIMEOUT)
    page.get_by_text("Look inside", exact=False).first.click()
    page.get_by_text("What the model sees").wait_for(timeout=ANSWER_TIMEOUT)
    assert page.get_by_text("First layer's").count() == 0  # the layer view waits for its own switch
    page.get_by_text("Layers: every layer's output").click()
    page.get_by_text("First layer's weight templates").wait_for(timeout=ANSWER_TIMEOUT)  # quick-mlp's
    templates = page.get_by_test_id("stImage").locator("img")
    assert templates.count() >= 1
    page.get_by_text("Robustness probe").click()
    page.get_by_text("what centring protects a model from", exact=False).wait_for(timeout=ANSWER_TIMEOUT)
    page.get_by_test_id("stVegaLiteChart").last.wait_for(timeout=ANSWER_TIMEOUT)
    assert not page.locator('[data-testid="stException"]').count()


def test_clicking_a_feature_map_enlarges_it(page):
    """In Compare mode the convnet's layers are shown too; a click on its third map enlarges that one."""
    page.get_by_text("Compare all models").click()
    grid = page.locator(".st-key-inside_map_quick-lenet_conv1_grid")
    grid.wait_for(timeout=ANSWER_TIMEOUT)
    page.get_by_text("map 1", exact=True).first.wait_for(timeout=ANSWER_TIMEOUT)
    cell = 42  # MAP_CELL + 2 px between maps
    grid.click(position={"x": 2.5 * cell, "y": 0.5 * cell})  # the third map of the first row
    page.get_by_text("map 3", exact=True).wait_for(timeout=ANSWER_TIMEOUT)
    assert not page.locator('[data-testid="stException"]').count()


def test_compare_mode_keeps_each_models_layers_inside_its_own_column(page):
    """Beside two other models, a model's feature maps and their enlargement fit its column (they
    used to spill over the next model's layers on a 1,280 px screen)."""
    page.set_viewport_size({"width": 1280, "height": 900})
    grid = page.locator(".st-key-inside_map_quick-lenet_conv1_grid")
    grid.wait_for(timeout=ANSWER_TIMEOUT)
    page.wait_for_timeout(1000)  # the charts take the new width
    column = page.get_by_test_id("stColumn").filter(has=grid).last  # the innermost: lenet's own
    right = column.bounding_box()["x"] + column.bounding_box()["width"]
    pictures = column.locator("img, canvas")
    assert pictures.count() >= 2
    overflow = [box["x"] + box["width"] - right for box in
                (pictures.nth(index).bounding_box() for index in range(pictures.count())) if box]
    assert max(overflow) <= 1, f"a picture reaches {max(overflow):.0f} px past lenet's column"
