"""Your handwriting on the Draw page: label the answer, name the writer, see and prune your digits.

Next to the answer: "Right" and "Wrong — it's a 0…9" (keys Y and 0–9). Each click stores the
drawing through :func:`digitlab.labelling.label_drawing` with every model's answer to it. Below
the drawing: the writer name (default ``me``, remembered for the session) and the gallery. A
broken database shows its message and the drawing goes on working.
"""

from __future__ import annotations

import contextlib
import hashlib

import numpy as np
import streamlit as st

from app_pages.common import counted, get_store, logged_for_visitors, predictor_or_error
from digitlab.digits_db import DEFAULT_WRITER, DigitsDb, DigitsDbError, default_db_path, validate_writer, writer_key
from digitlab.labelling import label_drawing

WRITER_KEY = "your_writer"  # survives page switches (a widget's own key does not)
REFUSED_NAME_KEY = "your_writer_refused"  # why a typed name was not taken, shown once under the box
OWN_KEY = "your_writer_own"  # set once this session labels or picks a writer: its digits are its own
WRITER_WIDGET = "your_writer_pick"
FEEDBACK_KEY = "your_label_feedback"
SAVED_KEY = "your_last_saved"  # ((writer, the drawing's fingerprint), its id, its label): saved once
GALLERY_KEY = "your_gallery"
GALLERY_LIMIT = 48  # newest first; the rest are counted, not drawn
GALLERY_COLUMNS = 8
THUMBNAIL = 64
RIGHT_SHORTCUT = "Y"  # "R" is reserved by Streamlit (rerun)


@st.cache_resource(show_spinner=False)
def _digits_db(path: str) -> DigitsDb:
    return DigitsDb(path)


def get_digits_db() -> DigitsDb:
    """The labelled-digits database beside the model store (``$DIGITLAB_DIGITS_DB`` if set)."""
    return _digits_db(str(default_db_path(get_store().root)))


def shown(error: BaseException) -> str:
    """The visitor's version of an error (no server paths); the full one goes to the server's log."""
    return logged_for_visitors(error, "your digits")


def whose(writer: str) -> str:
    """``writer``'s, for a person to read: "your" for the default writer, ``me``."""
    return "your" if writer == DEFAULT_WRITER else f"{writer}'s"


def digit_count(count: int) -> str:
    """ "1 digit", "12 digits". """
    return counted(count, "digit")


def writer_choice(name: str, counts: dict[str, list[int]]) -> str:
    """A writer in a picker, with how many digits they have: "ana (1 digit)", "me (12 digits)"."""
    return f"{name} ({digit_count(sum(counts[name]))})"


def current_writer() -> str:
    """The writer this browser session labels as (``me`` until changed)."""
    return st.session_state.setdefault(WRITER_KEY, DEFAULT_WRITER)


def own_writer(writers: list[str]) -> int | None:
    """Where the writer this session labelled as or picked is in ``writers`` (any case), or None.

    Every visitor starts as ``me``, so ``me``'s digits on a shared server are anybody's: another
    writer's digits are scored or taught only when someone picks them.
    """
    if not st.session_state.get(OWN_KEY):
        return None
    mine = writer_key(current_writer())
    return next((index for index, name in enumerate(writers) if writer_key(name) == mine), None)


def labelling_ui(answer, entries: dict) -> None:
    """The label buttons next to the Draw page's answer (none without one), and how the last label went.

    Only these rerun with every stroke; the writer and the gallery are drawn by
    :func:`your_digits_ui`, outside the drawing fragment.
    """
    if answer is not None:
        label_buttons(answer, entries, get_digits_db())
    feedback = st.session_state.get(FEEDBACK_KEY)
    if feedback and feedback[0] == "success" and st.session_state.get(GALLERY_KEY):
        st.session_state[FEEDBACK_KEY] = ("success-shown", feedback[1])
        st.rerun(scope="app")  # the open gallery, outside this fragment, shows the new digit
    feedback = st.session_state.pop(FEEDBACK_KEY, None)
    if feedback:
        kind, text = feedback
        getattr(st, kind.removesuffix("-shown"))(text)


def your_digits_ui() -> None:
    """The writer picker and, on request, the writer's gallery with counts per digit."""
    db = get_digits_db()
    writer_ui(db)
    if st.toggle("Your digits: the gallery and counts per digit", key=GALLERY_KEY,
                 help="Every drawing you labelled, newest first, with a button to delete it."):
        gallery_ui(db)


def label_buttons(answer, entries: dict, db: DigitsDb) -> None:
    """"Right" and "Wrong — it's a 0…9" for the chosen model's answer."""
    said = answer.reading.digit
    arguments = (answer.picture.picture, answer.model_input, entries, db)
    if said is not None:  # a model that declines to name a digit can only be corrected
        st.button(f"Right, it's a {said}", icon=":material/check:", key="your_right", shortcut=RIGHT_SHORTCUT,
                  on_click=_label, args=(said, *arguments),
                  help=f"Keep this drawing as one of your {said}s (key {RIGHT_SHORTCUT}).")
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):  # the ten digits in a row
        st.markdown("Wrong — it's a" if said is not None else "It's a")
        for digit in range(10):
            st.button(str(digit), key=f"your_wrong_{digit}", shortcut=str(digit), type="tertiary",
                      on_click=_label, args=(digit, *arguments))  # no tooltips: 10 fewer per stroke


def _label(label: int, picture, model_input, entries: dict, db: DigitsDb) -> None:
    """A label button's callback: store the drawing with every model's answer; say how it went.

    A drawing is stored once: pressing a label again for the same drawing changes its label
    (the writer changed their mind) instead of keeping a second copy.
    """
    writer = current_writer()
    drawing = (writer, hashlib.sha256(np.ascontiguousarray(model_input, np.float32).tobytes()).hexdigest())
    saved = st.session_state.get(SAVED_KEY)
    if saved is not None and saved[0] == drawing and _relabelled(db, saved, label):
        return
    predictors = {}
    for name, entry in entries.items():
        predictor, _ = predictor_or_error(entry)
        if predictor is not None:
            predictors[name] = predictor
    try:
        digit_id = label_drawing(db, writer, label, picture, model_input, predictors)
        count = db.writer_counts(writer)[label]
    except (DigitsDbError, ValueError) as error:
        st.session_state[FEEDBACK_KEY] = ("error", f"Not saved: {shown(error)}. Drawing still works.")
        return
    st.session_state[SAVED_KEY] = (drawing, digit_id, label)
    st.session_state[OWN_KEY] = True
    st.session_state[FEEDBACK_KEY] = ("success", f"Saved as a {label}: {count} of {whose(writer)} {label}s so far.")


def _relabelled(db: DigitsDb, saved: tuple, label: int) -> bool:
    """The drawing was saved already: keep it, under ``label`` now. False if it is gone (deleted
    meanwhile), so that the caller saves it afresh."""
    drawing, digit_id, before = saved
    try:
        found = db.relabel(digit_id, label)
    except (DigitsDbError, ValueError) as error:
        st.session_state[FEEDBACK_KEY] = ("error", f"Not changed: {shown(error)}. Drawing still works.")
        return True
    if not found:
        return False
    st.session_state[SAVED_KEY] = (drawing, digit_id, label)
    st.session_state[FEEDBACK_KEY] = (("info", f"This drawing is saved already, as a {label}.") if label == before
                                      else ("success", f"Changed from a {before} to a {label}: the drawing is "
                                                       "kept once, under its new label."))
    return True


def writer_ui(db: DigitsDb) -> None:
    """Pick a known writer or type a new name; remembered in the session."""
    writer = current_writer()
    try:
        known = list(db.counts())
    except DigitsDbError as error:
        st.error(f"Your digits cannot be read: {shown(error)}.", icon=":material/database:")
        known = []
    spelt = {writer_key(name) for name in (*known, writer)}
    options = sorted({*known, writer, *([DEFAULT_WRITER] if writer_key(DEFAULT_WRITER) not in spelt else [])})
    st.selectbox("Writer", options, index=options.index(writer), key=WRITER_WIDGET, accept_new_options=True,
                 on_change=_remember_writer, args=(db,),
                 help="Whose handwriting this is: pick a name or type a new one (case does not matter).")
    refused = st.session_state.pop(REFUSED_NAME_KEY, None)
    if refused:  # under the box it is about, where the person typing looks
        st.error(refused, icon=":material/badge:")


def _remember_writer(db: DigitsDb) -> None:
    """The typed or picked writer, spelt as stored ("ana" goes on as "Ana"), becomes the session's."""
    typed = st.session_state.get(WRITER_WIDGET) or DEFAULT_WRITER
    try:
        name = validate_writer(typed)
    except ValueError:
        # The box goes back to the writer the labels still go to, so that it never shows another.
        st.session_state[WRITER_WIDGET] = current_writer()
        st.session_state[REFUSED_NAME_KEY] = ("A name is 1–40 printable characters: labels still go to "
                                              f"{current_writer()!r}.")
        return
    with contextlib.suppress(DigitsDbError):  # an unreadable file is reported where labels are saved
        name = db.spelling(name)
    st.session_state[WRITER_KEY] = st.session_state[WRITER_WIDGET] = name
    st.session_state[OWN_KEY] = True


def gallery_ui(db: DigitsDb) -> None:
    """The writer's digits, newest first, with counts per digit and a delete button each."""
    writer = current_writer()
    try:
        digits = db.digits(writer)
    except DigitsDbError as error:
        st.error(f"Your digits cannot be read: {shown(error)}.", icon=":material/database:")
        return
    if not digits:
        st.caption(f"No labelled digits for {writer!r} yet: draw one and press Right or the digit it is.")
        return
    counts = [0] * 10
    for digit in digits:
        counts[digit.label] += 1
    st.caption(f"**{writer}**: {digit_count(len(digits))} — "
               + " · ".join(f"{count} × {label}" for label, count in enumerate(counts)))
    newest = digits[::-1][:GALLERY_LIMIT]
    columns = st.columns(GALLERY_COLUMNS)
    for position, digit in enumerate(newest):
        with columns[position % GALLERY_COLUMNS]:
            st.image(digit.picture_png, width=THUMBNAIL, caption=f"a {digit.label}")
            st.button("Delete", icon=":material/delete:", key=f"your_delete_{digit.id}", type="tertiary",
                      on_click=_delete, args=(db, digit.id), help=f"Delete this {digit.label}")
    if len(digits) > GALLERY_LIMIT:
        st.caption(f"The newest {GALLERY_LIMIT} are shown.")


def _delete(db: DigitsDb, digit_id: int) -> None:
    try:
        db.delete(digit_id)
    except DigitsDbError as error:
        st.session_state[FEEDBACK_KEY] = ("error", f"Not deleted: {shown(error)}.")
