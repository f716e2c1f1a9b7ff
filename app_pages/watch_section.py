"""Watch it learn, on the Train page: pin up to four pictures to the next run, then chart, epoch by
epoch, the probability the model gives each one's digit.

The pins come from the visitor's last drawing (the Draw page remembers it), a test digit a stored
model misreads, or one of the visitor's labelled digits. The run itself reads them after every
epoch (:mod:`digitlab.watch`); this module only collects them and draws what the run reported.
"""

from __future__ import annotations

import hashlib

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app_pages.common import list_models, load_data
from app_pages.labelling import WRITER_KEY, get_digits_db, shown, whose
from digitlab.digits_db import DigitsDbError, StoredDigit
from digitlab.display import enlarge
from digitlab.jobs.queue import QueuedRun
from digitlab.watch import MAX_PINS, Pin, make_pin, watch_points

PINS_KEY = "watch_pins"
LAST_DRAWING_KEY = "watch_last_drawing"  # (model input, the answer), set by the Draw page
MISREAD_FEEDBACK_KEY = "watch_misread_feedback"
THUMBNAIL = 56
MISREADS_LISTED = 30
OWN_DIGITS_LISTED = 30


def remember_drawing(model_input: np.ndarray, answer: int | None) -> None:
    """The Draw page hands over its latest 28×28 input, so this page can pin it."""
    st.session_state[LAST_DRAWING_KEY] = (np.array(model_input, np.float32), answer)


def current_pins() -> tuple[Pin, ...]:
    """The pictures the next run started from this page will watch."""
    return tuple(st.session_state.get(PINS_KEY, ()))


def _add(pin: Pin) -> None:
    pins = list(current_pins())
    if len(pins) < MAX_PINS:
        st.session_state[PINS_KEY] = [*pins, pin]


def _remove(index: int) -> None:
    pins = list(current_pins())
    if 0 <= index < len(pins):
        del pins[index]
    st.session_state[PINS_KEY] = pins


def _caption(pin: Pin) -> str:
    return f"{pin.title} · {'digit unknown' if pin.digit is None else f'a {pin.digit}'}"


def pins_ui() -> None:
    """The expander where pins are chosen; the next Start (or sweep) takes them along."""
    pins = current_pins()
    with st.expander(f"Watch it learn: pictures the next run reads after every epoch ({len(pins)}/{MAX_PINS} "
                     "pinned)", icon=":material/push_pin:"):
        st.caption("Pin up to four pictures. After each epoch the run reads them, and the chart under its "
                   "curves shows the probability of each one's digit growing as the network learns.")
        if pins:
            columns = st.columns(MAX_PINS)
            for index, (column, pin) in enumerate(zip(columns, pins, strict=False)):
                column.image(enlarge(pin.image, THUMBNAIL), width=THUMBNAIL)
                column.caption(_caption(pin))
                column.button("Unpin", key=f"watch_unpin_{index}", on_click=_remove, args=(index,),
                              icon=":material/close:")
        if len(pins) >= MAX_PINS:
            st.caption(f"{MAX_PINS} pinned: unpin one to add another.")
            return
        drawing, misread, own = st.columns(3, gap="medium")
        with drawing:
            _drawing_source()
        with misread:
            _misread_source()
        with own:
            _own_digit_source()


def _drawing_source() -> None:
    st.markdown("**Your last drawing**")
    last = st.session_state.get(LAST_DRAWING_KEY)
    if last is None:
        st.caption("Draw a digit on the **Draw** page first; it can be pinned here then.")
        return
    image, answer = last
    st.image(enlarge(image, THUMBNAIL), width=THUMBNAIL)
    # One digit box per drawing, so a new drawing starts from its own answer, not the last one's.
    digit_key = f"watch_drawing_digit_{hashlib.sha1(image.tobytes()).hexdigest()[:10]}"
    st.selectbox("It is a", list(range(10)), index=answer if answer is not None else 0, key=digit_key)
    st.button("Pin it", key="watch_pin_drawing", icon=":material/push_pin:", on_click=_pin_drawing,
              args=(digit_key,))


# Button callbacks run before the next script run, with the widgets' new values in session state
# (a closure would hold the values of the run that drew the button): they read them there.
def _pin_drawing(digit_key: str) -> None:
    image, _ = st.session_state[LAST_DRAWING_KEY]
    _add(make_pin("your drawing", image, int(st.session_state[digit_key])))


def _misread_source() -> None:
    st.markdown("**A test digit a model misreads**")
    entries = [entry for entry in list_models() if entry.usable and entry.run.test and entry.run.test.mistakes]
    if not entries:
        st.caption("No stored model lists its misread test digits.")
        return
    chosen = st.selectbox("Misread by", [entry.name for entry in entries], key="watch_misread_model")
    mistakes = next(entry for entry in entries if entry.name == chosen).run.test.mistakes[:MISREADS_LISTED]
    described = {m.index: f"#{m.index}: a {m.label} read as {m.predicted}" for m in mistakes}
    st.selectbox("Test digit", list(described), format_func=described.get, key="watch_misread_digit")
    st.button("Pin it", key="watch_pin_misread", icon=":material/push_pin:", on_click=_pin_misread)
    feedback = st.session_state.pop(MISREAD_FEEDBACK_KEY, None)
    if feedback:
        st.caption(feedback)


def _pin_misread() -> None:
    data, message = load_data()
    index = st.session_state.get("watch_misread_digit")
    if data is None or index is None or not 0 <= index < len(data.x_test):
        st.session_state[MISREAD_FEEDBACK_KEY] = message or "That test digit is not in this server's MNIST."
        return
    _add(make_pin(f"test digit #{index}", data.x_test[index] / 255.0, int(data.y_test[index])))


def _own_digit_source() -> None:
    st.markdown("**One of your labelled digits**")
    writer = st.session_state.get(WRITER_KEY)
    if not writer:
        st.caption("Label digits on the **Draw** page (Right / Wrong) to pin them here.")
        return
    digits = _own_digits(writer)
    if digits is None:
        return
    if not digits:
        st.caption(f"No labelled digits by {writer} yet.")
        return
    described = {digit.id: f"#{digit.id}: a {digit.label}" for digit in digits}
    picked = st.selectbox(f"One of {whose(writer)} digits", list(described), format_func=described.get,
                          key="watch_own_digit")
    st.image(enlarge(digits[list(described).index(picked)].model_input, THUMBNAIL), width=THUMBNAIL)
    st.button("Pin it", key="watch_pin_own", icon=":material/push_pin:", on_click=_pin_own, args=(writer,))


def _own_digits(writer: str) -> list[StoredDigit] | None:
    """The writer's newest labelled digits, newest first; None (and a note) when unreadable."""
    try:
        return get_digits_db().digits(writer)[-OWN_DIGITS_LISTED:][::-1]
    except DigitsDbError as error:
        st.caption(f"Your digits cannot be read: {shown(error)}.")
        return None


def _pin_own(writer: str) -> None:
    wanted = st.session_state.get("watch_own_digit")
    try:
        stored = next((digit for digit in get_digits_db().digits(writer) if digit.id == wanted), None)
    except DigitsDbError:
        return  # the selector above says why on the rerun
    if stored is not None:
        _add(make_pin(f"{whose(writer)} digit #{stored.id}", stored.model_input, stored.label))


def watch_chart_ui(run: QueuedRun) -> None:
    """The pinned pictures of ``run`` and, per epoch, the probability of each one's digit."""
    try:
        pins = run.pins
    except ValueError:
        return  # a queue row edited by hand: nothing trustworthy to draw
    if not pins:
        return
    st.markdown("**Watch it learn** — the probability the model gives each pinned picture's digit, per epoch")
    points = watch_points(run.epochs, pins)
    latest = {point.pin: point for point in points}
    columns = st.columns(MAX_PINS)
    for index, (column, pin) in enumerate(zip(columns, pins, strict=False)):
        now = latest.get(index)
        reads = "" if now is None else f" → reads {now.answer} ({now.probabilities[now.answer]:.0%})"
        column.image(enlarge(pin.image, THUMBNAIL), width=THUMBNAIL)
        column.caption(_caption(pin) + reads)
    if not points:
        st.caption("The first points appear when the first epoch finishes.")
        return
    frame = pd.DataFrame([{"epoch": p.epoch, "picture": f"{p.pin + 1}. {_caption(pins[p.pin])}",
                           "probability": p.probability, "answer": p.answer} for p in points])
    epochs = run.config.get("epochs", frame.epoch.max())
    chart = alt.Chart(frame, height=240).mark_line(point=True).encode(
        x=alt.X("epoch:Q", scale=alt.Scale(domain=[1, max(int(epochs), 2)]), axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("probability:Q", title="probability of its digit", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format="%")),
        color=alt.Color("picture:N", legend=alt.Legend(orient="bottom", columns=2)),
        tooltip=["epoch", "picture", alt.Tooltip("probability:Q", format=".1%"), "answer"],
    )
    st.altair_chart(chart, width="stretch")
