"""Finding MNIST in the documented order, reading both formats, and the validation split."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from digitlab import data
from digitlab.data import DataNotFoundError, load_mnist, read_idx, stratified_split


def _tiny_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
        "y_train": np.arange(50, dtype=np.uint8) % 10,
        "x_test": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "y_test": np.arange(20, dtype=np.uint8) % 10,
    }


def _write_npz(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    arrays = _tiny_arrays(seed)
    np.savez(path, **arrays)
    return arrays


def _write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


@pytest.fixture()
def no_fallbacks(monkeypatch, tmp_path):
    """No env var, an empty Keras cache and no network."""
    monkeypatch.delenv("DIGITLAB_MNIST", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))

    def offline():
        raise OSError("no network")

    monkeypatch.setattr(data, "_keras_download", offline)


def test_real_mnist_has_the_tutorial_counts(real_mnist):
    mnist = real_mnist
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.x_train.dtype == np.uint8
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_explicit_path_wins_over_env_var(tmp_path, monkeypatch, no_fallbacks):
    explicit = _write_npz(tmp_path / "a.npz", seed=1)
    _write_npz(tmp_path / "b.npz", seed=2)
    monkeypatch.setenv("DIGITLAB_MNIST", str(tmp_path / "b.npz"))
    loaded = load_mnist(tmp_path / "a.npz")
    assert np.array_equal(loaded.x_train, explicit["x_train"])


def test_env_var_is_used_before_keras_cache(tmp_path, monkeypatch, no_fallbacks):
    from_env = _write_npz(tmp_path / "env.npz", seed=3)
    cache = data.keras_cache_path()
    cache.parent.mkdir(parents=True)
    _write_npz(cache, seed=4)
    monkeypatch.setenv("DIGITLAB_MNIST", str(tmp_path / "env.npz"))
    assert np.array_equal(load_mnist().x_test, from_env["x_test"])


def test_keras_cache_is_used_when_nothing_is_configured(no_fallbacks):
    cache = data.keras_cache_path()
    cache.parent.mkdir(parents=True)
    cached = _write_npz(cache, seed=5)
    loaded = load_mnist()
    assert np.array_equal(loaded.y_train, cached["y_train"])
    assert "keras cache" in loaded.source


def test_download_is_the_last_resort(monkeypatch, no_fallbacks):
    arrays = _tiny_arrays(6)
    monkeypatch.setattr(data, "_keras_download", lambda: data._validated(arrays, "keras download"))
    assert np.array_equal(load_mnist().x_train, arrays["x_train"])


def test_nothing_found_names_the_env_var(no_fallbacks):
    with pytest.raises(DataNotFoundError, match="DIGITLAB_MNIST"):
        load_mnist()


def test_env_var_pointing_nowhere_is_an_error_not_a_fallback(monkeypatch, tmp_path, no_fallbacks):
    monkeypatch.setenv("DIGITLAB_MNIST", str(tmp_path / "missing.npz"))
    with pytest.raises(DataNotFoundError, match="DIGITLAB_MNIST"):
        load_mnist()


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder_is_read(tmp_path, compress, no_fallbacks):
    arrays = _tiny_arrays(7)
    for key, stem in data.IDX_FILES.items():
        _write_idx(tmp_path / stem, arrays[key], compress)
    loaded = load_mnist(tmp_path)
    for key in data.KEYS:
        assert np.array_equal(getattr(loaded, key), arrays[key])


def test_truncated_idx_file_is_reported(tmp_path):
    _write_idx(tmp_path / "x", np.zeros((5, 28, 28), np.uint8))
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "x")


def test_npz_with_wrong_shapes_is_rejected_naming_the_file(tmp_path):
    arrays = _tiny_arrays()
    arrays["x_train"] = arrays["x_train"][:, :20, :20]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError) as refused:
        load_mnist(tmp_path / "bad.npz")
    assert str(refused.value) == f"{tmp_path / 'bad.npz'}: x_train has shape (50, 20, 20), expected (N, 28, 28)"


def test_npz_missing_keys_is_rejected(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="missing"):
        load_mnist(tmp_path / "bad.npz")


def test_stratified_split_keeps_class_proportions_and_is_seeded(mnist):
    labels = mnist.y_train
    keep, held_out = stratified_split(labels, 0.1, seed=3)
    assert len(np.intersect1d(keep, held_out)) == 0 and len(keep) + len(held_out) == len(labels)
    share = np.bincount(labels[held_out], minlength=10) / np.bincount(labels, minlength=10)
    assert np.allclose(share, 0.1, atol=0.002)
    again, _ = stratified_split(labels, 0.1, seed=3)
    other, _ = stratified_split(labels, 0.1, seed=4)
    assert np.array_equal(keep, again) and not np.array_equal(keep, other)


def test_split_fraction_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(np.arange(10), 1.0, seed=0)
