"""A small MNIST stand-in for tests that need *some* handwritten digits but not MNIST itself.

scikit-learn ships 1,797 UCI digits (other writers, 8×8 blocks). Each goes through the product's
own preprocessing to a 28×28 MNIST-style input; the training part is multiplied by small seeded
rotations and shifts, as augmentation would. Writers' digits are split by index, so train and
test share no picture. About 13,000 training and 1,200 test images, built in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.data import Mnist
from digitlab.other_handwriting import load_uci_digits

TEST_EVERY = 6  # every sixth UCI digit is a test digit
TRAIN_VARIANTS = 9  # the digit itself and eight distorted copies
TEST_VARIANTS = 4


def _variants(image: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``image`` (uint8 28×28) and ``count - 1`` copies rotated ±10° and shifted ±1.5 px."""
    picture = Image.fromarray(image)
    copies = [image]
    for _ in range(count - 1):
        angle = float(rng.uniform(-10, 10))
        shift = tuple(float(value) for value in rng.uniform(-1.5, 1.5, 2))
        moved = picture.rotate(angle, resample=Image.Resampling.BILINEAR, translate=shift)
        copies.append(np.asarray(moved))
    return copies


def build_standin(seed: int = 0) -> Mnist:
    """The stand-in data set, the same for the same seed."""
    digits = load_uci_digits()
    images = np.rint(np.clip(digits.images, 0, 1) * 255).astype(np.uint8)
    rng = np.random.default_rng(seed)
    parts: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    for index, (image, label) in enumerate(zip(images, digits.labels, strict=True)):
        part = "test" if index % TEST_EVERY == 0 else "train"
        copies = _variants(image, TEST_VARIANTS if part == "test" else TRAIN_VARIANTS, rng)
        parts[part][0].extend(copies)
        parts[part][1].extend([int(label)] * len(copies))
    arrays = {}
    for part, (pictures, labels) in parts.items():
        order = rng.permutation(len(pictures))  # mixed, so that the first N of a subset hold every digit
        arrays[f"x_{part}"] = np.stack(pictures)[order]
        arrays[f"y_{part}"] = np.asarray(labels, np.uint8)[order]
    return Mnist(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"],
                 "stand-in: the UCI digits (scikit-learn), preprocessed and distorted")


def write_npz(data: Mnist, path: Path) -> Path:
    """``data`` as an ``mnist.npz`` in the Keras layout, so the app and the CLI can be pointed at it."""
    np.savez_compressed(path, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test, y_test=data.y_test)
    return path
