"""Labelling in real headless Chromium: draw, say what it really is, find it in the gallery and on Evaluate.

A tiny model trained on UCI digits and no MNIST: what it answers does not matter, the label does.
"""

from __future__ import annotations

import pytest
from browser_support import BROWSER_MARKS, chromium, draw_page, streamlit_server
from handwriting_support import store_tiny_model

from digitlab.digits_db import DigitsDb

FIRST_ANSWER_TIMEOUT = 120_000  # ms: the session's first run loads TensorFlow and the model
TIMEOUT = 60_000  # ms: a guard against a hang, not a speed check

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return store_tiny_model(tmp_path_factory.mktemp("browser-labelling"))


@pytest.fixture(scope="module")
def page(store, tmp_path_factory):
    no_mnist = tmp_path_factory.mktemp("no-mnist") / "mnist.npz"
    with streamlit_server(store, no_mnist) as url, chromium() as browser, draw_page(browser, url) as page:
        yield page


def draw_seven(page) -> None:
    """A 7 in two strokes across the pad, as a person draws it with the mouse."""
    box = page.locator("canvas").first.bounding_box()
    top = [(60 + 8 * step, 50) for step in range(20)]
    for stroke in (top + [(210 - 5 * step, 50 + 10 * step) for step in range(21)],):
        page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.up()


def test_a_labelled_drawing_appears_in_the_gallery_and_on_the_evaluate_page(page, store):
    from playwright.sync_api import expect

    draw_seven(page)
    prediction = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Prediction", exact=True))
    expect(prediction).to_have_count(1, timeout=FIRST_ANSWER_TIMEOUT)
    page.locator(".st-key-your_wrong_7 button").first.click()  # the "Wrong — it's a 7" button, by its key
    expect(page.get_by_text("Saved as a 7: 1 of your 7s so far.")).to_be_visible(timeout=TIMEOUT)
    [stored] = DigitsDb(store / "digits.sqlite").digits("me")
    assert stored.label == 7 and stored.answers[0].model == "tiny"

    page.get_by_text("Your digits: the gallery and counts per digit").click()
    expect(page.get_by_text("1 × 7")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_test_id("stImage").filter(has_text="a 7")).to_have_count(1, timeout=TIMEOUT)

    page.get_by_role("link", name="Evaluate").click()
    expect(page.get_by_role("heading", name="Your digits")).to_be_visible(timeout=FIRST_ANSWER_TIMEOUT)
    table = page.get_by_test_id("stDataFrame").first
    expect(table).to_be_visible(timeout=TIMEOUT)
    said = stored.answers[0].digit
    if said != 7:  # the tiny model misread it: the misread gallery names what it said
        expect(page.get_by_text(f"a 7: tiny {said}")).to_be_visible(timeout=TIMEOUT)
    else:
        expect(page.get_by_text("Every model reads all of your digits correctly.")).to_be_visible(timeout=TIMEOUT)


def test_after_typing_a_writer_a_stroke_hands_the_keys_back_and_a_refused_name_is_not_kept(page, store):
    from playwright.sync_api import expect

    page.get_by_role("link", name="Draw").click()
    writer = page.locator(".st-key-your_writer_pick input")
    writer.wait_for(timeout=FIRST_ANSWER_TIMEOUT)
    writer.click()
    writer.fill("ada")
    writer.press("Enter")
    expect(writer).to_have_value("ada", timeout=TIMEOUT)
    draw_seven(page)  # the focus was in the writer's box: the stroke takes it
    expect(page.locator(".st-key-your_right")).to_have_count(1, timeout=FIRST_ANSWER_TIMEOUT)
    page.keyboard.press("7")
    expect(page.get_by_text("Saved as a 7: 1 of ada's 7s so far.")).to_be_visible(timeout=TIMEOUT)

    writer.click()
    writer.fill("x" * 45)  # over the 40 characters a name may have
    writer.press("Enter")
    expect(page.get_by_text("labels still go to 'ada'")).to_be_visible(timeout=TIMEOUT)
    expect(writer).to_have_value("ada", timeout=TIMEOUT)  # the box shows whom the labels go to
    assert DigitsDb(store / "digits.sqlite").counts().keys() == {"me", "ada"}


def test_a_writer_typed_in_another_case_goes_on_as_the_writer_already_known(page, store):
    from playwright.sync_api import expect

    writer = page.locator(".st-key-your_writer_pick input")
    writer.click()
    writer.fill("ADA")
    writer.press("Enter")
    expect(writer).to_have_value("ada", timeout=TIMEOUT)
    draw_seven(page)
    expect(page.locator(".st-key-your_right")).to_have_count(1, timeout=FIRST_ANSWER_TIMEOUT)
    page.keyboard.press("7")
    expect(page.get_by_text("Saved as a 7: 2 of ada's 7s so far.")).to_be_visible(timeout=TIMEOUT)
    assert DigitsDb(store / "digits.sqlite").counts()["ada"][7] == 2
