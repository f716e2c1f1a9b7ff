"""The app benchmark: cold start, memory and mouse-up → Prediction in real Chromium.

A fresh ``streamlit run streamlit_app.py`` is started on a free port against a given model store.
Chromium (Playwright) opens the Draw page, draws on the canvas with the mouse, and a script in the
page notes the time of the mouse-up and of the moment a current (not stale) ``st.metric``
labelled "Prediction" is in the page. The canvas is cleared between strokes, so the Prediction
that appears after a stroke is always the answer to that stroke.

Playwright and psutil are imported late: they are needed only here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.inference import percentiles

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_FILE = "streamlit_app.py"
CHROMIUM_ENV_VAR = "DIGITLAB_CHROMIUM"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")
VIEWPORT = {"width": 1400, "height": 1000}
MIN_CANVAS_SIDE = 150  # px: the drawing canvas, not a chart
PREDICTION_TIMEOUT_MS = 10_000
SETTLE_TIMEOUT_MS = 120_000  # after the Prediction: the rest of the page (charts, saliency)
QUIET_MS = 600  # no DOM change for this long: the page has settled
CLEAR_BUTTON = "Clear the drawing"
COMPARE_SWITCH = "Compare all models"
# Single-stroke digits, in fractions of the drawing pad.
STROKES = (
    ((0.50, 0.15), (0.50, 0.85)),  # 1
    ((0.25, 0.20), (0.70, 0.20), (0.40, 0.85)),  # 7
    ((0.28, 0.30), (0.50, 0.15), (0.70, 0.30), (0.30, 0.85), (0.75, 0.85)),  # 2
    ((0.30, 0.20), (0.70, 0.22), (0.45, 0.48), (0.72, 0.65), (0.50, 0.85), (0.28, 0.80)),  # 3
)
# Installed once per page: records mouse-up, the first current Prediction after it and the last DOM
# change, and lets the bench wait for a condition or for a quiet page without polling it.
TIMING_SCRIPT = """() => {
  if (window.__digitlabBench) return;
  const ready = () => {
    for (const metric of document.querySelectorAll('[data-testid="stMetric"]')) {
      const label = metric.querySelector('[data-testid="stMetricLabel"]');
      const value = metric.querySelector('[data-testid="stMetricValue"]');
      const holder = metric.closest('[data-stale]');
      if (label && label.innerText.trim() === 'Prediction' && value && value.innerText.trim() !== ''
          && !(holder && holder.getAttribute('data-stale') === 'true')) return true;
    }
    return false;
  };
  const waiters = new Set();
  const state = window.__digitlabBench = {up: null, shown: null, changed: performance.now(), ready};
  // Resolves true once test() holds (checked now and after every DOM change), false after timeoutMs.
  state.until = (test, timeoutMs) => new Promise((resolve) => {
    if (test()) return resolve(true);
    const waiter = {test, resolve};
    waiter.timer = setTimeout(() => { waiters.delete(waiter); resolve(false); }, timeoutMs);
    waiters.add(waiter);
  });
  // Resolves true once the DOM has not changed for quietMs, false after timeoutMs; it sleeps
  // until the page would next be quiet instead of polling.
  state.quiet = (quietMs, timeoutMs) => new Promise((resolve) => {
    const deadline = performance.now() + timeoutMs;
    const check = () => {
      const now = performance.now(), still = now - state.changed;
      if (still >= quietMs) return resolve(true);
      if (now >= deadline) return resolve(false);
      setTimeout(check, Math.min(quietMs - still, deadline - now) + 1);
    };
    check();
  });
  document.addEventListener('pointerup', () => { state.up = performance.now(); state.shown = null; }, true);
  new MutationObserver(() => {
    const now = performance.now();
    state.changed = now;
    if (state.up !== null && state.shown === null && ready()) state.shown = now;
    for (const waiter of [...waiters]) {
      if (waiter.test()) { waiters.delete(waiter); clearTimeout(waiter.timer); waiter.resolve(true); }
    }
  }).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}"""
ERROR_SELECTOR = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def chromium_executable() -> str | None:
    """``$DIGITLAB_CHROMIUM``, else None when Playwright has its own Chromium, else a system one."""
    configured = os.environ.get(CHROMIUM_ENV_VAR)
    if configured:
        return configured
    cache = Path(os.environ.get("PLAYWRIGHT_BROWSERS_PATH", Path.home() / ".cache" / "ms-playwright"))
    if any(cache.glob("chromium*")):
        return None
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise RuntimeError(f"no Chromium found: run `playwright install chromium` or set {CHROMIUM_ENV_VAR}")


async def launch_browser(playwright):
    """Headless Chromium (system binary when Playwright's own is not installed)."""
    return await playwright.chromium.launch(executable_path=chromium_executable(), args=["--no-sandbox"])


class AppServer:
    """``streamlit run streamlit_app.py`` on a free port, against a model store; a context manager."""

    def __init__(self, models_dir: str | os.PathLike, data_path: str | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, "DIGITLAB_MODELS": str(models_dir), "TF_CPP_MIN_LOG_LEVEL": "2"}
        if data_path:
            self.env["DIGITLAB_MNIST"] = str(data_path)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def __enter__(self) -> AppServer:
        command = [sys.executable, "-m", "streamlit", "run", APP_FILE, "--server.port", str(self.port),
                   "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def since_start(self) -> float:
        return time.perf_counter() - self.started

    def wait_healthy(self, timeout: float = 120.0) -> float:
        """Seconds from spawn until ``/_stcore/health`` answers ok."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited (code {self.process.returncode}): {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "_stcore/health", timeout=2) as answer:
                    if answer.read().strip() == b"ok":
                        return self.since_start()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the app did not answer within {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, limit: int = 400) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-limit:].strip()

    def rss_bytes(self) -> int:
        """Resident memory of the server and its child processes."""
        import psutil

        root = psutil.Process(self.process.pid)
        total = 0
        for process in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):  # a child that ended meanwhile
                total += process.memory_info().rss
        return total


# -- one page ----------------------------------------------------------------------------------
async def open_draw_page(context, url: str, timeout_ms: float = 120_000):
    """Open the Draw page; returns (page, canvas box) once the canvas can be drawn on."""
    page = await context.new_page()
    await page.goto(url, timeout=timeout_ms)
    canvas = page.locator("canvas").first
    await canvas.wait_for(state="visible", timeout=timeout_ms)
    box = await canvas.bounding_box()
    if not box or min(box["width"], box["height"]) < MIN_CANVAS_SIDE:
        raise RuntimeError(f"the first canvas on the page is not the drawing canvas ({box})")
    await page.evaluate(TIMING_SCRIPT)
    return page, box


async def draw(page, box: dict[str, float], stroke, steps: int = 6) -> None:
    """Draw one stroke (canvas fractions) with the mouse, ending in a mouse-up."""
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]
    await page.mouse.move(*points[0])
    await page.mouse.down()
    for point in points[1:]:
        await page.mouse.move(*point, steps=steps)
    await page.mouse.up()


async def wait_until(page, condition: str, timeout_ms: float, failure: str) -> None:
    """Wait until the JavaScript ``condition`` holds in the page; the timeout says what did not happen.

    The page checks it after each DOM change (``TIMING_SCRIPT``), so nothing polls. Polling every
    50 ms cost Chromium about a tenth of its CPU per answer (670 → 595 ms in one session), CPU
    that the load benchmark's browsers take from the server's own cores.
    """
    if not await page.evaluate(f"(timeout) => window.__digitlabBench.until(() => {condition}, timeout)", timeout_ms):
        raise TimeoutError(f"{failure} within {timeout_ms / 1000:g} s")


async def time_stroke(page, box: dict[str, float], stroke, timeout_ms: float = PREDICTION_TIMEOUT_MS) -> dict:
    """Draw a stroke on a cleared canvas; ms from mouse-up to Prediction, and to a settled page."""
    await draw(page, box, stroke)
    await wait_until(page, "window.__digitlabBench.shown !== null", timeout_ms, "no Prediction after the mouse-up")
    await settle(page)
    state = await page.evaluate("({up: window.__digitlabBench.up, shown: window.__digitlabBench.shown,"
                                " changed: window.__digitlabBench.changed})")
    return {"prediction": state["shown"] - state["up"], "settled": state["changed"] - state["up"]}


async def clear_canvas(page, timeout_ms: float = PREDICTION_TIMEOUT_MS) -> None:
    """Press the pad's Clear button and wait until no Prediction is shown."""
    await page.get_by_role("button", name=CLEAR_BUTTON).click(timeout=timeout_ms)
    await wait_until(page, "!window.__digitlabBench.ready()", timeout_ms, "the Prediction stayed after Clear")
    await settle(page)


async def settle(page, timeout_ms: float = SETTLE_TIMEOUT_MS) -> None:
    """Wait until the page has not changed for ``QUIET_MS`` (the rerun has finished drawing)."""
    if not await page.evaluate("([quiet, timeout]) => window.__digitlabBench.quiet(quiet, timeout)",
                               [QUIET_MS, timeout_ms]):
        raise TimeoutError(f"the page did not stop changing within {timeout_ms / 1000:g} s")


async def page_errors(page) -> list[str]:
    """Texts of exceptions and error boxes now in the page."""
    return [text.strip()[:200] for text in await page.locator(ERROR_SELECTOR).all_inner_texts()]


# -- the app part ------------------------------------------------------------------------------
async def stroke_timings(page, box: dict[str, float], trials: int) -> dict[str, Any]:
    """``trials`` strokes on a cleared canvas: mouse-up → Prediction and → settled page, in ms."""
    timings = []
    for trial in range(trials):
        await clear_canvas(page)
        timings.append(await time_stroke(page, box, STROKES[trial % len(STROKES)]))
    return {"prediction": percentiles([t["prediction"] for t in timings]),
            "settled": percentiles([t["settled"] for t in timings])}


async def _measure_app(models_dir, data_path, trials: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await launch_browser(playwright)  # before the clock: not part of the app's start
        with AppServer(models_dir, data_path) as server:
            cold: dict[str, Any] = {"server_ready_s": round(await asyncio.to_thread(server.wait_healthy), 2)}
            page, box = await open_draw_page(await browser.new_context(viewport=VIEWPORT), server.url)
            cold["canvas_ready_s"] = round(server.since_start(), 2)
            await draw(page, box, STROKES[0])
            await wait_until(page, "window.__digitlabBench.shown !== null", 120_000, "no first Prediction")
            cold["first_prediction_s"] = round(server.since_start(), 2)
            cold["rss_one_model_mb"] = round(server.rss_bytes() / 2**20)
            await settle(page)
            single = await stroke_timings(page, box, trials)
            await page.get_by_text(COMPARE_SWITCH, exact=True).click()
            await wait_until(page, "window.__digitlabBench.ready()", 120_000, "no Prediction in Compare mode")
            await settle(page)  # this rerun loaded every model
            cold["rss_all_models_mb"] = round(server.rss_bytes() / 2**20)
            compare = await stroke_timings(page, box, max(2, trials // 2) if trials else 0)
            errors = await page_errors(page)
            await browser.close()
    return {"cold_start": cold, "mouse_up_to_prediction_ms": single["prediction"],
            "mouse_up_to_settled_ms": single["settled"], "compare_mode_prediction_ms": compare["prediction"],
            "compare_mode_settled_ms": compare["settled"], "page_errors": errors}


def measure_app(models_dir: str | os.PathLike, data_path: str | None, trials: int) -> dict[str, Any]:
    """Cold start, memory with all models loaded, and mouse-up → Prediction over ``trials`` strokes
    with one model and half as many in Compare mode."""
    return asyncio.run(_measure_app(models_dir, data_path, trials))
