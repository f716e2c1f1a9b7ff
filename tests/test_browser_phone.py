"""The Draw page on a phone, in real Chromium: a finger draws, the page stays put, the answer shows.

The context emulates a 390×844 phone screen (touch, a mobile viewport, 3× pixels); strokes are
real touch events sent through the DevTools protocol, as a finger's would be.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import BROWSER_MARKS, chromium, draw_page, streamlit_server

FIRST_ANSWER_TIMEOUT = 120_000  # ms: the first stroke of a session loads TensorFlow and the model
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def server(app_models: Path, mnist_path: Path) -> str:
    with streamlit_server(app_models, mnist_path) as url:
        yield url


@pytest.fixture()
def phone(server):
    with chromium() as browser, draw_page(browser, server, **PHONE) as page:
        yield page


def finger_stroke(page, points: list[tuple[float, float]]) -> None:
    """One touch from the first point to the last (screen px from the pad's corner), as a finger on a
    touch screen."""
    box = page.locator("canvas").first.bounding_box()
    session = page.context.new_cdp_session(page)

    def touch(kind: str, x: float, y: float) -> None:
        touches = [] if kind == "touchEnd" else [{"x": box["x"] + x, "y": box["y"] + y, "id": 1}]
        session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touches})

    touch("touchStart", *points[0])
    for point in points[1:]:
        touch("touchMove", *point)
    touch("touchEnd", *points[-1])
    session.detach()


def scroll_y(page) -> float:
    return page.evaluate("() => window.scrollY + (document.querySelector('[data-testid=stMain]')?.scrollTop || 0)")


def test_a_finger_draws_a_one_and_the_answer_is_on_screen_with_the_pad(phone):
    from playwright.sync_api import expect

    pad = phone.locator("canvas").first
    pad_box = pad.bounding_box()
    assert pad_box["x"] >= 0 and pad_box["x"] + pad_box["width"] <= 390, "the pad fits the phone's width"
    assert pad_box["width"] >= 350 and pad_box["height"] == pad_box["width"], "a square pad as wide as the screen"
    before = scroll_y(phone)
    finger_stroke(phone, [(140, 40 + 8 * step) for step in range(26)])
    metric = phone.get_by_test_id("stMetric").filter(has=phone.get_by_text("Prediction", exact=True))
    expect(metric.get_by_test_id("stMetricValue")).to_have_text("1", timeout=FIRST_ANSWER_TIMEOUT)
    assert scroll_y(phone) == before, "drawing with a finger does not scroll the page"
    answer_box = metric.bounding_box()
    assert answer_box["y"] >= 0 and answer_box["y"] + answer_box["height"] <= 844, \
        f"the answer is on screen without scrolling (it is at y={answer_box['y']:.0f})"
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390, "nothing sticks out sideways"
    wrong_seven = phone.locator(".st-key-your_wrong_7 button")
    expect(wrong_seven).to_be_visible()
    box = wrong_seven.bounding_box()
    assert box["width"] >= 40 and box["height"] >= 40, "the label digits are finger-sized"
    assert not phone.locator("[data-testid=stMain] button kbd").first.is_visible(), "no keyboard hints on a phone"


def test_a_tap_on_clear_right_after_the_answer_clears_the_pad_every_time(phone):
    from playwright.sync_api import expect

    metric = phone.get_by_test_id("stMetric").filter(has=phone.get_by_text("Prediction", exact=True))
    clear = phone.get_by_role("button", name="Clear the drawing")
    for _ in range(6):  # before, Chromium made no click of about half of such taps
        finger_stroke(phone, [(140, 40 + 8 * step) for step in range(26)])
        expect(metric.get_by_test_id("stMetricValue")).to_have_text("1", timeout=FIRST_ANSWER_TIMEOUT)
        clear.tap()
        expect(clear).to_be_disabled(timeout=2_000)  # an empty pad has nothing to clear
        expect(metric).to_have_count(0, timeout=30_000)
