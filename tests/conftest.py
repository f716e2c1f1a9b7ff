"""Shared fixtures: the real MNIST (sliced for speed) and a throwaway model store."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

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
