"""What every page shares: the model store, cached models, MNIST, and the usual messages.

Models and data are loaded once per process with ``st.cache_resource`` and shared by every
session, so they are treated as read-only. The store listing is re-read whenever a file in the
store folder changes (a cheap ``scandir`` per rerun), so a model trained in another session or
from the command line appears without restarting the server, and a retrained model (a new
weights file name) is loaded afresh.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading

import streamlit as st

from digitlab.data import ENV_VAR, DataNotFoundError, Mnist, load_mnist
from digitlab.store import ModelEntry, ModelStore, StoreError

NO_MODELS_MESSAGE = (
    "No models yet — train one on the **Train** page or run `python -m digitlab train`."
)
# The Train page's "Watch run" choice: the run a visitor just queued (a training or a fine-tune) is watched.
WATCH_KEY = "train_watch"
# Visitors are told what is missing, not where the server looks for it: the paths, the variable
# and the fix go to the server's log, where the operator reads them.
NO_DATA_MESSAGE = "MNIST is not available on this server, so the parts that need it are off."
NO_DATA_HINT = (
    "Set the environment variable DIGITLAB_MNIST to an mnist.npz (Keras layout) or a folder "
    "with the four original IDX files, then restart the app, e.g. "
    "DIGITLAB_MNIST=/path/to/mnist.npz streamlit run streamlit_app.py"
)
SERVER_PATH = re.compile(r"(?<![\w.~])(?:~|[A-Za-z]:)?[/\\](?:[^\s'\"(),:;/\\]+[/\\])*[^\s'\"(),:;/\\]+")
HIDDEN_PATH = "[a path on the server]"
LOG = logging.getLogger("digitlab.app")


def counted(count: int, word: str) -> str:
    """ "1 epoch", "6 epochs": a count with its noun, singular for one. """
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def for_visitors(text: str) -> str:
    """``text`` with every file path replaced: a visitor need not learn the server's folders."""
    return SERVER_PATH.sub(HIDDEN_PATH, text)


def logged_for_visitors(error: BaseException | str, context: str) -> str:
    """Log ``error`` in full for the operator; return the visitor's version of it (no paths)."""
    LOG.warning("%s: %s", context, error)
    return for_visitors(str(error))


def show_outcome(feedback: tuple[str, str] | None) -> None:
    """What a button press led to: a success as a toast, which goes by itself (the queue below
    goes on showing the run), a warning or an error where the page is, until the next rerun."""
    if not feedback:
        return
    kind, text = feedback
    if kind == "success":
        st.toast(text, icon=":material/check_circle:", duration="long")
    else:
        getattr(st, kind)(text)


def keep_keras_session() -> None:
    """Stop Streamlit from resetting Keras after every run of a page or fragment.

    Streamlit calls ``keras.backend.clear_session()`` at the end of each run, to free models an app
    builds in that run. This app builds none there (models are loaded once and cached, training
    runs in a child process), and the call cost about 300 ms of CPU per stroke and per Clear,
    measured with py-spy on the server: two thirds of all its CPU time under drawing.
    Call it once TensorFlow is loaded; it does nothing before.
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session = _no_session_reset


def _no_session_reset(*_args, **_kwargs) -> None:
    """Stands in for ``keras.backend.clear_session`` in the web process (see keep_keras_session)."""


def get_store() -> ModelStore:
    """The model store: ``$DIGITLAB_MODELS`` or ``models/`` (a plain path holder, cheap to make)."""
    return ModelStore()


def list_models() -> list[ModelEntry]:
    """Every model in the store, shipped first; re-read only when the folder's files change."""
    store = get_store()
    return _cached_listing(str(store.root), _folder_signature(store.root))


def _folder_signature(root) -> tuple:
    """Names, sizes and modification times of the store's files: changes when any file does."""
    try:
        with os.scandir(root) as entries:
            stats = [(entry.name, entry.stat()) for entry in entries if entry.is_file()]
    except OSError:
        return ()
    return tuple(sorted((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats))


_A_MODEL_LOADED = threading.Event()  # one per server process, as TensorFlow's import is


@st.cache_resource(max_entries=4, show_spinner=False)
def _cached_listing(root: str, signature: tuple) -> list[ModelEntry]:
    return ModelStore(root).list()


@st.cache_resource(max_entries=16, show_spinner="Loading the model…")
def _cached_predictor(root: str, name: str, model_file: str):
    from digitlab.inference import Predictor  # late: TensorFlow is only needed once a model is

    return Predictor(ModelStore(root).load(name))


@st.cache_resource(max_entries=16, show_spinner="Preparing the saliency map…")
def _cached_explainer(root: str, name: str, model_file: str):
    from digitlab.saliency import Explainer

    return Explainer(_cached_predictor(root, name, model_file))


def load_explainer(name: str, model_file: str):
    """The :class:`~digitlab.saliency.Explainer` of ``name``, built once per weights file."""
    return _cached_explainer(str(get_store().root), name, model_file)


def load_predictor(name: str, model_file: str):
    """The :class:`~digitlab.inference.Predictor` of ``name``, loaded once per weights file.

    Raises:
        StoreError: the model cannot be loaded (not cached: the next rerun tries again).
    """
    predictor = _cached_predictor(str(get_store().root), name, model_file)
    _A_MODEL_LOADED.set()
    return predictor


def a_model_is_loaded() -> bool:
    """Whether this server has loaded a model yet. The first one waits for TensorFlow's import
    (5-10 s on two cores); every later one takes a fraction of a second."""
    return _A_MODEL_LOADED.is_set()


def predictor_or_error(entry: ModelEntry):
    """(predictor, None) or (None, why it cannot be used) for a listed model."""
    if not entry.usable:
        return None, for_visitors(entry.error)
    try:
        return load_predictor(entry.name, entry.card["model_file"]), None
    except StoreError as error:
        return None, logged_for_visitors(error, f"model {entry.name!r} cannot be loaded")


def mnist_path() -> str | None:
    """Where the server was told MNIST is (``$DIGITLAB_MNIST``); None lets ``load_mnist`` search."""
    return os.environ.get(ENV_VAR) or None


@st.cache_resource(show_spinner="Loading MNIST…")
def _cached_mnist(path: str | None) -> Mnist:
    return load_mnist(path, allow_download=False)


def load_data() -> tuple[Mnist | None, str]:
    """(MNIST, "") or (None, a short message for visitors); the log gets why and how to fix it."""
    try:
        return _cached_mnist(mnist_path()), ""
    except (DataNotFoundError, ValueError) as error:
        _log_missing_data(str(error))
        return None, NO_DATA_MESSAGE


@st.cache_resource(max_entries=8, show_spinner=False)
def _log_missing_data(reason: str) -> None:
    """Log why MNIST is missing once per reason, not on every rerun of every session."""
    LOG.warning("MNIST is not available: %s. %s", reason, NO_DATA_HINT)


def mnist_training_set_size() -> int:
    """How many training images the cached MNIST has; raises ``DataNotFoundError`` without one."""
    return len(_cached_mnist(mnist_path()).y_train)


def usable_models_or_notice() -> list[ModelEntry]:
    """The usable models; warns about broken ones and says how to get models when there are none."""
    entries = list_models()
    usable = [entry for entry in entries if entry.usable]
    if not usable:
        st.info(NO_MODELS_MESSAGE)
    show_unusable(entries)
    return usable


def show_unusable(entries: list[ModelEntry]) -> None:
    """Warn about models whose card or file is broken; the others keep working."""
    broken = [entry for entry in entries if not entry.usable]
    if broken:
        lines = "\n".join(f"- **{entry.name}**: {for_visitors(entry.error)}" for entry in broken)
        st.warning(f"{len(broken)} model(s) cannot be used:\n{lines}")


def probability_chart(probabilities, *, height: int = 220) -> tuple[dict, dict]:
    """The ten class probabilities as (data, Vega-Lite spec): bars, the winner highlighted, y 0–100 %.

    ``None`` gives ten empty bars. The data travels apart from a spec that never changes, so the
    browser puts new bars into the chart it has instead of building a new one on every stroke.
    A plain spec, not Altair: Altair validates every chart against its schema (~50 ms each).
    """
    values = [0.0] * 10 if probabilities is None else [float(p) for p in probabilities]
    winner = values.index(max(values)) if max(values) > 0 else -1
    data = {"digit": [str(digit) for digit in range(10)], "probability": values,
            "winner": [digit == winner for digit in range(10)]}
    spec = {
        "height": height,
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "digit", "type": "nominal", "sort": None, "axis": {"labelAngle": 0}},
            "y": {"field": "probability", "type": "quantitative", "scale": {"domain": [0, 1]},
                  "axis": {"format": "%"}},
            "color": {"condition": {"test": "datum.winner", "value": "#e4572e"}, "value": "#8a94a6"},
        },
    }
    return data, spec


def histogram_chart(rows: list[dict], *, height: int = 160) -> dict:
    """A Vega-Lite histogram of pre-binned rows {from, to, count} (see digitlab.explore)."""
    return {
        "height": height,
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "x": {"field": "from", "type": "quantitative", "bin": "binned",
                  "title": "pixel value (0 = black, 1 = white)"},
            "x2": {"field": "to"},
            "y": {"field": "count", "type": "quantitative", "title": "pixels"},
        },
    }
