"""What a hostile visitor can do to a real ``streamlit run`` server, and what stops it.

A visitor needs no browser to send the server anything: ``hostile_client`` speaks Streamlit's
WebSocket protocol from Python, so these tests forge pad values (oversized, deeply nested) and
Host headers by the dozen. The Chromium tests check what only a browser shows: where the page
fetches things from, and where a stroke may start. One server per module, over a store with one
small untrained model (no MNIST needed: nothing here reads the answer's digit).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from browser_support import SERVER_START_TIMEOUT, browser_test, chromium
from hostile_client import HostileSession, is_closed, upgrade_status

from bench.browser import AppServer

MEMORY_TARGET_BYTES = 1.5e9  # the server's target with many visitors
HOSTILE_SESSIONS = 20
FIRST_RUN_TIMEOUT = 120_000  # ms: the first session loads TensorFlow and the model
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    """A store with one untrained 28×28 → 10 model: enough for the Draw page to answer."""
    import keras

    from digitlab.store import ModelStore

    root = tmp_path_factory.mktemp("hardening-models")
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    ModelStore(root).save("tiny", model, {"architecture": "mlp", "parameters": model.count_params(),
                                          "test": {"accuracy": 0.1, "loss": 2.3}})
    return root


@pytest.fixture(scope="module")
def server(tiny_models: Path):
    with AppServer(tiny_models, None) as app_server:
        app_server.wait_healthy(timeout=SERVER_START_TIMEOUT)
        yield app_server


@pytest.fixture()
def session(server):
    """A session on the Draw page that has run once (so it knows the pad's widget id)."""
    visitor = HostileSession(server.port)
    visitor.run()
    yield visitor
    visitor.close()


def forged_drawing(characters: int) -> str:
    """The pad's state with a "drawing" of ``characters`` characters, as a forger sends it."""
    return json.dumps({"drawing": "data:image/png;base64," + "A" * characters})


# -- DNS rebinding -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("host", "status"), [("localhost", 101), ("127.0.0.1:8501", 101),
                                              ("rebind.attacker.example", 403), ("localhost.evil.example", 403)])
def test_only_local_host_names_open_a_session(server, host: str, status: int) -> None:
    assert upgrade_status(server.port, host) == status


# -- forged pad values -------------------------------------------------------------------------------
def test_a_pad_value_over_the_message_limit_closes_the_connection(session) -> None:
    session.socket.send(_rerun_bytes(session, forged_drawing(2_000_000)))
    assert is_closed(session)


def test_an_oversized_pad_value_is_refused_and_never_sent_back(session) -> None:
    refused = session.send_pad_value(forged_drawing(300_000))
    assert any("far larger than the pad ever sends" in text for text in refused.texts)
    again = session.run()  # the next rerun must not carry the value back to the browser
    assert len(again.pad_data) < 1_000


def test_a_deeply_nested_pad_value_breaks_only_the_session_that_sent_it(server, session) -> None:
    """Streamlit parses the value before the app runs (see docs/security.md); other visitors'
    sessions must not notice."""
    session.send_pad_value('{"drawing": ' + "[" * 3000 + "]" * 3000 + "}")
    other = HostileSession(server.port)
    try:
        page = other.run()
    finally:
        other.close()
    assert not page.exceptions and any("Draw a digit" in text for text in page.texts)


def test_twenty_hostile_sessions_keep_the_server_under_its_memory_target(server) -> None:
    """Each session sends a value just under the message limit (refused by the pad, not kept)
    and one over it (the connection is closed); all 20 stay open while the RSS is read."""
    started = time.perf_counter()
    sessions = []
    try:
        for _ in range(HOSTILE_SESSIONS):
            rejected = HostileSession(server.port)
            rejected.run()
            rejected.socket.send(_rerun_bytes(rejected, forged_drawing(24_000_000)))
            rejected.close()
            visitor = HostileSession(server.port)
            visitor.run()
            visitor.send_pad_value(forged_drawing(990_000))
            sessions.append(visitor)
        rss = server.rss_bytes()
    finally:
        for visitor in sessions:
            visitor.close()
    print(f"\n{HOSTILE_SESSIONS} hostile sessions: server RSS {rss / 2**20:.0f} MiB "
          f"({rss / 1e9:.2f} GB) after {time.perf_counter() - started:.1f} s")
    assert rss < MEMORY_TARGET_BYTES


def _rerun_bytes(session: HostileSession, json_text: str) -> bytes:
    """A rerun request carrying the pad value, serialized (for values the server will refuse)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    message = BackMsg()
    message.rerun_script.widget_states.widgets.append(WidgetState(id=session.pad_id, json_value=json_text))
    return message.SerializeToString()


# -- in the browser ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    with chromium() as chromium_browser:
        yield chromium_browser


@pytest.fixture()
def page(browser, server):
    """A fresh Draw page; every request it makes is recorded in ``page.requested``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    page.goto(server.url)
    page.locator("canvas").first.wait_for(timeout=FIRST_RUN_TIMEOUT)
    yield page
    context.close()


@browser_test
def test_the_page_fetches_nothing_from_other_hosts(page) -> None:
    from urllib.parse import urlparse

    page.wait_for_load_state("networkidle")
    fetched = [urlparse(url) for url in page.requested]  # data: and blob: URLs fetch nothing
    assert {url.hostname for url in fetched if url.scheme in ("http", "https", "ws", "wss")} <= LOCAL_HOSTS


@browser_test
@pytest.mark.parametrize("start", [(1, 1), (-8, 140)], ids=["in the rounded corner", "just outside the edge"])
def test_a_stroke_may_start_in_the_corner_or_just_outside_the_pad(page, start) -> None:
    from playwright.sync_api import expect

    box = page.locator("canvas").first.bounding_box()
    page.mouse.move(box["x"] + start[0], box["y"] + start[1])
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(box["x"] + start[0] + (140 - start[0]) * step / 20,
                        box["y"] + start[1] + (200 - start[1]) * step / 20)
    page.mouse.up()
    card = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Prediction", exact=True))
    expect(card).to_have_count(1, timeout=FIRST_RUN_TIMEOUT)
