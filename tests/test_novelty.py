"""The "not a digit" detector and the generated non-digits, on the UCI digits (no MNIST needed)."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.nondigits import KINDS, generate
from digitlab.novelty import FILLED_SHAPE, NOT_LIKE_DIGITS, fit_detector, load_detector, solidity
from digitlab.preprocess import preprocess


@pytest.fixture(scope="module")
def uci():
    from digitlab.other_handwriting import load_uci_digits

    return load_uci_digits()


@pytest.fixture(scope="module")
def detector(uci):
    """Fitted on every other UCI digit, thresholds set on a quarter; the last quarter stays unseen."""
    return fit_detector(uci.images[0::2], uci.labels[0::2], [uci.images[1::4]], quantile=0.99,
                        components=8)  # 90 digits a class: few directions, or it learns them by heart


def test_generated_non_digits_are_reproducible_and_of_every_kind():
    first, again = generate(10, seed=4), generate(10, seed=4)
    assert [d.label for d in first] == [d.label for d in again]
    assert all(np.array_equal(a.picture, b.picture) for a, b in zip(first, again, strict=True))
    assert {d.kind for d in first} == set(KINDS)
    assert first[0].picture.shape == (280, 280) and first[0].picture.dtype == np.uint8
    assert not np.array_equal(first[0].picture, generate(10, seed=5)[0].picture)


def test_unseen_real_digits_are_rarely_flagged(detector, uci):
    flagged = [reason is not None for reason in detector.reasons(uci.images[3::4])]
    assert np.mean(flagged) <= 0.04


def test_a_filled_blob_is_a_filled_shape(detector):
    blob = np.zeros((28, 28), np.float32)
    blob[6:22, 8:20] = 1.0
    assert solidity(blob[np.newaxis])[0] == pytest.approx((12 * 8) / (16 * 12))  # all but a 2-px rim
    assert detector.reason(blob) == FILLED_SHAPE


def test_non_digits_are_caught_far_more_often_than_digits(detector, uci):
    inputs = [preprocess(d.picture).image for d in generate(100, seed=2)]
    caught = np.mean([image is None or detector.reason(image) is not None for image in inputs])
    real = np.mean([reason is not None for reason in detector.reasons(uci.images[3::4])])
    assert caught > 0.3 > 0.1 > real


def test_a_spoked_wheel_does_not_look_like_a_digit(detector):
    wheels = [d for d in generate(30, seed=3) if d.kind == "spoked circle"]
    reasons = [detector.reason(preprocess(d.picture).image) for d in wheels]
    assert reasons.count(NOT_LIKE_DIGITS) >= len(wheels) // 2


def test_the_detector_survives_a_save_and_load(detector, uci, tmp_path):
    path = detector.save(tmp_path / "novelty.npz")
    again = load_detector(path)
    assert again.likeness_threshold == detector.likeness_threshold
    assert again.reasons(uci.images[3::4]) == detector.reasons(uci.images[3::4])
    assert [p.name for p in tmp_path.iterdir()] == ["novelty.npz"]  # no temporary file left


def test_a_file_that_is_not_a_detector_is_refused(tmp_path):
    bad = tmp_path / "novelty.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(ValueError, match="not a novelty detector"):
        load_detector(bad)
    with pytest.raises(FileNotFoundError):
        load_detector(tmp_path / "missing.npz")
