"""The Draw page's deeper "Look inside" views: the layers, the robustness probe, where a drawing lands.

Each view is behind its own switch and is computed only when it is on, so the default Draw view
pays nothing for them. All numbers come from the ``digitlab`` package; this module lays them out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app_pages.common import (
    get_store,
    load_data,
    load_explainer,
    load_predictor,
    logged_for_visitors,
    predictor_or_error,
)
from digitlab.display import enlarge, heat_overlay, map_grid, png_data_url
from digitlab.feature_novelty import FeatureCheck, load_check, stats_path
from digitlab.novelty import NoveltyDetector, default_path, load_detector
from digitlab.probe import probe
from digitlab.store import StoreError

# digitlab.layers and digitlab.neighbours import TensorFlow, which takes 5-10 s on two cores. The
# Draw page imports this module before it draws anything and loads TensorFlow only once its pad is
# on screen (draw.render), so they are imported in the functions below, behind Look inside's switches.
if TYPE_CHECKING:
    from digitlab.layers import LayerInspector, LayerOutput
    from digitlab.neighbours import FeatureSpace

PROBE_PANEL_WIDTH = 125  # px; two panels a row
LAYERS_KEY, PROBE_KEY, LANDS_KEY, WHY_NOT_KEY = "inside_layers", "inside_probe", "inside_lands", "inside_why_not"
INSIDE_SWITCHES = (LAYERS_KEY, PROBE_KEY, WHY_NOT_KEY, LANDS_KEY)
SPACE_TRAIN = 10_000  # training digits searched for neighbours
SPACE_MAP = 3_000  # test digits on the map
NEIGHBOUR_SIZE = 84
MAP_COLUMNS = 8
NARROW_MAP_COLUMNS = 5  # beside two other models: 5 maps of MAP_CELL px fit a third of a 1,280 px page
MAP_CELL = 40  # px per feature map in the grid
FILTERS_SHOWN = 32  # of the MLP's 1,024 templates
ENLARGED = 196  # px: one feature map, enlarged


def reading_options(entries) -> dict:
    """The "not a digit" detectors (the store's and each model's own) and each model's calibration,
    for ``read_picture``/``read_input``."""
    return {"novelty": load_novelty(), "calibrations": {entry.name: entry.run.calibration for entry in entries},
            "feature_checks": {entry.name: feature_check(entry) for entry in entries}}


def feature_check(entry) -> FeatureCheck | None:
    """The model's own "not a digit" test (re-read when its statistics change), or None without one."""
    model_file = (entry.card or {}).get("model_file")
    if not model_file:
        return None
    path = stats_path(get_store().root, model_file)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _cached_feature_check(str(get_store().root), entry.name, model_file, stamp)


@st.cache_resource(max_entries=16, show_spinner=False)
def _cached_feature_check(root: str, name: str, model_file: str, stamp: int) -> FeatureCheck | None:
    try:
        return load_check(root, name, model_file, load_predictor(name, model_file).model)
    except (OSError, ValueError, StoreError) as error:
        logged_for_visitors(error, f"{name}'s feature statistics are not used")
        return None


def load_novelty() -> NoveltyDetector | None:
    """The store's ``novelty.npz`` detector (re-read when the file changes), or None without one."""
    path = default_path(get_store().root)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return None
    return _cached_novelty(str(path), stamp)


@st.cache_resource(max_entries=2, show_spinner=False)
def _cached_novelty(path: str, stamp: int) -> NoveltyDetector | None:
    try:
        return load_detector(path)
    except (OSError, ValueError):
        return None


def inside_ui(entries: dict, chosen: str, model_input: np.ndarray, compare: bool) -> None:
    """The switches for the heavier views and, for each switch that is on, its view."""
    models = list(entries.values()) if compare else [entries[chosen]]
    if st.toggle("Layers: every layer's output for this drawing", key=LAYERS_KEY,
                 help="Feature maps of the convolutions, pooling, the dense layers' activations and the "
                      "softmax, with each layer's shape and parameter count."):
        side_by_side(models, lambda entry: layers_ui(entry, model_input, narrow=len(models) > 1))
    if st.toggle("Robustness probe: move, turn, resize, thicken and erase the drawing", key=PROBE_KEY,
                 help="Every model's probability of its answer as the 28×28 input is changed step by step."):
        probe_ui(list(entries.values()), model_input)
    if st.toggle("Why not another digit?", key=WHY_NOT_KEY,
                 help="The ink that speaks for the answer against a digit you pick, and the ink for that digit."):
        why_not_ui(entries[chosen], model_input)
    if st.toggle("Where your drawing lands: nearest training digits and a map", key=LANDS_KEY,
                 help="The training digits the model finds most alike, and a 2-D map of how it sorts digits."):
        side_by_side(models, lambda entry: lands_ui(entry, model_input))


def side_by_side(models, view) -> None:
    """``view(entry)`` for one model, or for each model in its own column (Compare mode)."""
    if len(models) == 1:
        view(models[0])
        return
    for entry, column in zip(models, st.columns(len(models)), strict=True):
        with column:
            st.markdown(f"**{entry.name}**")
            view(entry)


@st.cache_resource(max_entries=16, show_spinner="Tracing the layers…")
def _cached_inspector(root: str, name: str, model_file: str) -> LayerInspector:
    from digitlab.layers import LayerInspector

    return LayerInspector(load_predictor(name, model_file).model)


@st.cache_resource(max_entries=16, show_spinner=False)
def _cached_filters(root: str, name: str, model_file: str) -> tuple[str, np.ndarray]:
    from digitlab.layers import first_filters

    return first_filters(load_predictor(name, model_file).model)


def layers_ui(entry, model_input: np.ndarray, *, narrow: bool = False) -> None:
    """One model's architecture summary and each layer's output; ``narrow`` in a column of its own
    beside the other models (Compare mode), where the enlarged map goes under the grid."""
    if predictor_or_error(entry)[0] is None:
        st.error(f"{entry.name} cannot be used.")
        return
    key = (str(get_store().root), entry.name, entry.card["model_file"])
    outputs = _cached_inspector(*key).outputs(model_input)
    st.dataframe(pd.DataFrame([{"layer": o.name, "does": o.kind, "output shape": " × ".join(map(str, o.shape)),
                                "parameters": o.parameters} for o in outputs]),
                 hide_index=True, width="stretch",
                 column_config={"parameters": st.column_config.NumberColumn(format="localized")})
    st.caption(f"{sum(o.parameters for o in outputs):,} parameters in all, learned from MNIST.")
    filters_ui(*_cached_filters(*key))
    for output in outputs:
        layer_ui(entry.name, output, narrow=narrow)


def filters_ui(layer_name: str, filters: np.ndarray) -> None:
    templates = filters.shape[1:] == (28, 28)
    shown = filters[:FILTERS_SHOWN] if templates else filters
    st.markdown(f"**First layer's {'weight templates' if templates else 'filters'}** ({layer_name})")
    st.image(map_grid(shown, MAP_COLUMNS, 56 if templates else 32), width="stretch")
    st.caption("Grey is a zero weight, white a positive one (ink there raises the unit), black a negative one."
               + (f" The first {len(shown)} of {len(filters)} units, each weighing all 784 pixels."
                  if templates else ""))


def layer_ui(model_name: str, output: LayerOutput, *, narrow: bool = False) -> None:
    title = f"**{output.name}** · {' × '.join(map(str, output.shape))} · {output.parameters:,} parameters"
    st.markdown(title + (f" · {output.activation}" if output.activation else ""))
    st.caption(output.role)
    if output.kind in ("Dropout", "Flatten", "Reshape"):
        return  # nothing new to see: the same values (maps or not), laid out again
    if output.is_map:
        maps = output.feature_maps()
        grid_column, big_column = (st.container(), st.container()) if narrow else st.columns([3, 1])
        number_key = f"inside_map_{model_name}_{output.name}"
        with grid_column:
            clicked = map_picker(maps, key=f"{number_key}_grid", columns=NARROW_MAP_COLUMNS if narrow else MAP_COLUMNS)
        st.caption(f"{len(maps)} feature maps, each scaled to its own range (white = strongest). "
                   "Click one to enlarge it.")
        applied_key = f"{number_key}_clicked"
        if clicked is not None and clicked != st.session_state.get(applied_key):
            st.session_state[number_key] = clicked  # a new click; before the number box exists in this run
        st.session_state[applied_key] = clicked
        number = big_column.number_input("Enlarge map", 1, len(maps), 1, key=number_key)
        # At most its own column's width: beside two other models, that is narrower than ENLARGED.
        big_column.image(enlarge(maps[number - 1], ENLARGED), width="stretch" if narrow else ENLARGED,
                         caption=f"map {number}")
    else:
        values = output.values.reshape(-1)
        data = {"unit": list(range(len(values))), "value": [float(v) for v in values]}
        spec = {"height": 120, "mark": {"type": "bar", "tooltip": True},
                "encoding": {"x": {"field": "unit", "type": "ordinal", "axis": None if len(values) > 20 else {}},
                             "y": {"field": "value", "type": "quantitative"}}}
        st.vega_lite_chart(data, spec, width="stretch")


def map_picker(maps: np.ndarray, *, key: str, columns: int = MAP_COLUMNS) -> int | None:
    """The feature maps as a grid of small pictures in one chart; returns the number (from 1) of
    the map clicked in it, or None. One chart, not one image per map: a layer has up to 64."""
    rows = [{"map": number + 1, "column": number % columns, "row": number // columns,
             "picture": png_data_url(enlarge(image, MAP_CELL))} for number, image in enumerate(maps)]
    pick = alt.selection_point(name="map", fields=["map"], on="click", empty=False)
    size = MAP_CELL + 2
    chart = alt.Chart(pd.DataFrame(rows), width=size * min(len(maps), columns),
                      height=size * -(-len(maps) // columns)).mark_image(width=MAP_CELL, height=MAP_CELL).encode(
        x=alt.X("column:O", axis=None), y=alt.Y("row:O", axis=None), url="picture:N",
        tooltip=[alt.Tooltip("map:Q", title="map")],
    ).add_params(pick).configure_view(stroke=None)
    event = st.altair_chart(chart, on_select="rerun", selection_mode="map", key=key, width="content")
    chosen = (event.selection.get("map") or [{}])[0].get("map") if event and event.selection else None
    return int(chosen) if chosen is not None else None


def probe_ui(entries, model_input: np.ndarray) -> None:
    """Every usable model's probability of its own answer across each sweep, in one faceted chart."""
    predictors = {entry.name: predictor for entry in entries
                  if (predictor := predictor_or_error(entry)[0]) is not None}
    results = probe(model_input, predictors)
    rows = [{"sweep": f"{result.name} ({result.unit})", "value": value, "model": f"{name} → {result.digit[name]}",
             "probability": probability, "answer": answer}
            for result in results for name in predictors
            for value, probability, answer in zip(result.values, result.probability[name], result.answer[name],
                                                  strict=True)]
    # Two small panels a row and the legend underneath: about 340 px wide, so that the chart fits
    # a phone's screen and its legend is never cut off at the right of a desktop column.
    lines = alt.Chart(pd.DataFrame(rows), width=PROBE_PANEL_WIDTH, height=110).mark_line(point=True).encode(
        x=alt.X("value:Q", title=None),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%"), title=None),
        color=alt.Color("model:N", title="model → the digit it follows",
                        legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=0)),
        tooltip=["model", "value", alt.Tooltip("probability:Q", format=".1%"), "answer"],
    )
    chart = lines.facet(facet=alt.Facet("sweep:N", title=None, sort=[f"{r.name} ({r.unit})" for r in results]),
                        columns=2).resolve_scale(x="independent")
    st.altair_chart(chart, width="content")
    st.caption("Each model's probability for the digit it reads in your drawing as it is (shift 0, rotation 0°, "
               "scale 1×, pen +0 px, nothing erased). The shift is applied after the preprocessing centred the "
               "digit: it is what centring protects a model from. Hover or tap a point to see the model's answer "
               "there.")


def why_not_ui(entry, model_input: np.ndarray) -> None:
    """Contrastive saliency between the model's answer and a digit the user picks."""
    predictor, error = predictor_or_error(entry)
    if predictor is None:
        st.error(f"{entry.name} cannot be used: {error}")
        return
    answer, probabilities = predictor.predict_one(model_input)
    runner_up = int(np.argsort(probabilities)[-2])
    others = [digit for digit in range(10) if digit != answer]
    other = st.segmented_control(f"Why {answer} and not…", others, default=runner_up, key=f"inside_other_{answer}")
    other = runner_up if other is None else int(other)
    for_answer, for_other = load_explainer(entry.name, entry.card["model_file"]).contrast(model_input, answer, other)
    left, right = st.columns(2)
    left.image(heat_overlay(model_input, for_answer, 224), width=224,
               caption=f"ink that makes it a {answer} rather than a {other}")
    right.image(heat_overlay(model_input, for_other, 224), width=224,
                caption=f"ink that speaks for {other} ({probabilities[other]:.1%})")
    st.caption(f"Gradient × input of the gap between {entry.name}'s scores for {answer} and {other}.")


@st.cache_resource(max_entries=8, show_spinner="Placing MNIST digits…")
def _cached_space(root: str, name: str, model_file: str, data_source: str) -> FeatureSpace:
    from digitlab.neighbours import FeatureSpace

    data, _ = load_data()
    return FeatureSpace(load_predictor(name, model_file).model, data.x_train[:SPACE_TRAIN],
                        data.y_train[:SPACE_TRAIN], data.x_test[:SPACE_MAP], data.y_test[:SPACE_MAP])


def lands_ui(entry, model_input: np.ndarray) -> None:
    """The 8 nearest training digits (cosine, penultimate layer) and the PCA map with the drawing on it."""
    data, message = load_data()
    if data is None:
        st.info(f"This view needs MNIST's digits to compare with. {message}")
        return
    if predictor_or_error(entry)[0] is None:
        st.error(f"{entry.name} cannot be used.")
        return
    space = _cached_space(str(get_store().root), entry.name, entry.card["model_file"], data.source)
    neighbours = space.nearest(model_input)
    st.markdown(f"**The {len(neighbours)} training digits {entry.name} finds most like yours**")
    st.image([enlarge(data.x_train[n.index], NEIGHBOUR_SIZE) for n in neighbours], width=NEIGHBOUR_SIZE,
             caption=[f"{n.label} · {n.similarity:.2f}" for n in neighbours])
    st.caption(f"Similarity is the cosine between {space.dimensions}-number vectors of the layer before the "
               f"softmax, searched over the first {SPACE_TRAIN:,} training digits.")
    x, y = space.place(model_input)
    points = pd.DataFrame({"x": space.map.points[:, 0], "y": space.map.points[:, 1],
                           "digit": space.map.labels.astype(str)})
    cloud = alt.Chart(points).mark_circle(size=12, opacity=0.5).encode(
        x=alt.X("x:Q", title=f"PCA 1 ({space.map.explained[0]:.0%})"),
        y=alt.Y("y:Q", title=f"PCA 2 ({space.map.explained[1]:.0%})"),
        # The legend underneath: beside the map it took most of a Compare-mode column.
        color=alt.Color("digit:N", scale=alt.Scale(scheme="category10"),
                        legend=alt.Legend(orient="bottom", columns=5, title=None)), tooltip=["digit"])
    you = alt.Chart(pd.DataFrame({"x": [x], "y": [y], "label": ["your drawing"]})).mark_point(
        shape="diamond", size=260, filled=True, color="black", stroke="white", strokeWidth=2).encode(
        x="x:Q", y="y:Q", tooltip=["label"])
    st.altair_chart(alt.layer(cloud, you).properties(height=360), width="stretch")
    st.caption(f"{len(points):,} MNIST test digits, coloured by their label, placed by the two main directions "
               "of that layer (PCA); the black diamond is your drawing.")
