"""The Draw page's deeper "Look inside" views: the layers, the robustness probe, where a drawing lands.

Each view is behind its own switch and is computed only when it is on, so the default Draw view
pays nothing for them. All numbers come from the ``digitlab`` package; this module lays them out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app_pages.common import get_store, load_predictor, predictor_or_error
from digitlab.display import enlarge
from digitlab.layers import LayerInspector, LayerOutput, first_filters, map_grid

LAYERS_KEY = "inside_layers"
MAP_COLUMNS = 8
MAP_CELL = 40  # px per feature map in the grid
FILTERS_SHOWN = 32  # of the MLP's 512 templates
ENLARGED = 196  # px: one feature map, enlarged


def inside_ui(entries: dict, chosen: str, model_input: np.ndarray, compare: bool) -> None:
    """The switches for the heavier views and, for each switch that is on, its view."""
    models = list(entries.values()) if compare else [entries[chosen]]
    if st.toggle("Layers: every layer's output for this drawing", key=LAYERS_KEY,
                 help="Feature maps of the convolutions, pooling, the dense layers' activations and the "
                      "softmax, with each layer's shape and parameter count."):
        side_by_side(models, lambda entry: layers_ui(entry, model_input))


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
    return LayerInspector(load_predictor(name, model_file).model)


@st.cache_resource(max_entries=16, show_spinner=False)
def _cached_filters(root: str, name: str, model_file: str) -> tuple[str, np.ndarray]:
    return first_filters(load_predictor(name, model_file).model)


def layers_ui(entry, model_input: np.ndarray) -> None:
    """One model's architecture summary and each layer's output."""
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
        layer_ui(entry.name, output)


def filters_ui(layer_name: str, filters: np.ndarray) -> None:
    templates = filters.shape[1:] == (28, 28)
    shown = filters[:FILTERS_SHOWN] if templates else filters
    st.markdown(f"**First layer's {'weight templates' if templates else 'filters'}** ({layer_name})")
    st.image(map_grid(shown, MAP_COLUMNS, 56 if templates else 32), width="stretch")
    st.caption("Grey is a zero weight, white a positive one (ink there raises the unit), black a negative one."
               + (f" The first {len(shown)} of {len(filters)} units, each weighing all 784 pixels."
                  if templates else ""))


def layer_ui(model_name: str, output: LayerOutput) -> None:
    title = f"**{output.name}** · {' × '.join(map(str, output.shape))} · {output.parameters:,} parameters"
    st.markdown(title + (f" · {output.activation}" if output.activation else ""))
    st.caption(output.role)
    if output.is_map:
        maps = output.feature_maps()
        grid_column, big_column = st.columns([3, 1])
        grid_column.image(map_grid(maps, MAP_COLUMNS, MAP_CELL), width="stretch",
                          caption=f"{len(maps)} feature maps, each scaled to its own range (white = strongest)")
        number = big_column.number_input("Enlarge map", 1, len(maps), 1, key=f"inside_map_{model_name}_{output.name}")
        big_column.image(enlarge(maps[number - 1], ENLARGED), width=ENLARGED, caption=f"map {number}")
    elif output.kind in ("Dropout", "Flatten", "Reshape"):
        return  # nothing new to see: the same values, laid out again
    else:
        values = output.values.reshape(-1)
        data = {"unit": list(range(len(values))), "value": [float(v) for v in values]}
        spec = {"height": 120, "mark": {"type": "bar", "tooltip": True},
                "encoding": {"x": {"field": "unit", "type": "ordinal", "axis": None if len(values) > 20 else {}},
                             "y": {"field": "value", "type": "quantitative"}}}
        st.vega_lite_chart(data, spec, width="stretch")
