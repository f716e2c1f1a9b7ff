"""Looking at the data: class counts, mean digits, pixel histograms, pages of samples.

Pure functions of the MNIST arrays, for the Explore page and for notebooks.
"""

from __future__ import annotations

import math

import numpy as np

from digitlab.data import NUM_CLASSES

HISTOGRAM_BINS = 16


def class_counts(labels: np.ndarray) -> np.ndarray:
    """How many samples of each digit, shape (10,)."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=NUM_CLASSES)[:NUM_CLASSES]


def class_count_rows(train_labels: np.ndarray, test_labels: np.ndarray) -> list[dict]:
    """One row per digit and split, for a grouped bar chart: {digit, split, count, share}."""
    rows = []
    for split, labels in (("train", train_labels), ("test", test_labels)):
        counts = class_counts(labels)
        total = max(int(counts.sum()), 1)
        rows += [
            {"digit": str(digit), "split": split, "count": int(count), "share": count / total}
            for digit, count in enumerate(counts)
        ]
    return rows


def mean_images(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The average picture of each digit, (10, 28, 28) float32 in [0, 1] (zeros if absent)."""
    means = np.zeros((NUM_CLASSES, *images.shape[1:]), np.float64)
    integer = images.dtype == np.uint8
    for digit in range(NUM_CLASSES):
        members = images[labels == digit]
        if len(members):  # exact integer sums are 2–3× faster than a float mean here
            total = members.sum(axis=0, dtype=np.uint32 if integer else np.float64)
            means[digit] = total / (len(members) * (255.0 if integer else 1.0))
    return means.astype(np.float32)


def pixel_histogram(image: np.ndarray, bins: int = HISTOGRAM_BINS) -> dict:
    """Counts of the non-background pixel values of one picture, for a bar chart.

    Background pixels (exactly 0) usually outnumber the ink several times over and would flatten
    every other bar, so they are counted apart.

    Returns:
        ``{"rows": [{"from", "to", "count"}...], "background": n, "pixels": total}``, the value
        ranges in [0, 1].
    """
    values = np.asarray(image, np.float32).ravel()
    if np.asarray(image).dtype == np.uint8:
        values = values / 255.0
    ink = values[values > 0]
    counts, edges = np.histogram(ink, bins=bins, range=(0.0, 1.0))
    rows = [
        {"from": round(float(low), 4), "to": round(float(high), 4), "count": int(count)}
        for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    return {"rows": rows, "background": int(values.size - ink.size), "pixels": int(values.size)}


def page_of(labels: np.ndarray, digit: int | None, page: int, per_page: int) -> tuple[np.ndarray, int]:
    """Indices of one page of samples, optionally of one digit only, and the number of pages.

    ``page`` counts from 1 and is clamped to the pages that exist.
    """
    if per_page < 1:
        raise ValueError(f"per_page must be positive, got {per_page}")
    labels = np.asarray(labels)
    matching = np.arange(len(labels)) if digit is None else np.flatnonzero(labels == digit)
    pages = max(1, math.ceil(len(matching) / per_page))
    page = min(max(1, page), pages)
    return matching[(page - 1) * per_page : page * per_page], pages
