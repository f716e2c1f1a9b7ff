"""Shared fixtures: the real MNIST (sliced for speed) and a throwaway model store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from app_support import clear_streamlit_caches, new_app

from digitlab.data import Mnist, load_mnist

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_MNIST = PROJECT_ROOT.parent / "shared" / "data" / "mnist.npz"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    """The real MNIST: $DIGITLAB_MNIST, else ../shared/data/mnist.npz."""
    configured = os.environ.get("DIGITLAB_MNIST")
    path = Path(configured) if configured else SHARED_MNIST
    if not path.exists():
        pytest.skip(f"MNIST not available at {path}; set DIGITLAB_MNIST")
    return path


@pytest.fixture(scope="session")
def mnist(mnist_path: Path) -> Mnist:
    return load_mnist(mnist_path)


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
    from digitlab.runs import train_and_store
    from digitlab.store import ModelStore
    from digitlab.training import TrainConfig

    root = tmp_path_factory.mktemp("app-models")
    store = ModelStore(root)
    data = mnist.subset(None, 1000)
    train_and_store(TrainConfig("mlp", epochs=2, augment=False, train_size=12000, seed=1), data,
                    store, "quick-mlp")
    train_and_store(TrainConfig("lenet", epochs=1, augment=False, train_size=2000, seed=1), data,
                    store, "quick-lenet")
    return root


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
