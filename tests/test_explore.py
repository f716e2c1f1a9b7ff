"""Data statistics for the Explore page."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.explore import class_count_rows, class_counts, mean_images, page_of, pixel_histogram


def test_class_counts_include_absent_digits():
    assert class_counts(np.array([0, 0, 3, 9])).tolist() == [2, 0, 0, 1, 0, 0, 0, 0, 0, 1]


def test_class_count_rows_cover_both_splits(mnist):
    rows = class_count_rows(mnist.y_train, mnist.y_test)
    assert len(rows) == 20
    train = {row["digit"]: row["count"] for row in rows if row["split"] == "train"}
    assert [train[str(d)] for d in range(10)] == np.bincount(mnist.y_train, minlength=10).tolist()
    assert sum(row["share"] for row in rows if row["split"] == "test") == pytest.approx(1.0)


def test_mean_images_average_each_class():
    images = np.zeros((4, 28, 28), np.uint8)
    images[0, 0, 0] = 255
    images[1, 0, 0] = 51
    labels = np.array([2, 2, 5, 5])
    means = mean_images(images, labels)
    assert means.shape == (10, 28, 28) and means.dtype == np.float32
    assert means[2, 0, 0] == pytest.approx(0.6)
    assert not means[5].any() and not means[0].any()  # an absent digit stays black


def test_pixel_histogram_counts_ink_and_background_apart():
    image = np.zeros((28, 28), np.uint8)
    image[0, :10] = 255
    image[1, :5] = 128
    histogram = pixel_histogram(image, bins=4)
    assert histogram["background"] == 784 - 15 and histogram["pixels"] == 784
    assert [row["count"] for row in histogram["rows"]] == [0, 0, 5, 10]
    assert histogram["rows"][0]["from"] == 0.0 and histogram["rows"][-1]["to"] == 1.0


def test_page_of_filters_and_clamps():
    labels = np.array([1, 2, 1, 1, 2, 1])
    indices, pages = page_of(labels, 1, 2, 3)
    assert indices.tolist() == [5] and pages == 2
    assert page_of(labels, 1, 99, 3)[0].tolist() == [5]  # clamped to the last page
    assert page_of(labels, None, 1, 4)[0].tolist() == [0, 1, 2, 3]
    assert page_of(labels, 7, 1, 4) == (pytest.approx([]), 1)
    with pytest.raises(ValueError):
        page_of(labels, None, 1, 0)
