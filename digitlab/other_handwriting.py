"""Handwriting that is not MNIST: the UCI digits that scikit-learn ships, as a second test set.

MNIST's test set shares its writers' habits and its scanner with the training set, so 99 % on it
says little about a stranger's digits. scikit-learn bundles 1,797 digits from the UCI "optical
recognition of handwritten digits" collection: other people, other forms, other scanner, reduced
to 8×8 blocks of 0–16 ink. Each is smoothed up to a picture and goes through the same
``preprocess`` as a drawing or an upload, so the figure measures what a user of the app gets.

scikit-learn is imported only here and only when these digits are asked for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

from digitlab.preprocess import preprocess, squash

NAME = "UCI handwritten digits (scikit-learn)"
PICTURE_SIDE = 64  # px: each 8×8 digit is smoothed up to this before preprocessing
FULL_INK = 16  # the UCI pictures count ink from 0 to 16


class MissingDatasetError(RuntimeError):
    """scikit-learn, which carries the UCI digits, is not installed."""


@dataclass(frozen=True)
class OtherDigits:
    """A labelled test set in the models' input format, plus the pictures it was made from."""

    name: str
    pictures: np.ndarray  # (N, side, side) uint8, ink bright on black
    images: np.ndarray  # (N, 28, 28) float32 in [0, 1], through ``preprocess``
    labels: np.ndarray  # (N,) uint8


def read_only(digits: OtherDigits) -> OtherDigits:
    """``digits`` with its arrays made read-only, so that one copy can be handed to every caller."""
    for array in (digits.pictures, digits.images, digits.labels):
        array.flags.writeable = False
    return digits


@functools.cache
def load_uci_digits() -> OtherDigits:
    """The 1,797 UCI digits as pictures and as 28×28 model inputs, prepared once per process
    (about 3 s) and shared read-only.

    Raises MissingDatasetError naming the package when scikit-learn is absent.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:
        raise MissingDatasetError("the UCI digits come with scikit-learn: pip install scikit-learn") from error
    bunch = load_digits()
    pictures = np.stack([to_picture(block) for block in bunch.images])
    images = model_inputs(pictures)
    return read_only(OtherDigits(NAME, pictures, images, bunch.target.astype(np.uint8)))


def squashed_inputs(digits: OtherDigits) -> np.ndarray:
    """The same pictures shrunk whole to 28×28, as a naive app would: the comparison that shows
    what the preprocessing is worth."""
    return np.stack([squash(picture) for picture in digits.pictures]).astype(np.float32)


def to_picture(block: np.ndarray, side: int = PICTURE_SIDE) -> np.ndarray:
    """One 8×8 block of 0–16 ink as a smooth ``side``-pixel grey picture (uint8, ink bright).

    Bicubic smoothing turns the blocks back into strokes; nearest-neighbour would hand the
    models squares, which no pen draws.
    """
    ink = np.clip(np.asarray(block, np.float32) / FULL_INK, 0.0, 1.0)
    small = Image.fromarray(np.rint(ink * 255).astype(np.uint8))
    return np.asarray(small.resize((side, side), Image.Resampling.BICUBIC))


def model_inputs(pictures: np.ndarray) -> np.ndarray:
    """Each picture through ``preprocess``: (N, 28, 28) float32. A picture the preprocessing
    refuses (a faint digit) gives the model an empty field, and counts as misread."""
    inputs = [preprocess(picture).image for picture in pictures]
    return np.stack([np.zeros((28, 28), np.float32) if image is None else image for image in inputs]).astype(np.float32)
