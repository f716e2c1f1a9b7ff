"""The Train page in real headless Chromium: a run from the page, live curves, stop and discard.

One ``streamlit run`` server on a free port over an empty model store: the Draw page's picker
appears only once the page's run has stored a model. The page is never reloaded while a run goes
on: what changes on screen comes from the fragment that refreshes itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_support import BROWSER_MARKS, chromium, streamlit_server

from digitlab.jobs.queue import is_queue_file

PAGE_TIMEOUT = 120_000  # ms: the first run of a session imports TensorFlow
RUN_TIMEOUT = 300_000  # ms: a child process imports TensorFlow, trains, evaluates, saves
PROGRESS = re.compile(r"batch \d+/\d+ of epoch \d+/\d+ — ETA")

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train-browser-models")


@pytest.fixture(scope="module")
def server(store: Path, mnist_path: Path) -> str:
    """``streamlit run streamlit_app.py`` on a free port over ``store``."""
    with streamlit_server(store, mnist_path) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect

    expect.set_options(timeout=PAGE_TIMEOUT)
    with chromium() as browser:
        yield browser


@pytest.fixture()
def page(browser, server):
    """A fresh session on the Train page."""
    context = browser.new_context(viewport={"width": 1300, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT)
    page.goto(f"{server}/train")
    page.get_by_role("button", name="Start training").wait_for()
    yield page
    context.close()


def start_run(page, name: str, epochs: int, images: int) -> None:
    page.get_by_role("textbox", name="Epochs").fill(str(epochs))
    page.get_by_role("textbox", name="Training-set size").fill(str(images))
    page.get_by_role("textbox", name="Model name").fill(name)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(f"Queued '{name}': number ").wait_for()


def charts(page):
    return page.get_by_test_id("stVegaLiteChart")


def model_files(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in folder.iterdir() if not is_queue_file(path.name)}


def test_a_run_from_the_page_grows_its_chart_and_reaches_the_draw_picker(page, store):
    from playwright.sync_api import expect

    start_run(page, "browser-run", epochs=2, images=3000)
    expect(page.get_by_text("The curves appear when the first epoch finishes.")).to_be_visible()
    expect(charts(page)).to_have_count(0)
    page.get_by_text(PROGRESS).wait_for(timeout=RUN_TIMEOUT)  # the bar counts batches, no reload
    page.get_by_text("Epoch 2/2 finished").wait_for(timeout=RUN_TIMEOUT)
    expect(charts(page)).to_have_count(2)  # loss and accuracy
    page.get_by_text("is in the store with").wait_for(timeout=RUN_TIMEOUT)
    assert (store / "browser-run.json").exists()
    expect(page.get_by_test_id("stDataFrame")).to_have_count(2)  # the queue, and its test results

    page.get_by_role("link", name="Draw").click()
    page.get_by_role("combobox", name="Model").click()
    options = page.get_by_role("option").all_inner_texts()
    assert any(option.startswith("browser-run — mlp") for option in options), options


def test_a_stopped_and_discarded_run_leaves_the_store_unchanged(page, store):
    from playwright.sync_api import expect

    before = model_files(store)
    start_run(page, "stop-me", epochs=100, images=1000)
    page.get_by_text(PROGRESS).wait_for(timeout=RUN_TIMEOUT)
    page.get_by_role("button", name="Stop and discard").click()
    page.get_by_text("Stopped and discarded").wait_for(timeout=RUN_TIMEOUT)
    assert model_files(store) == before
    page.reload()  # a new session, with the owner token kept in the address: shown its last run
    expect(page.get_by_role("heading", name="Run: stop-me")).to_be_visible()
    expect(page.get_by_text("Stopped and discarded")).to_be_visible()
