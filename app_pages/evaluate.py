"""Evaluate: every model side by side, then one model's mistakes, digit by digit.

The test-set results come from the run cards (computed once, when the model was trained); only
the inference time is measured here, once per weights file.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app_pages.calibration_view import calibration_ui
from app_pages.common import counted, get_store, load_data, predictor_or_error, usable_models_or_notice
from app_pages.model_download import model_download_ui
from app_pages.sweeps import sweeps_ui
from app_pages.your_digits import your_digits_ui
from digitlab.display import confusion_styles, enlarge
from digitlab.evaluation import Evaluation, evaluate
from digitlab.hard_styles import HEAVY_NAME as HEAVY_PEN_STYLES
from digitlab.hard_styles import HEAVY_PAD_NAME as HEAVY_PEN_AS_READ
from digitlab.hard_styles import NAME as HARD_STYLES
from digitlab.hard_styles import load_hard_styles, load_heavy_pen_styles, misreads_by_style
from digitlab.inference import ENSEMBLE_SEPARATOR, Averaged
from digitlab.other_handwriting import NAME as UCI_DIGITS
from digitlab.other_handwriting import MissingDatasetError, OtherDigits, load_uci_digits, squashed_inputs
from digitlab.paper_photos import NAME as PAPER_PHOTOS
from digitlab.paper_photos import PHOTO_COUNT, load_paper_photos, scene_scores
from digitlab.report import (
    comparison_row,
    inference_ms,
    learning_curve_rows,
    most_confused,
    per_class_rows,
    top_guesses,
)

GALLERY_LIMIT = 60
UCI_SQUASHED = "UCI, squashed"
THUMBNAIL = 84
DIGITS = [str(digit) for digit in range(10)]
MATRIX_COLUMNS = {"_index": st.column_config.TextColumn("true", width=48),
                  **{digit: st.column_config.NumberColumn(digit, width=46) for digit in DIGITS}}
PER_CLASS_COLUMNS = {
    "precision": st.column_config.ProgressColumn(
        format="%.3f", min_value=0.0, max_value=1.0,
        help="Of the images the model called this digit, the share that were."),
    "recall": st.column_config.ProgressColumn(
        format="%.3f", min_value=0.0, max_value=1.0,
        help="Of the test images of this digit, the share the model recognised."),
}


def render() -> None:
    st.title(":material/analytics: Evaluate the models")
    st.caption("How every model in the store does on MNIST's 10,000 test digits, which it never "
               "saw while training.")
    usable = usable_models_or_notice()
    if not usable:
        return
    comparison_ui(usable)
    other_handwriting_ui(usable)
    your_digits_ui(usable)
    model_download_ui(usable)
    calibration_ui(usable)
    curves_ui(usable)
    sweeps_ui(get_store().root)
    st.divider()
    model_ui(usable)


def comparison_ui(usable) -> None:
    st.subheader("All models")
    rows = [comparison_row(entry.name, entry.run, _timing(entry)) for entry in usable]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", placeholder="—", column_config={
        "test accuracy": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
        "test loss": st.column_config.NumberColumn(format="%.4f"),
        "parameters": st.column_config.NumberColumn(format="localized"),
        "inference ms": st.column_config.NumberColumn(help="One drawing, direct model call (median)."),
        "training s": st.column_config.NumberColumn(format="%.0f"),
    })


def _timing(entry) -> float | None:
    """Milliseconds per single-image prediction, measured once per weights file."""
    return _measured_ms(entry.name, entry.card["model_file"], entry)


@st.cache_data(show_spinner="Timing the models…")
def _measured_ms(name: str, model_file: str, _entry) -> float | None:
    predictor, _ = predictor_or_error(_entry)
    return None if predictor is None else inference_ms(predictor)


def other_handwriting_ui(usable) -> None:
    st.subheader("On handwriting that is not MNIST")
    st.caption("MNIST's test digits come from the same kind of writers and scanner as its training "
               "digits. More test sets that no model trains on: the 1,797 UCI digits (shipped "
               "with scikit-learn), written by other people on other forms and stored as 8×8 blocks, "
               "each smoothed up; 1,080 hard-styles pictures, 36 ways of writing digits that "
               "MNIST's writers rarely use (flagged 1s, crossed 7s, narrow 0s…), drawn on a pad like "
               "the Draw page's at random sizes, places, angles and pen widths, and the same styles "
               "drawn small with a heavy pen, as a felt pen or a wide brush leaves them (and as the "
               "Draw page reads such a drawing: redrawn from its strokes with MNIST's pen); and "
               f"{PHOTO_COUNT:,} "
               "photos of MNIST test digits written on paper, under even light, shadows, a dim room "
               "and darker corners, on squared and on ruled paper, from close up and as a sheet on a "
               "desk. All go through the same preprocessing as your drawings and uploads.")
    photos = st.toggle(f"Also the {PHOTO_COUNT:,} paper photos (about 10 s the first time)", key="evaluate_photos",
                       help="MNIST's test digits photographed on paper: shadows, a dim room, dark corners, "
                            "squared and ruled paper, a close-up, a sheet on a desk.")
    sets = _test_sets(with_photos=photos)
    results = {entry.name: _other_evaluations(entry.name, entry.card["model_file"], tuple(sets), entry, sets)
               for entry in usable}
    rows = [_side_by_side_row(entry.name, entry.run.test_accuracy, results[entry.name]) for entry in usable]
    # What Compare mode says when the shipped models disagree, measured like a model.
    members = [entry for entry in usable if entry.shipped and results[entry.name]]
    averaged = ENSEMBLE_SEPARATOR.join(entry.name for entry in members) if len(members) >= 2 else None
    if averaged:
        members_key = tuple((entry.name, entry.card["model_file"]) for entry in members)
        mnist_accuracy, results[averaged] = _averaged_evaluations(members_key, tuple(sets), members, sets)
        rows.append(_side_by_side_row(f"{averaged} (averaged)", mnist_accuracy, results[averaged]))
    accuracy = st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", placeholder="—",
                 column_config={column: accuracy for column in rows[0] if column != "model"})
    if averaged:
        st.caption(f"{averaged} (averaged): the shipped models' calibrated probabilities, averaged, read as "
                   "one model. It is the answer Compare mode on the Draw page adds when they disagree; "
                   f"`python -m digitlab evaluate {averaged} --on uci` measures it too.")
    scored = [name for name, result in results.items() if result]
    if not scored:
        return
    name_column, set_column = st.columns(2)
    name = name_column.selectbox("Show the misread pictures of", scored, key="evaluate_uci_model")
    chosen = set_column.radio("in", list(sets), horizontal=True, key="evaluate_other_set")
    misread_gallery_ui(name, sets[chosen], results[name][chosen])


def misread_gallery_ui(name: str, digits: OtherDigits, result: Evaluation) -> None:
    """The pictures a model misread in one test set, as the 28×28 inputs it got."""
    mistakes = result.mistakes
    if not mistakes:
        st.success(f"{name} reads every picture of {digits.name} correctly.")
        return
    if digits.name in (HARD_STYLES, HEAVY_PEN_STYLES, HEAVY_PEN_AS_READ):
        summary = ", ".join(f"{item.style} → {item.read_as} ({item.count} of {item.of})"
                            for item in misreads_by_style(result)[:6])
        st.markdown(f"**Most misread styles:** {summary}")
    if digits.name == PAPER_PHOTOS:
        summary = ", ".join(f"{item.scene} {item.correct}/{item.of}" for item in scene_scores(result))
        st.markdown(f"**Read right, by scene:** {summary}")
    shown = mistakes[:GALLERY_LIMIT]
    st.image([enlarge(digits.images[m.index], THUMBNAIL) for m in shown], width=THUMBNAIL,
             caption=[_caption(mistake) for mistake in shown])
    st.caption(f"{len(mistakes)} of {len(digits.labels):,} misread" +
               (f"; showing the first {GALLERY_LIMIT}." if len(mistakes) > GALLERY_LIMIT else ".") +
               " Each is shown as the 28×28 input the model got. Under it: its number, what the "
               "model said and how sure, then the true digit and the probability it gave that.")


def _side_by_side_row(name: str, mnist_accuracy: float | None, result: dict[str, Evaluation] | None) -> dict:
    """One model's accuracy on MNIST (from its card), the UCI digits, the hard styles (with a
    regular and a heavy pen, and the heavy pen as the Draw page reads it) and the photos."""
    result = result or {}
    columns = {"UCI accuracy": UCI_DIGITS, "UCI, squashed without preprocessing": UCI_SQUASHED,
               "hard-styles accuracy": HARD_STYLES, "heavy-pen accuracy": HEAVY_PEN_STYLES,
               "heavy pen, as the Draw page reads it": HEAVY_PEN_AS_READ,
               "paper-photos accuracy": PAPER_PHOTOS}
    return {"model": name, "MNIST test accuracy": mnist_accuracy,
            **{column: result[key].accuracy if key in result else None for column, key in columns.items()}}


def _test_sets(*, with_photos: bool) -> dict[str, OtherDigits]:
    """The test sets beyond MNIST that can be loaded here, by name (UCI needs scikit-learn, the
    photos MNIST's test digits, and they are built only when asked for)."""
    sets = {}
    try:
        sets[UCI_DIGITS] = _uci_digits()
    except MissingDatasetError as error:
        st.info(f"The UCI test needs scikit-learn, which is not installed: {error}.")
    sets[HARD_STYLES] = _hard_styles()
    sets[HEAVY_PEN_STYLES] = _heavy_pen_styles()
    sets[HEAVY_PEN_AS_READ] = _heavy_pen_as_read()
    data, _ = load_data()
    if with_photos and data is not None:
        sets[PAPER_PHOTOS] = _paper_photos(data.source)
    return sets


@st.cache_resource(show_spinner="Loading the UCI digits…")
def _uci_digits() -> OtherDigits:
    return load_uci_digits()


@st.cache_resource(show_spinner="Drawing the hard-styles pictures…")
def _hard_styles() -> OtherDigits:
    return load_hard_styles()


@st.cache_resource(show_spinner="Drawing the hard styles with a heavy pen…")
def _heavy_pen_styles() -> OtherDigits:
    return load_heavy_pen_styles()


@st.cache_resource(show_spinner="Redrawing the heavy-pen styles as the Draw page reads them…")
def _heavy_pen_as_read() -> OtherDigits:
    return load_heavy_pen_styles(as_the_pad_reads=True)


@st.cache_resource(show_spinner="Photographing MNIST's test digits on paper…")
def _paper_photos(source: str) -> OtherDigits:  # one set per MNIST file
    data, _ = load_data()
    return load_paper_photos(data.x_test, data.y_test)


@st.cache_resource(max_entries=16, show_spinner="Testing on the other test sets…")
def _other_evaluations(name: str, model_file: str, set_names: tuple[str, ...], _entry,
                       _sets: dict[str, OtherDigits]) -> dict[str, Evaluation] | None:
    """Results on every loaded test set beyond MNIST (and UCI squashed without preprocessing),
    once per weights file and choice of sets; None if the model is unusable."""
    predictor, _ = predictor_or_error(_entry)
    if predictor is None:
        return None
    results = {}
    for set_name, digits in _sets.items():
        results[set_name] = evaluate(predictor, digits.images, digits.labels)
        if set_name == UCI_DIGITS:
            results[UCI_SQUASHED] = evaluate(predictor, _uci_squashed(), digits.labels)
    return results


@st.cache_resource(max_entries=4, show_spinner="Testing the shipped models averaged…")
def _averaged_evaluations(members_key: tuple, set_names: tuple[str, ...], _members,
                          _sets: dict[str, OtherDigits]) -> tuple[float | None, dict[str, Evaluation]]:
    """(MNIST test accuracy or None without MNIST, results on every loaded test set) of the
    members' calibrated answers averaged, once per set of weights files and choice of sets."""
    predictors = {entry.name: predictor_or_error(entry)[0] for entry in _members}
    temperatures = {entry.name: entry.run.calibration.temperature for entry in _members if entry.run.calibration}
    averaged = Averaged(predictors, temperatures)
    data, _ = load_data()
    mnist = evaluate(averaged, data.x_test, data.y_test).accuracy if data is not None else None
    results = {set_name: evaluate(averaged, digits.images, digits.labels) for set_name, digits in _sets.items()}
    if UCI_DIGITS in _sets:
        results[UCI_SQUASHED] = evaluate(averaged, _uci_squashed(), _sets[UCI_DIGITS].labels)
    return mnist, results


@st.cache_resource(show_spinner=False)
def _uci_squashed():
    return squashed_inputs(_uci_digits())


def curves_ui(usable) -> None:
    rows = learning_curve_rows({entry.name: entry.run.history for entry in usable})
    if not rows:
        return
    st.subheader("Learning curves")
    st.caption("From the run cards: solid lines are the held-out validation split, dashed the "
               "training batches. A gap that widens means overfitting.")
    frame = pd.DataFrame(rows)
    accuracy_column, loss_column = st.columns(2)
    for column, metric in ((accuracy_column, "accuracy"), (loss_column, "loss")):
        lines = alt.Chart(frame[frame.metric == metric], height=320, title=metric).mark_line(point=True)
        chart = lines.encode(
            x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            color=alt.Color("model:N"),
            strokeDash=alt.StrokeDash("split:N", sort=["validation", "train"]),
            tooltip=["model", "epoch", "split", alt.Tooltip("value:Q", format=".4f")],
        )
        column.altair_chart(chart, width="stretch")


def model_ui(usable) -> None:
    names = [entry.name for entry in usable]
    accuracies = [entry.run.test_accuracy or 0.0 for entry in usable]
    name = st.selectbox("Look closer at", names, index=accuracies.index(max(accuracies)),
                        key="evaluate_model")
    entry = next(entry for entry in usable if entry.name == name)
    test = entry.card.get("test")
    if not test:
        st.warning(f"{name} has no test results in its card.")
        return
    accuracy, loss, correct, incorrect = st.columns(4)
    accuracy.metric("Test accuracy", f"{test['accuracy']:.2%}")
    loss.metric("Test loss", f"{test['loss']:.4f}")
    correct.metric("Correct", f"{test['correct']:,}")
    incorrect.metric("Incorrect", f"{test['incorrect']:,}")
    # One above the other: side by side, a 1,280 px screen cut off the matrix's last column.
    cell = confusion_ui(name, test["confusion"])
    st.markdown("**Per digit**")
    st.dataframe(pd.DataFrame(per_class_rows(test)), hide_index=True, width="stretch", placeholder="—",
                 column_config=PER_CLASS_COLUMNS)
    mistakes_ui(entry, cell)


def confusion_ui(name: str, confusion) -> tuple[int, int] | None:
    """The confusion matrix; returns the picked (true, predicted) cell or None."""
    st.markdown("**Confusion matrix** — rows: true digit, columns: predicted. Click a cell to see "
                "those test images.")
    key = f"evaluate_confusion_{name}"
    if key not in st.session_state:
        worst = most_confused(confusion)
        if worst is not None:  # start on the most common mistake
            st.session_state[key] = {"selection": {"cells": [[worst[0], str(worst[1])]]}}
    frame = pd.DataFrame(confusion, columns=DIGITS, index=pd.Index(DIGITS, name="true"))
    styled = frame.style.apply(lambda _: pd.DataFrame(confusion_styles(confusion), index=frame.index,
                                                      columns=frame.columns), axis=None)
    event = st.dataframe(styled, key=key, on_select="rerun", selection_mode="single-cell",
                         width="content", height=35 * 11 + 3, column_config=MATRIX_COLUMNS)
    cells = event.selection.get("cells", []) if event else []
    if not cells:
        return None
    row, column = cells[0]
    return int(row), int(column)


def mistakes_ui(entry, cell: tuple[int, int] | None) -> None:
    if cell is None:
        st.info("Click an off-diagonal cell of the confusion matrix to see those mistakes.")
        return
    true, predicted = cell
    if true == predicted:
        count = entry.card["test"]["confusion"][true][true]
        st.success(f"{count:,} test images of {true} were recognised correctly. The gallery shows "
                   "mistakes: pick a cell off the diagonal.")
        return
    if not entry.card["test"]["confusion"][true][predicted]:  # known from the card: nothing to evaluate
        st.success(f"{entry.name} read no test image of {true} as {predicted}. Pick a cell with a count "
                   "in it to see those mistakes.")
        return
    mistakes = _evaluation(entry.name, entry.card["model_file"], entry.card).mistakes_for(true, predicted)
    st.subheader(f"True {true}, predicted {predicted}: {counted(len(mistakes), 'test image')}")
    if not mistakes:
        return
    st.caption(f"Under each image: its number in the test set, what the model said ({predicted}) with "
               f"its probability, then the probability it gave the true digit ({true}).")
    data, message = load_data()
    shown = mistakes[:GALLERY_LIMIT]
    captions = [_caption(mistake) for mistake in shown]
    if data is None:
        st.error(message)
        st.dataframe(pd.DataFrame({"test image": [m.index for m in shown], "what it said": captions}),
                     hide_index=True)
    else:
        # A card scored on another copy of the test set may name images this server's copy lacks.
        present = [(m, caption) for m, caption in zip(shown, captions, strict=True) if 0 <= m.index < len(data.x_test)]
        if present:
            st.image([enlarge(data.x_test[m.index], THUMBNAIL) for m, _ in present], width=THUMBNAIL,
                     caption=[caption for _, caption in present])
        if len(present) < len(shown):
            st.caption(f"{len(shown) - len(present)} of these are not in this server's MNIST test set "
                       f"({len(data.x_test):,} images): the model was scored on another copy of it.")
    if len(mistakes) > GALLERY_LIMIT:
        st.caption(f"Showing the first {GALLERY_LIMIT} of {len(mistakes)}.")


def _caption(mistake) -> str:
    (said, said_probability), *_ = top_guesses(mistake.probabilities, 1)
    true_probability = mistake.probabilities[mistake.label]
    return f"#{mistake.index}: {said} {said_probability:.0%}, {mistake.label} {true_probability:.0%}"


@st.cache_resource(max_entries=16, show_spinner=False)
def _evaluation(name: str, model_file: str, _card) -> Evaluation:
    return Evaluation.from_dict(_card["test"])


render()
