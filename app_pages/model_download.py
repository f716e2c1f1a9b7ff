"""The Evaluate page's "Take your model home": a model's ``.keras`` file and its run card as downloads.

The file is read only when the button is pressed (a callable download), so the page does not ship
megabytes to the browser on every visit. ``digitlab export`` gives the same file, or a TFLite one.
"""

from __future__ import annotations

import json

import streamlit as st

from app_pages.common import get_store


def model_download_ui(usable) -> None:
    """Pick a model; download its weights file and run card."""
    st.subheader("Take your model home")
    names = [entry.name for entry in usable]
    name = st.selectbox("Model to download", names, key="evaluate_download_model")
    entry = next(entry for entry in usable if entry.name == name)
    path = get_store().root / entry.card["model_file"]
    weights, card = st.columns(2)
    weights.download_button(f"{name}.keras ({entry.card.get('model_bytes', 0) / 2**20:.1f} MB)",
                            data=lambda: path.read_bytes(), file_name=f"{name}.keras",
                            mime="application/octet-stream", icon=":material/download:",
                            key="evaluate_download_keras", on_click="ignore")
    card.download_button(f"{name}.json (run card)", data=json.dumps(entry.card, indent=1),
                         file_name=f"{name}.json", mime="application/json", icon=":material/description:",
                         key="evaluate_download_card", on_click="ignore")
    st.caption("Load it with `keras.saving.load_model(path)`; for phones, "
               f"`python -m digitlab export {name} --format tflite --output {name}.tflite` writes a TFLite "
               "file checked against the Keras answers.")
