"""Find, load and split MNIST.

The data is looked for in a fixed order so that a notebook, the CLI, the app and CI all agree:
an explicit path, the ``DIGITLAB_MNIST`` environment variable, the Keras cache, and finally
Keras's own download for people who are online.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ENV_VAR = "DIGITLAB_MNIST"
NUM_CLASSES = 10
IMAGE_SIZE = 28
KEYS = ("x_train", "y_train", "x_test", "y_test")
ZIP_MAGIC = b"PK\x03\x04"  # an .npz is a zip of .npy files
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class DataNotFoundError(FileNotFoundError):
    """No MNIST copy could be found or downloaded."""


@dataclass(frozen=True)
class Mnist:
    """The MNIST split as uint8 images (N, 28, 28) and uint8 labels (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""

    def subset(self, train_size: int | None = None, test_size: int | None = None) -> Mnist:
        """The first ``train_size`` / ``test_size`` samples, for quick runs and tests."""
        return Mnist(
            self.x_train[:train_size],
            self.y_train[:train_size],
            self.x_test[:test_size],
            self.y_test[:test_size],
            self.source,
        )


def load_mnist(path: str | os.PathLike | None = None, *, allow_download: bool = True) -> Mnist:
    """Load MNIST from the first place that has it.

    Args:
        path: an ``.npz`` in the Keras layout or a folder with the four original IDX files
            (optionally ``.gz``). When given, nothing else is tried.
        allow_download: try Keras's download as the last resort.

    Raises:
        DataNotFoundError: nothing worked; the message says how to point ``DIGITLAB_MNIST`` at a copy.
        ValueError: a file was found but is not MNIST-shaped.
    """
    if path is not None:
        return _load_path(Path(path), "argument")
    env_path = os.environ.get(ENV_VAR)
    if env_path:
        return _load_path(Path(env_path), ENV_VAR)
    cached = keras_cache_path()
    tried = [str(cached)]
    if cached.is_file():
        try:
            return _load_path(cached, "keras cache")
        except ValueError:
            pass
    if allow_download:
        try:
            return _keras_download()
        except Exception as error:  # noqa: BLE001 - any network/hash failure means "not available"
            tried.append(f"keras download ({type(error).__name__})")
    raise DataNotFoundError(
        "MNIST not found (tried: " + ", ".join(tried) + "). Set the environment variable "
        f"{ENV_VAR} to an mnist.npz in the Keras layout or to a folder with the four IDX files, "
        "e.g. DIGITLAB_MNIST=/path/to/mnist.npz"
    )


def keras_cache_path() -> Path:
    """Where ``keras.datasets.mnist.load_data()`` keeps its copy."""
    keras_home = os.environ.get("KERAS_HOME", str(Path.home() / ".keras"))
    return Path(keras_home) / "datasets" / "mnist.npz"


def _load_path(path: Path, origin: str) -> Mnist:
    if path.is_dir():
        arrays = _read_idx_folder(path)
    elif path.is_file():
        arrays = _read_npz(path)
    else:
        raise DataNotFoundError(f"MNIST path from {origin} does not exist: {path} (see {ENV_VAR})")
    return _validated(arrays, f"{origin}: {path}", named=str(path))


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    # Checked first: np.load takes any other file for a pickle and answers with advice about
    # allow_pickle, which says nothing to someone who passed the wrong file.
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(ZIP_MAGIC))
    except OSError as error:
        raise ValueError(f"{path} cannot be read: {error.strerror or error}") from None
    if magic != ZIP_MAGIC:
        raise ValueError(f"{path} is not an MNIST .npz (a zip of numpy arrays); give an mnist.npz in "
                         "the Keras layout or a folder with the four IDX files")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in KEYS if key not in npz.files]
            if missing:
                raise ValueError(f"{path} is not an MNIST .npz: missing {', '.join(missing)}")
            return {key: npz[key] for key in KEYS}
    except (OSError, EOFError) as error:
        raise ValueError(f"{path} is not a readable .npz file: {error}") from error


def _read_idx_folder(folder: Path) -> dict[str, np.ndarray]:
    arrays = {}
    for key, stem in IDX_FILES.items():
        candidates = [folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataNotFoundError(f"{folder} has no {stem} (or {stem}.gz); see {ENV_VAR}")
        arrays[key] = read_idx(found)
    return arrays


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the original MNIST format, optionally gzipped) as uint8."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise ValueError(f"{path} is truncated: expected {expected} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _validated(arrays: dict[str, np.ndarray], source: str, *, named: str | None = None) -> Mnist:
    """The arrays as an ``Mnist`` recording ``source``, once their shapes and labels are MNIST's;
    otherwise a ValueError that names the file (``named``) or, without one, the source."""
    named = named or source
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"{named}: x_{split} has shape {images.shape}, expected (N, 28, 28)")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{named}: y_{split} does not match x_{split} in length")
        if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise ValueError(f"{named}: y_{split} has labels outside 0–9")
    return Mnist(
        *(np.asarray(arrays[key], dtype=np.uint8) for key in KEYS), source=source
    )


def _keras_download() -> Mnist:
    import keras  # imported late: loading TensorFlow is slow and only needed here

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    arrays = dict(zip(KEYS, (x_train, y_train, x_test, y_test), strict=True))
    return _validated(arrays, "keras download")


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded, class-stratified split: (keep, held_out).

    Each class gives the same fraction to the held-out part, so a small validation set still
    has every digit in MNIST's proportions.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    keep, held_out = [], []
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        count = int(round(len(members) * fraction))
        held_out.append(members[:count])
        keep.append(members[count:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(held_out))


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images to the float32 [0, 1] inputs every model takes."""
    return images.astype(np.float32) / 255.0
