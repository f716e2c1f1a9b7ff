"""The drawing pad: a black square to draw one digit on, which reports the moment a stroke ends.

streamlit-drawable-canvas waits a fixed 200 ms after every stroke before it tells the app
(a debounce in its frontend), which was more than half the time from mouse-up to a new answer.
Drawing a digit needs none of its shapes or editing, so this small component (our own HTML,
CSS and JavaScript, rendered in the page) sends the picture on pointer-up, with its strokes, keeps
strokes for Undo, and works with mouse, pen and touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image

from digitlab.images import ImageError, decode_data_url
from digitlab.strokes import Drawing

HERE = Path(__file__).resolve().parent
PAD_SIZE = 280
MAX_PAD_PIXELS = 2048 * 2048  # a forged payload may declare any size; no canvas here is larger
# The pad sends a PNG data URL of a black square with white strokes: a few kB (~10 kB for a
# busy drawing). A value 20 times that is no drawing, and is not kept: every session holding
# and re-sending a forged 20 MB value is how a server runs out of memory.
MAX_PAD_VALUE_CHARS = 200_000
TOO_LARGE = "the drawing is far larger than the pad ever sends, so it was dropped"

_pad = st.components.v2.component(
    "digitlab_drawing_pad",
    html='<div class="pad-root"></div>',
    css=(HERE / "drawing_pad.css").read_text(encoding="utf-8"),
    js=(HERE / "drawing_pad.js").read_text(encoding="utf-8"),
    isolate_styles=True,
)


@dataclass(frozen=True)
class PadDrawing:
    """What the pad sent: the picture it shows and, unless it was a restored bare picture, its strokes."""

    picture: Image.Image
    strokes: Drawing | None


def drawing_pad(key: str, brush: int, size: int = PAD_SIZE) -> PadDrawing | None:
    """Show the pad; returns the drawing (None while it is empty).

    Raises:
        digitlab.images.ImageError: what the browser sent is not a PNG picture with strokes, or
            is far larger than any drawing (a forged message); it is not kept.
    """
    # Streamlit forgets a widget's state while it is not on the page (the user looked at another
    # input), so keep the last drawing apart: a fresh pad repaints it and sends it back.
    kept = f"{key}_kept"
    result = _pad(key=key, data={"size": size, "brush": brush, "restore": st.session_state.get(kept)},
                  default={"drawing": None}, on_drawing_change=lambda: None, width="content", height="content")
    sent = result.get("drawing")
    st.session_state[kept] = None  # only a drawing that reads is kept, and sent back on a rerun
    if sent is None:
        return None
    drawing = _read_message(sent, size)
    st.session_state[kept] = sent
    return drawing


def _read_message(sent: object, size: int) -> PadDrawing:
    """The pad's message, checked: a PNG data URL, or ``{"picture": URL, "strokes": [...]}``."""
    url, strokes = (sent.get("picture"), sent.get("strokes")) if isinstance(sent, dict) else (sent, None)
    if isinstance(url, str) and len(url) > MAX_PAD_VALUE_CHARS:
        raise ImageError(TOO_LARGE)
    picture = decode_data_url(url, max_pixels=MAX_PAD_PIXELS)
    if strokes is None:
        return PadDrawing(picture, None)
    try:
        return PadDrawing(picture, Drawing.from_message(strokes, size))
    except ValueError as error:
        raise ImageError(str(error)) from None
