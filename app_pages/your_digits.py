"""The Evaluate page's "Your digits" section: every model on one writer's labelled drawings.

Scored afresh on each visit (the digits change as they are labelled) through
:func:`digitlab.writer_scores.score_writer`, the same function as ``digitlab evaluate --on writer:NAME``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages.common import predictor_or_error
from app_pages.labelling import get_digits_db, own_writer, shown, whose, writer_choice
from digitlab.digits_db import DigitsDbError
from digitlab.writer_scores import load_writer_digits, score_writer

MISREAD_LIMIT = 40
THUMBNAIL = 72
ACCURACY = st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)


def your_digits_ui(usable) -> None:
    """Accuracy per model and per digit on a writer's digits, and the ones misread."""
    st.subheader("Your digits")
    db = get_digits_db()
    try:
        counts = db.counts()
    except DigitsDbError as error:
        st.error(f"Your digits cannot be read: {shown(error)}.", icon=":material/database:")
        return
    if not counts:
        st.caption("No labelled digits yet. On the **Draw** page, press **Right** or the digit it really "
                   "is after each drawing, or import a file with `digitlab digits import`.")
        return
    writers = list(counts)
    writer = st.selectbox("Writer", writers, index=own_writer(writers), key="evaluate_writer",
                          placeholder="Choose a writer",
                          format_func=lambda name: writer_choice(name, counts))
    if writer is None:
        st.caption("Pick a writer to score their digits. Once you label drawings on the **Draw** page, "
                   "yours are picked here.")
        return
    predictors = {}
    for entry in usable:
        predictor, _ = predictor_or_error(entry)
        if predictor is not None:
            predictors[entry.name] = predictor
    try:
        scores = score_writer(predictors, load_writer_digits(db, writer))
    except (DigitsDbError, ValueError) as error:
        st.error(f"{shown(error)}.")
        return
    total = sum(scores.counts)
    rows = [{"model": name, "accuracy": result.accuracy, "correct": result.correct, "misread": result.incorrect}
            for name, result in scores.evaluations.items()]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={"accuracy": ACCURACY},
                 key="evaluate_writer_models")
    per_digit = pd.DataFrame(scores.per_digit, index=[str(digit) for digit in range(10)]).T
    per_digit.insert(0, "model", per_digit.index)
    st.dataframe(per_digit, hide_index=True, width="stretch", placeholder="—", key="evaluate_writer_digits",
                 column_config={str(digit): st.column_config.NumberColumn(
                     f"{digit} ({scores.counts[digit]})", format="percent") for digit in range(10)})
    st.caption(f"Accuracy on each digit; the column heads count {whose(writer)} digits of each kind ({total} in all).")
    misread_ui(scores)


def misread_ui(scores) -> None:
    """The writer's digits that some model got wrong, with what every model said."""
    if not scores.misread:
        st.success(f"Every model reads all of {whose(scores.writer)} digits correctly.")
        return
    shown = scores.misread[:MISREAD_LIMIT]
    st.image([item.digit.picture_png for item in shown], width=THUMBNAIL,
             caption=[f"a {item.digit.label}: " + ", ".join(f"{name} {said}" for name, said in item.said.items())
                      for item in shown])
    st.caption(f"{len(scores.misread)} of {sum(scores.counts)} digits misread by at least one model"
               + (f"; the first {MISREAD_LIMIT} are shown." if len(scores.misread) > MISREAD_LIMIT else ".")
               + " Under each: the true digit, then what each model said.")
