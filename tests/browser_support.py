"""What the real-browser tests share: a `streamlit run` server on a free port and headless Chromium."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.browser import AppServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SERVER_START_TIMEOUT = 120  # seconds
ASSERT_TIMEOUT = 30_000  # ms: Playwright's `expect` waits 5 s unless told

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]


def browser_test(test):
    """Every mark of ``BROWSER_MARKS`` on one test, for a browser test in a module of other tests."""
    for mark in BROWSER_MARKS:
        test = mark(test)
    return test


@contextlib.contextmanager
def streamlit_server(models_dir: Path, mnist_path: Path) -> Iterator[str]:
    """``streamlit run streamlit_app.py`` over ``models_dir`` (the benchmark's own
    :class:`~bench.browser.AppServer`); yields its URL, stops it after: a training run
    still going sees its stdin close, stops and discards."""
    with AppServer(models_dir, str(mnist_path)) as server:
        server.wait_healthy(timeout=SERVER_START_TIMEOUT)
        yield server.url.rstrip("/")


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (its own browser download does not work offline)."""
    from playwright.sync_api import expect, sync_playwright

    # An assertion's wait guards against a hang, not a slow answer (the bench times answers): the
    # suite runs two test files at once, so a page may wait on a core busy with a training.
    expect.set_options(timeout=ASSERT_TIMEOUT)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


DESKTOP = {"viewport": {"width": 1400, "height": 1000}}
PAGE_READY_TIMEOUT = 120_000  # ms: a session's first run loads TensorFlow and the model


@contextlib.contextmanager
def draw_page(browser, url: str, **context_options) -> Iterator[object]:
    """A fresh session (a new browser context) on the Draw page, its pad ready to draw on."""
    context = browser.new_context(**(context_options or DESKTOP))
    page = context.new_page()
    page.goto(url)
    page.locator("canvas").first.wait_for(timeout=PAGE_READY_TIMEOUT)
    try:
        yield page
    finally:
        context.close()
