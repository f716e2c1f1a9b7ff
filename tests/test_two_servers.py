"""Two app servers, one store: two ``streamlit run`` processes on different ports over one model
store and one queue, in real headless Chromium. A run started on one shows on the other (with who
started it, and no Stop for a visitor who did not), and the model it trains appears in both Draw
pickers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from browser_support import BROWSER_MARKS, SERVER_START_TIMEOUT, chromium

from bench.browser import AppServer

PAGE_TIMEOUT = 120_000  # ms: a session's first run imports TensorFlow
RUN_TIMEOUT = 300_000  # ms: a child imports TensorFlow, trains, evaluates, saves (two servers share 2 cores)

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def servers(tmp_path_factory, mnist_path: Path):
    """Two servers on two free ports over the same (empty) store; both stopped after."""
    store = tmp_path_factory.mktemp("shared-store")
    with contextlib.ExitStack() as stack:
        pair = [stack.enter_context(AppServer(store, str(mnist_path))) for _ in range(2)]
        for server in pair:
            server.wait_healthy(timeout=SERVER_START_TIMEOUT * 2)
        yield [server.url.rstrip("/") for server in pair], store


def open_page(browser, url: str):
    page = browser.new_context(viewport={"width": 1300, "height": 1400}).new_page()
    page.set_default_timeout(PAGE_TIMEOUT)
    page.goto(url)
    return page


def model_options(page) -> list[str]:
    page.get_by_role("combobox", name="Model").click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return options


def test_a_run_started_on_one_server_shows_on_the_other_and_its_model_in_both_pickers(servers):
    from playwright.sync_api import expect

    (first_url, second_url), store = servers
    expect.set_options(timeout=PAGE_TIMEOUT)
    with chromium() as browser:
        first = open_page(browser, f"{first_url}/train")
        first.get_by_role("textbox", name="Epochs").fill("1")
        first.get_by_role("textbox", name="Training-set size").fill("1000")
        first.get_by_role("textbox", name="Model name").fill("shared-run")
        first.get_by_role("button", name="Start training").click()
        first.get_by_text("Queued 'shared-run': number ").wait_for()

        second = open_page(browser, f"{second_url}/train")
        expect(second.get_by_role("heading", name="Run: shared-run")).to_be_visible()
        expect(second.get_by_text("Only visitor ")).to_be_visible()  # someone else's run: no Stop here
        expect(second.get_by_role("button", name="Stop and discard")).to_have_count(0)
        second.get_by_text("is in the store with").wait_for(timeout=RUN_TIMEOUT)  # followed on the other server
        assert (store / "shared-run.json").exists()

        for page in (second, first):
            page.get_by_role("link", name="Draw").click()
            options = model_options(page)
            assert any(option.startswith("shared-run — mlp") for option in options), options
