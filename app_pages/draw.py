"""Draw (the home page): draw, upload or pick a digit and see what the models make of it.

The canvas and everything computed from it live in one fragment, so a stroke reruns only that
part of the page: preprocess the picture, one direct model call per model and, when "Look inside"
is on, the preprocessing steps, a pixel histogram and a saliency map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from app_pages.common import (
    a_model_is_loaded,
    histogram_chart,
    list_models,
    load_data,
    load_explainer,
    predictor_or_error,
    probability_chart,
    usable_models_or_notice,
)
from app_pages.drawing_pad import drawing_pad
from app_pages.inside import INSIDE_SWITCHES, inside_ui, reading_options
from app_pages.labelling import labelling_ui, your_digits_ui
from app_pages.watch_section import remember_drawing
from digitlab.display import enlarge, heat_overlay, strip
from digitlab.explore import pixel_histogram
from digitlab.images import ImageError, decode_image
from digitlab.reading import PictureReading, Reading, read_input, read_picture, vote
from digitlab.strokes import MNIST_PEN_RATIO

CANVAS_SIZE = 280
# Wide enough that a digit drawn across most of the canvas keeps MNIST-like strokes at 28×28.
DEFAULT_BRUSH = 22
DRAW, UPLOAD, SAMPLE = ":material/draw: Draw", ":material/upload: Upload", ":material/casino: MNIST"
SOURCE_KEY, RAW_KEY, SAMPLE_KEY = "draw_source", "draw_feed_raw", "draw_sample_index"
DETAILS_KEY = "draw_details"
INPUT_SIZE = 84  # px: the 28×28 input next to the answer, 3 screen pixels per pixel
STEP_SIZE = 112  # px: one preprocessing step in the strip
# The page's own CSS. On a phone (Streamlit stacks columns below 640 px) the answer comes after
# the pad: drop the intro line there so that a 390×844 screen shows the pad and the answer together. A phone has no
# keys to press, so the buttons' shortcut hints go, and the label digits become finger-sized.
# A digit button's label is its key already: its shortcut hint ("7 7") goes on every screen.
PAGE_STYLE = ("<style>[class*=st-key-your_wrong_] button kbd { display: none; } "
               "@media (max-width: 640px) { .st-key-draw_intro { display: none; } "
               "[data-testid=stMain] button kbd { display: none; } "
               "[class*=st-key-your_wrong_] button { min-width: 2.75rem; min-height: 2.75rem; "
               "border: 1px solid rgba(128, 128, 128, 0.4); border-radius: 0.5rem; } "
               "[data-testid=stMainBlockContainer] { padding-top: 3.5rem; } "
               "[data-testid=stMainBlockContainer] h1 { font-size: 2rem; padding: 0 0 0.5rem; } "
               "[data-testid=stHorizontalBlock] { gap: 0.5rem; } }</style>")
SALIENCY_METHODS = {"gradient × input": "gradient", "occlusion": "occlusion"}
STEP_CAPTIONS = {
    "grayscale": "1 · your picture (ink bright)",
    "cropped": "2 · cropped to the ink",
    "thickened": "2b · thin strokes widened",
    "scaled": "3 · longer side → 20 px",
    "centred": "4 · centred in 28×28",
}


def render() -> None:
    st.title(":material/draw: Draw a digit")
    st.html(PAGE_STYLE)
    with st.container(key="draw_intro"):  # keyed: a phone drops it, to fit the answer on screen with the pad
        st.caption(
            "Draw a digit from 0 to 9 in the black square. The answer updates after every stroke: "
            "your drawing is turned into a 28×28 picture like the MNIST digits the models learned from."
        )
    usable = usable_models_or_notice()
    if not usable:
        return
    chosen, compare = model_controls(usable)
    drawing_fragment(chosen, compare)
    your_digits_ui()
    # Load the model (and TensorFlow) now, after the page is on screen, rather than on the first
    # stroke: a stroke made meanwhile is answered as soon as this finishes.
    entry = next(entry for entry in usable if entry.name == chosen)
    if predictor_or_error(entry)[0] is not None:
        load_explainer(entry.name, entry.card["model_file"])


def model_controls(usable) -> tuple[str, bool]:
    """The model picker and the Compare switch; returns (model name, compare)."""
    headlines = {entry.name: entry.headline for entry in usable}
    accuracies = [entry.run.test_accuracy or 0.0 for entry in usable]
    best = accuracies.index(max(accuracies))
    pick, switch = st.columns([3, 1], vertical_alignment="bottom")
    chosen = pick.selectbox("Model", list(headlines), index=best, format_func=headlines.get, key="draw_model",
                            help="Every usable model in the store: shipped ones first, then yours.")
    compare = switch.toggle("Compare all models", key="draw_compare",
                            help="Run the same picture through every model at once.")
    return chosen, compare


@dataclass(frozen=True)
class Answer:
    """The picture as read for the chosen model, and that model's reading of it."""

    predictor: object
    picture: PictureReading
    reading: Reading

    @property
    def model_input(self) -> np.ndarray:
        return self.picture.model_input


@st.fragment
def drawing_fragment(chosen: str, compare: bool) -> None:
    keep_switches()
    entries = {entry.name: entry for entry in list_models() if entry.usable}
    if chosen not in entries:
        st.warning(f"The model {chosen!r} is gone from the store; pick another one.")
        return
    picture_column, answer_column = st.columns([1, 1.4], gap="large")
    with picture_column:
        picture, true_label = picture_ui()
    with answer_column:
        # The chart keeps its place with or without an answer, so after a Clear the browser
        # refills its bars instead of building a new chart.
        head, bars = st.container(), st.empty()
        st.caption("The model's last layer is a softmax: one probability per digit, adding up to "
                   "100 %. The answer is the tallest bar.")
    with head:
        answer = answer_ui(entries[chosen], picture, true_label)
    if answer is not None:
        remember_drawing(answer.model_input, answer.reading.digit)  # the Train page can watch it learn
    bars.vega_lite_chart(*probability_chart(answer and answer.reading.probabilities, height=230), width="stretch")
    with answer_column:
        labelling_ui(answer, entries)
    if st.session_state.get(SOURCE_KEY, DRAW) == DRAW:
        pad_settings_ui()
    if answer is None:
        return
    if compare:
        compare_ui(list(entries.values()), answer.model_input)
    # The steps, histogram and saliency map on request: they double what a browser redraws per stroke.
    if not st.toggle("Look inside: the preprocessing steps, the pixel histogram and the saliency map",
                     key=DETAILS_KEY, help="How your picture became the 28×28 input, and which of its "
                                           "pixels pushed the model towards its answer."):
        return
    sees_column, why_column = st.columns([1.6, 1], gap="large")
    with sees_column:
        model_sees_ui(entries[chosen], answer)
    with why_column:
        why_ui(entries[chosen], answer)
    inside_ui(entries, chosen, answer.model_input, compare)


def keep_switches() -> None:
    """Keep Look inside and its views switched on across a run that does not show them (a Clear,
    an upload not yet chosen): Streamlit forgets a widget's value when a run skips the widget,
    but not a value the page itself put in the session."""
    for key in (DETAILS_KEY, *INSIDE_SWITCHES):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


# -- the picture ------------------------------------------------------------------------------
def picture_ui():
    """The input chooser and the chosen input; returns (picture or None, true label or None)."""
    st.session_state.setdefault(SOURCE_KEY, DRAW)  # the random button's callback may set it too
    source = st.segmented_control("Input", [DRAW, UPLOAD, SAMPLE], required=True, key=SOURCE_KEY,
                                  label_visibility="collapsed")
    if source == UPLOAD:
        return upload_ui(), None
    if source == SAMPLE:
        return sample_ui()
    return canvas_ui(), None


def canvas_ui():
    """The pad; returns the picture the models read: a drawing whose pen is heavy for its size is
    redrawn from its strokes with MNIST's pen, which keeps the loops the wide pen filled."""
    width = st.session_state.get("draw_brush", DEFAULT_BRUSH)  # the slider is drawn below
    try:
        sent = drawing_pad("draw_pad", brush=width, size=CANVAS_SIZE)
    except ImageError as error:  # only a forged message gets here; the pad always sends a PNG
        st.error(f"The drawing could not be read: {error}.")
        return None
    if sent is None:
        return None
    if sent.strokes is None or not sent.strokes.is_heavy:
        return sent.picture
    st.caption(f":material/brush: The pen is heavy for a digit this size ({sent.strokes.pen_ratio:.0%} of it), "
               f"so the models read your strokes redrawn with MNIST's pen ({MNIST_PEN_RATIO:.0%}), which keeps "
               "loops and flags apart. Draw it larger, or with a thinner brush, to have your own strokes read.")
    return sent.strokes.for_reading().picture()


def pad_settings_ui() -> None:
    """The brush and the random-digit button, below the pad and the answer (on a phone the answer
    then sits right under the pad)."""
    brush, sample = st.columns([2, 1], vertical_alignment="bottom")
    with brush:
        st.slider("Brush width", 6, 40, DEFAULT_BRUSH, key="draw_brush",
                  help="MNIST strokes are about an eighth of the digit's height; very thin strokes are "
                       "widened by the preprocessing, and a pen over a fifth of the digit is redrawn thinner "
                       "from your strokes.")
    with sample:
        random_button()


def upload_limit_text() -> str:
    """The upload limit as the browser applies it: ``server.maxUploadSize`` MB of 10^6 bytes.

    Streamlit's uploader counts 1,000 bytes to the kB outside Windows (1,024 on Windows) and
    says "16.0MB"; a file manager showing 1,024-based sizes calls a refused 16.3 MB file "15.5
    MB". The exact byte count is the one figure every visitor can check.
    """
    megabytes = int(st.get_option("server.maxUploadSize"))
    return f"at most {megabytes} MB ({megabytes * 10**6:,} bytes, {megabytes * 10**6 / 2**20:.2f} MiB)"


def upload_ui():
    # No type filter: a file the uploader refused by its name would leave the previous picture and
    # its answer on screen; every file reaches the decoder instead, which says what is wrong with it.
    uploaded = st.file_uploader("Upload a picture of one digit (PNG or JPEG, dark on light or light on "
                                f"dark, {upload_limit_text()})", key="draw_upload")
    if uploaded is None:
        st.info("Upload a picture to see what the models make of it.")
        return None
    try:
        picture = decode_image(uploaded.getvalue())
    except ImageError as error:
        st.error(f"**{uploaded.name}** cannot be used: {error}.")
        return None
    st.image(picture, caption=uploaded.name, width=CANVAS_SIZE)
    return picture


def sample_ui():
    data, _ = load_data()
    random_button()
    if data is None:
        return None, None
    if st.session_state.get(SAMPLE_KEY, len(data.x_test)) >= len(data.x_test):
        _new_sample_index()  # arriving here without one
    index = st.session_state[SAMPLE_KEY]
    label = int(data.y_test[index])
    st.image(enlarge(data.x_test[index], CANVAS_SIZE), width=CANVAS_SIZE,
             caption=f"MNIST test image #{index} — labelled {label}")
    return data.x_test[index], label


def random_button() -> None:
    data, message = load_data()
    st.button("Random MNIST test digit", icon=":material/casino:", key="draw_random", on_click=_pick_sample,
              disabled=data is None, help=None if data is None else "Put a real MNIST test digit in.")
    if data is None:
        st.caption(f"The random digit needs MNIST. {message}")


def _pick_sample() -> None:
    """The random button's callback: a new sample, and switch the input to it."""
    _new_sample_index()
    st.session_state[SOURCE_KEY] = SAMPLE


def _new_sample_index() -> None:
    data, _ = load_data()
    if data is not None:
        st.session_state[SAMPLE_KEY] = int(np.random.default_rng().integers(len(data.x_test)))


# -- the answer -------------------------------------------------------------------------------
def answer_ui(entry, picture: np.ndarray | None, true_label: int | None) -> Answer | None:
    """The chosen model's answer and the 28×28 input it got, or why there is none."""
    if picture is None:
        if st.session_state.get(SOURCE_KEY, DRAW) != DRAW:
            return None
        if a_model_is_loaded():
            st.info("Draw a digit in the black square: the answer appears after each stroke.",
                    icon=":material/draw:")
        else:  # this message stays up until the load ends: a stroke made meanwhile waits for it
            st.info("Loading the model: the first answer after the server starts takes about ten "
                    "seconds. Draw meanwhile: your digit is answered as soon as the model is ready.",
                    icon=":material/hourglass_top:")
        return None
    predictor, error = predictor_or_error(entry)
    if predictor is None:
        st.error(f"**{entry.name}** cannot be used: {error}")
        return None
    feed_raw = st.session_state.get(RAW_KEY, False)  # the toggle itself is under "Look inside"
    try:
        read = read_picture(picture, {entry.name: predictor}, feed_raw=feed_raw, **reading_options([entry]))
    except ValueError as error:
        st.error(f"This picture cannot be used: {error}")
        return None
    if read.model_input is None:
        st.info(f"{read.message[:1].upper()}{read.message[1:]}.", icon=":material/draw:")
        return None
    reading = read.readings[entry.name]
    number, sure, seen = st.columns([1, 1, 1], vertical_alignment="center")
    number.metric("Prediction", "—" if reading.digit is None else str(reading.digit),
                  help=f"The most probable digit according to {entry.name}.")
    # A declined reading has no answer to be sure of: its top probability is in the warning below.
    sure.metric("Confidence", "—" if reading.digit is None else f"{reading.confidence:.1%}",
                help="The probability the model gives its answer (temperature-scaled when its card has a "
                     "calibration, see Evaluate → Honest confidence).")
    seen.image(enlarge(read.model_input, INPUT_SIZE), width=INPUT_SIZE,
               caption="its 28×28 input" + (" (squashed, not preprocessed)" if feed_raw else ""))
    if reading.digit is None:
        st.warning(f"**Not a digit?** {reading.reason[:1].upper()}{reading.reason[1:]}. Its closest digit would "
                   f"be {reading.top_digit} ({reading.confidence:.0%} of its softmax).", icon=":material/help:")
    elif not reading.sure:
        runner_up, runner_up_probability = reading.runner_up()
        st.warning(f"**Low confidence** — {entry.name} is not sure. Its second guess is "
                   f"{runner_up} ({runner_up_probability:.0%}). Try a clearer, larger digit.")
    if read.prepared.advice and true_label is None:  # advice on drawing, not on MNIST's own digits
        st.info(f"{read.prepared.advice[:1].upper()}{read.prepared.advice[1:]}.", icon=":material/brush:")
    if true_label is not None:
        verdict = "correct" if reading.digit == true_label else f"wrong, it is a {true_label}"
        st.caption(f"MNIST says this is a {true_label}: {verdict}.")
    return Answer(predictor, read, reading)


def compare_ui(entries, model_input: np.ndarray) -> dict[str, Reading]:
    """Every model's answer on the same input, side by side, and whether they agree."""
    st.subheader(":material/compare: Every model on the same picture")
    loaded = [(entry, *predictor_or_error(entry)) for entry in entries]
    ready = [entry for entry, predictor, _ in loaded if predictor is not None]
    # One reading of the input for all models: the "not a digit" verdict is the input's, not a model's.
    predictors = {entry.name: predictor for entry, predictor, _ in loaded if predictor is not None}
    readings = read_input(model_input, predictors, **reading_options(ready))
    for (entry, predictor, error), column in zip(loaded, st.columns(len(entries)), strict=True):
        with column:
            st.markdown(f"**{entry.name}**")
            st.caption(f"{entry.run.architecture} · {entry.run.parameters or 0:,} parameters")
            if predictor is None:
                st.error(error)
                continue
            reading = readings[entry.name]
            st.metric(f"{entry.name} says", "—" if reading.digit is None else str(reading.digit),
                      f"closest: {reading.top_digit}" if reading.digit is None else f"{reading.confidence:.0%} sure",
                      delta_color="off", delta_arrow="off")
            st.vega_lite_chart(*probability_chart(reading.probabilities, height=150), width="stretch")
            if reading.digit is None:
                st.caption(f"Not a digit? {reading.reason[:1].upper()}{reading.reason[1:]}.")
    verdict = vote_verdict(readings)
    if verdict:
        kind, text, icon = verdict
        getattr(st, kind)(text, icon=icon)
    return readings


def vote_verdict(readings: dict[str, Reading]) -> tuple[str, str, str] | None:
    """(kind of box, text, icon) saying whether the models agree, naming any model that declined to
    name a digit; None when there is nothing to compare (one model)."""
    result = vote(readings)
    declined = [name for name, reading in readings.items() if reading.digit is None]
    aside = f" ({', '.join(declined)}: not a digit)" if declined else ""
    if not result.camps:
        return ("info", "No model names a digit here: it does not look like one.", ":material/help:") \
            if declined else None
    if result.split:
        camps = "; ".join(f"**{digit}** from {', '.join(names)}" for digit, names in result.camps)
        digit, probability = result.average
        return ("warning", f"The models disagree: {camps}{aside}. Their answers averaged say **{digit}** "
                           f"({probability:.0%}).", ":material/warning:")
    digit, names = result.camps[0]
    if len(names) == 1:
        return ("info", f"Only {names[0]} names a digit: **{digit}**{aside}.", ":material/help:") \
            if declined else None
    who = f"All {len(names)} models agree" if not declined else f"The {len(names)} models that name a digit agree"
    return "success", f"{who}: it is a **{digit}**{aside}.", ":material/check_circle:"


# -- what the model sees, and why ---------------------------------------------------------------
def model_sees_ui(entry, answer: Answer) -> None:
    st.subheader(":material/visibility: What the model sees")
    st.caption("MNIST's recipe: crop the digit to its ink, scale its longer side to 20 px, then put "
               "its centre of mass in the middle of a 28×28 field.")
    steps = answer.picture.prepared.steps
    st.image(strip(list(steps.values()), STEP_SIZE), width="stretch",
             caption="   →   ".join(STEP_CAPTIONS.get(name, name) for name in steps))
    feed_raw = st.toggle("Feed the raw squashed picture instead (skip the preprocessing)", key=RAW_KEY,
                         help="Shrink the whole picture to 28×28 as it is — what a naive app would do.")
    fed, other = st.columns(2)
    read = answer.picture
    for column, image, label, is_fed in ((fed, read.prepared.image, "MNIST-style input", not feed_raw),
                                         (other, read.squashed_input(), "squashed canvas", feed_raw)):
        # The fed one is the answer itself; only the other input needs a model call.
        reading = answer.reading if is_fed else read_input(image, {entry.name: answer.predictor})[entry.name]
        marker = "fed to the model" if is_fed else "not used"
        column.image(enlarge(image, 140), width=140,
                     caption=f"{label}: {entry.name} says {reading.top_digit} ({reading.confidence:.0%}) — {marker}")
    histogram_ui(answer.model_input)


def histogram_ui(image: np.ndarray) -> None:
    histogram = pixel_histogram(image)
    st.vega_lite_chart(histogram_chart(histogram["rows"], height=140), width="stretch")
    st.caption(f"Pixel values of the model's input: {histogram['background']} of "
               f"{histogram['pixels']} pixels are pure background (0) and not drawn.")


def why_ui(entry, answer: Answer) -> None:
    st.subheader(":material/lightbulb: Why")
    label = st.radio("Method", list(SALIENCY_METHODS), horizontal=True, key="draw_saliency",
                     label_visibility="collapsed")
    explainer = load_explainer(entry.name, entry.card["model_file"])
    digit = answer.reading.top_digit
    heat = explainer.saliency(answer.model_input, digit, SALIENCY_METHODS[label])
    st.image(heat_overlay(answer.model_input, heat, 280), width=280,
             caption=f"Pixels that pushed {entry.name} towards {digit} (yellow = most)")
    if label == "occlusion":
        st.caption("Occlusion: a 4×4 black patch slides over the picture; where hiding the ink "
                   "lowers the model's score for its answer most, the map is hottest.")
    else:
        st.caption("Gradient × input: how much the model's score for its answer would rise if each "
                   "pixel's ink grew, times the ink that is there.")


render()
