"""What the AppTests share: a fresh app on a page, with Streamlit's process-wide caches cleared."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

APP_FILE = Path(__file__).resolve().parent.parent / "streamlit_app.py"
APP_TIMEOUT = 120  # seconds: the first run imports TensorFlow and loads models


def pad_message(payload: bytes, kind: str = "image/png") -> str:
    """A data URL, the way the drawing pad sends a picture after each stroke."""
    return f"data:{kind};base64," + base64.b64encode(payload).decode("ascii")


def clear_streamlit_caches() -> None:
    """``st.cache_*`` outlive an AppTest in this process; clear them between tests."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def new_app(page: str | None = None):
    """A fresh AppTest of streamlit_app.py, run once, on ``page`` (default: Draw)."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(APP_FILE), default_timeout=APP_TIMEOUT)
    if page is not None:  # our pages keep their file names as URL paths, so no first run
        app.switch_page(page)
    return app.run()


@contextlib.contextmanager
def app_against(models_dir: Path, mnist_path: Path, page: str | None = None) -> Iterator[object]:
    """:func:`new_app` over ``models_dir`` and ``mnist_path``, caches clean before and after."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIGITLAB_MODELS", str(models_dir))
        patch.setenv("DIGITLAB_MNIST", str(mnist_path))
        clear_streamlit_caches()
        try:
            yield new_app(page)
        finally:
            clear_streamlit_caches()
