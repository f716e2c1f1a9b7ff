"""Shared fixtures: the real MNIST (sliced for speed) and a throwaway model store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from app_support import clear_streamlit_caches, new_app
from standin_digits import build_standin, write_npz

from digitlab.data import DataNotFoundError, Mnist, load_mnist

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def real_mnist() -> Mnist:
    """The real MNIST, found the way the product finds it ($DIGITLAB_MNIST, the Keras cache, the
    Keras download); the few tests of MNIST's own figures skip without it."""
    try:
        return load_mnist()
    except (DataNotFoundError, ValueError) as error:
        pytest.skip(f"needs the real MNIST: {str(error).split('. ')[0]}")


@pytest.fixture(scope="session")
def mnist(tmp_path_factory) -> Mnist:
    """Handwritten digits in MNIST's layout: the real MNIST when it can be found without a
    download, else the stand-in built from scikit-learn's UCI digits (tests/standin_digits.py)."""
    try:
        return load_mnist(allow_download=False)
    except (DataNotFoundError, ValueError):
        return build_standin()


@pytest.fixture(scope="session")
def mnist_path(mnist: Mnist, tmp_path_factory) -> Path:
    """A file holding ``mnist``, to point the app and the CLI at."""
    _, _, location = mnist.source.partition(": ")
    if location and Path(location).is_file():
        return Path(location)
    return write_npz(mnist, tmp_path_factory.mktemp("digits") / "mnist.npz")


@pytest.fixture(scope="session")
def small_data(mnist: Mnist) -> Mnist:
    """3,000 training and 1,000 test images: enough to beat chance clearly in one epoch."""
    return mnist.subset(3000, 1000)


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ---- app fixtures (Draw / Explore / Evaluate pages) ------------------------------------------
# A session store of quickly trained models for the AppTests and the browser tests, and an AppTest
# factory with a long timeout and clean Streamlit caches.

@pytest.fixture(scope="session")
def app_models(tmp_path_factory, mnist: Mnist) -> Path:
    """A model store with 'quick-mlp' (~95 %, reads drawn digits) and 'quick-lenet' (rough).

    Cards are evaluated on the first 1,000 test images, so their mistake indices are valid in
    the full MNIST too. Takes about 15 s once per session.
    """
    from digitlab.config import TrainConfig
    from digitlab.runs import train_and_store
    from digitlab.store import ModelStore

    root = tmp_path_factory.mktemp("app-models")
    store = ModelStore(root)
    data = mnist.subset(None, 1000)
    if mnist.source.startswith("stand-in"):
        _shipped_mlp_as(store, "quick-mlp", data)
    else:
        train_and_store(TrainConfig("mlp", epochs=2, augment=False, train_size=12000, seed=1), data,
                        store, "quick-mlp")
    train_and_store(TrainConfig("lenet", epochs=1, augment=False, train_size=2000, seed=1), data,
                    store, "quick-lenet")
    return root


def _shipped_mlp_as(store, name: str, data: Mnist) -> None:
    """The shipped ``mlp`` saved as ``name``, its card re-scored on ``data``'s test images.

    A quick MLP trained on the stand-in digits reads a drawn 7 as a 3 (the UCI digits are
    smoothed 8×8 scans, not pen strokes), and the browser tests draw: without MNIST they get a
    model that reads drawings.
    """
    from digitlab.evaluation import evaluate
    from digitlab.inference import Predictor
    from digitlab.store import ModelStore

    shipped = ModelStore()
    model = shipped.load("mlp")
    card = {key: value for key, value in shipped.read_card("mlp").items()
            if key not in ("name", "model_file", "model_bytes")}
    card["test"] = evaluate(Predictor(model), data.x_test, data.y_test).to_dict()
    card["test_samples"] = int(len(data.y_test))
    store.save(name, model, card)


@pytest.fixture()
def app_env(monkeypatch, app_models: Path, mnist_path: Path) -> Path:
    """Point the app at the session store and MNIST; returns the store folder."""
    monkeypatch.setenv("DIGITLAB_MODELS", str(app_models))
    monkeypatch.setenv("DIGITLAB_MNIST", str(mnist_path))
    return app_models


@pytest.fixture()
def make_app():
    """``make_app(page=None)``: a fresh AppTest of streamlit_app.py, run once, on ``page``.

    Streamlit's caches live in this process, so they are cleared before and after each test.
    """
    clear_streamlit_caches()
    yield new_app
    clear_streamlit_caches()


# ---- end of app fixtures ---------------------------------------------------------------------
