"""Labelled digits in and out of the database as ``.npz`` files.

A digit file holds two arrays: ``images``, N×H×W uint8 pictures of one digit each, white ink on
black, any size; and ``labels``, N integers 0–9. It is read with ``allow_pickle=False``, so a
file carrying pickled Python objects is refused instead of running code, and every picture is
checked and preprocessed before anything is written: a bad file is refused whole, with what is
wrong, and nothing is half-imported.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.digits_db import MAX_PICTURE_PIXELS, DigitsDb, NewDigit, picture_to_png, validate_writer
from digitlab.images import decode_image
from digitlab.preprocess import preprocess

REQUIRED_KEYS = ("images", "labels")
MIN_SIDE, MAX_SIDE = 8, 2048  # px: smaller holds no digit, larger no pad sends
MAX_DIGITS = 100_000


class DigitFileError(ValueError):
    """A digit file cannot be imported; the message says what is wrong with it."""


@dataclass(frozen=True)
class DigitFile:
    """The checked contents of a digit file."""

    images: np.ndarray  # (N, H, W) uint8, ink bright
    labels: np.ndarray  # (N,) int64 in 0–9


def read_digit_file(path: str | os.PathLike) -> DigitFile:
    """Read and check a digit file.

    Raises:
        DigitFileError: not an ``.npz``, pickled objects, missing keys, wrong shapes or types,
            labels out of range, or a picture without a digit — the message says which.
    """
    path = Path(path)
    arrays = _load_arrays(path)
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        found = ", ".join(sorted(arrays)) or "none"
        raise DigitFileError(f"{path.name} lacks the key(s) {', '.join(missing)} (it has: {found}); "
                             "a digit file needs 'images' and 'labels'")
    images, labels = arrays["images"], arrays["labels"]
    _check_images(images)
    _check_labels(labels, len(images))
    return DigitFile(images, labels.astype(np.int64))


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise DigitFileError(f"{path.name} is not an .npz file (numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        if "pickle" in str(error):
            raise DigitFileError(f"{path.name} holds pickled Python objects, which are never loaded; "
                                 "save plain arrays with numpy.savez") from None
        raise DigitFileError(f"{path.name} is not a readable .npz file ({error})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise DigitFileError(f"{path.name} is not a readable .npz file ({error})") from None


def _check_images(images: np.ndarray) -> None:
    if images.dtype != np.uint8:
        raise DigitFileError(f"'images' must be uint8 pictures (0–255), not {images.dtype}")
    if images.ndim != 3:
        raise DigitFileError(f"'images' must be N×H×W (one grey picture per digit), not shape {images.shape}")
    count, height, width = images.shape
    if not 1 <= count <= MAX_DIGITS:
        raise DigitFileError(f"'images' holds {count} pictures; a file holds 1–{MAX_DIGITS:,}")
    if not (MIN_SIDE <= height <= MAX_SIDE and MIN_SIDE <= width <= MAX_SIDE):
        raise DigitFileError(f"the pictures are {width}×{height}; each side must be {MIN_SIDE}–{MAX_SIDE} px")


def _check_labels(labels: np.ndarray, count: int) -> None:
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_:
        raise DigitFileError(f"'labels' must be N integers, not {labels.dtype} of shape {labels.shape}")
    if len(labels) != count:
        raise DigitFileError(f"'labels' has {len(labels)} entries for {count} pictures")
    bad = np.flatnonzero((labels < 0) | (labels > 9))
    if len(bad):
        raise DigitFileError(f"label {int(labels[bad[0]])} (entry {int(bad[0])}) is not a digit 0–9"
                             + (f", and {len(bad) - 1} more" if len(bad) > 1 else ""))


def import_digits(db: DigitsDb, path: str | os.PathLike, writer: str) -> int:
    """Add every digit of a file to ``writer``'s digits in one transaction; returns how many.

    Raises:
        DigitFileError: the file is refused (see :func:`read_digit_file`), or a picture holds no
            digit; nothing is written.
        DigitsDbError: the database cannot be written; nothing is written.
    """
    writer = validate_writer(writer)
    contents = read_digit_file(path)
    digits = []
    for index, (image, label) in enumerate(zip(contents.images, contents.labels, strict=True)):
        prepared = preprocess(image)
        if prepared.image is None:
            raise DigitFileError(f"picture {index} holds no digit ({prepared.message}); nothing was imported")
        digits.append(NewDigit(writer, int(label), picture_to_png(image), prepared.image))
    db.add_many(digits)
    return len(digits)


def export_digits(db: DigitsDb, writer: str, path: str | os.PathLike) -> int:
    """Write ``writer``'s digits to ``path`` as a digit file; returns how many.

    The pad pictures are exported as drawn (grey, white on black), so :func:`import_digits` gives
    back the same 28×28 inputs. Pictures of different sizes (a pad, an upload) are centred on a
    black field of the largest size. The file is written under a temporary name and renamed into
    place, so an existing file is replaced whole or not at all.

    Raises:
        ValueError: the writer has no digits.
        OSError: the folder cannot be written.
    """
    writer = validate_writer(writer)
    stored = db.digits(writer)
    if not stored:
        raise ValueError(f"the writer {writer!r} has no labelled digits to export")
    pictures = [_grey(digit.picture_png) for digit in stored]
    height, width = max(p.shape[0] for p in pictures), max(p.shape[1] for p in pictures)
    images = np.zeros((len(pictures), height, width), np.uint8)
    for index, picture in enumerate(pictures):
        top, left = (height - picture.shape[0]) // 2, (width - picture.shape[1]) // 2
        images[index, top:top + picture.shape[0], left:left + picture.shape[1]] = picture
    labels = np.array([digit.label for digit in stored], dtype=np.int64)
    _atomic_savez(Path(path), images=images, labels=labels)
    return len(stored)


def _grey(png: bytes) -> np.ndarray:
    """A stored pad picture as a grey uint8 array with the ink bright, as the preprocessing sees it."""
    picture = preprocess(decode_image(png, max_pixels=MAX_PICTURE_PIXELS))
    grey = picture.steps.get("grayscale")
    if grey is None:
        raise ValueError("a stored picture could not be read back")
    return np.rint(np.clip(grey, 0.0, 1.0) * 255).astype(np.uint8)


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)
