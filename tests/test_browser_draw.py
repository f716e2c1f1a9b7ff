"""The Draw page in real headless Chromium: draw with the mouse, see the models answer.

One ``streamlit run`` server per module (a subprocess on a free port) and one browser; each test
gets a fresh page, which is a fresh Streamlit session. Run with ``pytest -m browser -s`` to see
the measured mouse-up → answer latencies.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import pytest
from browser_support import BROWSER_MARKS, chromium, draw_page, streamlit_server
from PIL import Image
from strokes_support import narrow_eight

FIRST_ANSWER_TIMEOUT = 120_000  # ms: the first run of a session loads TensorFlow and the model
ANSWER_TIMEOUT = 60_000  # ms: a guard against a hang, not a speed check (the bench times answers)

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(app_models: Path, mnist_path: Path) -> str:
    """``streamlit run streamlit_app.py`` on a free port, with the session's quick models."""
    with streamlit_server(app_models, mnist_path) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture()
def page(browser, server):
    """A fresh session on the Draw page, its canvas ready."""
    with draw_page(browser, server) as page:
        yield page


def prediction(page):
    """The value of the metric labelled Prediction."""
    card = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Prediction", exact=True))
    return card.get_by_test_id("stMetricValue")


def stroke(page, points: list[tuple[float, float]]) -> float:
    """Draw through ``points`` (canvas pixels, 0–280); returns the time of mouse-up."""
    box = page.locator("canvas").first.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y)
    page.mouse.up()
    return time.perf_counter()


def answer_after(page, released: float, expected: str, timeout: int) -> float:
    """Wait for Prediction to read ``expected``; returns the seconds since mouse-up."""
    from playwright.sync_api import expect

    expect(prediction(page)).to_have_text(expected, timeout=timeout)
    return time.perf_counter() - released


def vertical_line() -> list[tuple[float, float]]:
    return [(140, 40 + 8 * step) for step in range(26)]


def loop() -> list[tuple[float, float]]:
    return [(140 + 70 * math.sin(2 * math.pi * step / 40), 140 - 100 * math.cos(2 * math.pi * step / 40))
            for step in range(42)]


def test_a_vertical_stroke_is_a_one(page):
    latency = answer_after(page, stroke(page, vertical_line()), "1", FIRST_ANSWER_TIMEOUT)
    print(f"\nfirst stroke of a session: mouse-up → Prediction 1 in {latency * 1000:.0f} ms")
    clear(page)
    latency = answer_after(page, stroke(page, vertical_line()), "1", ANSWER_TIMEOUT)
    print(f"warm stroke: mouse-up → Prediction 1 in {latency * 1000:.0f} ms")


def clear(page) -> None:
    page.get_by_role("button", name="Clear the drawing").click()
    from playwright.sync_api import expect

    page.get_by_text("Draw a digit in the black square").wait_for(timeout=ANSWER_TIMEOUT)
    expect(prediction(page)).to_have_count(0, timeout=ANSWER_TIMEOUT)


def ink(page) -> int:
    """How many pixels of the pad are not black, read from the canvas itself."""
    return page.locator("canvas").first.evaluate(
        """canvas => { const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                       let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")


def wait_for_ink(page, timeout: float = ANSWER_TIMEOUT / 1000) -> int:
    """The pad's ink once there is some (a restored picture is painted when it has loaded)."""
    deadline = time.perf_counter() + timeout
    while (count := ink(page)) == 0 and time.perf_counter() < deadline:
        page.wait_for_timeout(50)
    return count


def test_undo_takes_back_the_last_stroke(page):
    answer_after(page, stroke(page, vertical_line()), "1", FIRST_ANSWER_TIMEOUT)
    one = ink(page)
    answer_after(page, stroke(page, [(60 + 5 * step, 45) for step in range(17)]), "7", ANSWER_TIMEOUT)
    assert ink(page) > one
    page.get_by_role("button", name="Undo the last stroke").click()
    answer_after(page, time.perf_counter(), "1", ANSWER_TIMEOUT)
    assert ink(page) == one
    page.get_by_role("button", name="Undo the last stroke").click()
    page.get_by_text("Draw a digit in the black square").wait_for(timeout=ANSWER_TIMEOUT)
    assert ink(page) == 0


def test_the_drawing_is_still_there_after_visiting_another_input(page):
    answer_after(page, stroke(page, vertical_line()), "1", FIRST_ANSWER_TIMEOUT)
    page.get_by_role("radio", name="Upload").click()
    page.get_by_text("Upload a picture to see").wait_for(timeout=ANSWER_TIMEOUT)
    page.get_by_role("radio", name="Draw").click()
    answer_after(page, time.perf_counter(), "1", ANSWER_TIMEOUT)
    assert wait_for_ink(page) > 0  # the pad shows the picture the answer is about


def test_a_small_eight_with_the_widest_brush_is_read_from_its_strokes_which_a_fresh_pad_keeps(page):
    from playwright.sync_api import expect

    brush = page.get_by_role("slider").first
    brush.focus()
    page.keyboard.press("End")
    expect(brush).to_have_attribute("aria-valuetext", "40", timeout=ANSWER_TIMEOUT)
    page.wait_for_timeout(500)  # the rerun hands the pad its new brush
    for stroke_message in narrow_eight(width=40):
        flat = stroke_message["points"]
        stroke(page, list(zip(flat[::2], flat[1::2], strict=True)))
    redrawn = page.get_by_text("read your strokes redrawn with MNIST's pen")
    redrawn.wait_for(timeout=FIRST_ANSWER_TIMEOUT)
    both = ink(page)
    page.get_by_role("radio", name="Upload").click()
    page.get_by_text("Upload a picture to see").wait_for(timeout=ANSWER_TIMEOUT)
    page.get_by_role("radio", name="Draw").click()
    redrawn.wait_for(timeout=ANSWER_TIMEOUT)
    assert wait_for_ink(page) == pytest.approx(both, rel=0.01)  # repainted from its strokes (to 0.1 px)
    page.get_by_role("button", name="Undo the last stroke").click()  # the strokes came back, not a bare picture
    assert 0.3 * both < ink(page) < 0.7 * both  # one loop of the two is left


def test_a_loop_is_a_zero(page):
    latency = answer_after(page, stroke(page, loop()), "0", FIRST_ANSWER_TIMEOUT)
    print(f"\nloop: mouse-up → Prediction 0 in {latency * 1000:.0f} ms")


def test_compare_shows_a_column_per_model(page):
    answer_after(page, stroke(page, vertical_line()), "1", FIRST_ANSWER_TIMEOUT)
    page.get_by_text("Compare all models").click()
    page.get_by_text("Every model on the same picture").wait_for(timeout=ANSWER_TIMEOUT)
    for name in ("quick-mlp", "quick-lenet"):
        page.get_by_test_id("stMetric").filter(has=page.get_by_text(f"{name} says")).wait_for(
            timeout=ANSWER_TIMEOUT)
    assert page.get_by_test_id("stMetric").filter(has_text=" says").count() == 2


def test_an_uploaded_png_is_predicted(page, mnist):
    image, label = mnist.x_test[0], int(mnist.y_test[0])
    buffer = io.BytesIO()
    Image.fromarray(255 - image).resize((240, 240)).save(buffer, format="PNG")  # dark ink on white
    page.get_by_role("radio", name="Upload").click()
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "digit.png", "mimeType": "image/png", "buffer": buffer.getvalue()}])
    answer_after(page, time.perf_counter(), str(label), FIRST_ANSWER_TIMEOUT)


def test_look_inside_shows_the_steps_and_the_saliency_of_the_drawing(page):
    answer_after(page, stroke(page, vertical_line()), "1", FIRST_ANSWER_TIMEOUT)
    inputs = page.get_by_test_id("stImage").filter(has_text="its 28×28 input")
    inputs.locator("img").wait_for(timeout=ANSWER_TIMEOUT)  # it may arrive just after the Prediction
    assert inputs.count() == 1 and inputs.locator("img").evaluate("img => img.naturalWidth") == 84
    assert page.get_by_text("What the model sees").count() == 0  # the details wait for the toggle
    page.get_by_text("Look inside", exact=False).first.click()
    page.get_by_text("What the model sees").wait_for(timeout=ANSWER_TIMEOUT)
    steps = page.get_by_test_id("stImage").filter(has_text="1 · your picture")
    steps.locator("img").wait_for(timeout=ANSWER_TIMEOUT)
    assert steps.locator("img").evaluate("img => img.complete && img.naturalWidth >= 4 * 112")  # one strip
    page.get_by_test_id("stImage").filter(has_text="Pixels that pushed quick-").wait_for(timeout=ANSWER_TIMEOUT)
    answer_after(page, stroke(page, [(60 + 5 * step, 45) for step in range(17)]), "7", ANSWER_TIMEOUT)
    page.get_by_text("towards 7").wait_for(timeout=ANSWER_TIMEOUT)  # the details follow the drawing
    assert not page.locator('[data-testid="stException"]').count()
