"""digitlab's web app: ``streamlit run streamlit_app.py``.

Wiring only: the page config and the navigation. Each page is a thin script in ``app_pages/``
over the ``digitlab`` package; models and data are loaded once per process in
``app_pages/common.py``.
"""

from pathlib import Path

import streamlit as st

from app_pages.common import keep_keras_session

# Our own icon, served by this server: a ":material/…:" page icon makes every visitor's browser
# fetch it from a Google fonts host, and an offline-first app sends nobody anywhere else.
ICON = Path(__file__).resolve().parent / "app_pages" / "static" / "icon.png"

st.set_page_config(page_title="digitlab — handwritten digits", page_icon=ICON, layout="wide")

pages = [
    st.Page("app_pages/draw.py", title="Draw", icon=":material/draw:", default=True),
    st.Page("app_pages/explore.py", title="Explore", icon=":material/grid_view:"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/analytics:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
]
st.navigation(pages).run()
keep_keras_session()  # after the page: the first run that loads TensorFlow has imported Keras by now
