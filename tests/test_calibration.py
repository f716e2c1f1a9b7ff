"""Temperature scaling, ECE and reliability bins; the run card's calibration and `digitlab calibrate`.

The model tests train a small MLP on the UCI digits (no MNIST needed): it stands in for MNIST
through the same ``Mnist`` type, so the validation split is picked exactly as in a real run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from digitlab.calibration import (
    Calibration,
    apply_temperature,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    not_sure_threshold,
    reliability_bins,
)
from digitlab.cli import main
from digitlab.data import Mnist
from digitlab.store import ModelStore, StoreError


def sampled(temperature: float, count: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(softmax of logits, labels drawn from softmax(logits / temperature), logits)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, (count, 10))
    true = np.exp(logits / temperature)
    true /= true.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(10, p=row) for row in true])
    shown = np.exp(logits)
    return (shown / shown.sum(axis=1, keepdims=True)).astype(np.float32), labels, logits


def test_fitting_recovers_the_temperature_and_lowers_the_nll():
    probabilities, labels, _ = sampled(temperature=2.0)
    temperature = fit_temperature(probabilities, labels)
    assert temperature == pytest.approx(2.0, rel=0.1)
    assert negative_log_likelihood(probabilities, labels, temperature) < negative_log_likelihood(probabilities, labels)


def test_scaling_softens_but_never_changes_the_answer():
    probabilities, _, _ = sampled(temperature=1.0, count=200)
    softened = apply_temperature(probabilities, 3.0)
    np.testing.assert_array_equal(softened.argmax(axis=1), probabilities.argmax(axis=1))
    np.testing.assert_allclose(softened.sum(axis=1), 1.0, rtol=1e-5)
    assert (softened.max(axis=1) <= probabilities.max(axis=1) + 1e-6).all()
    np.testing.assert_allclose(apply_temperature(probabilities, 1.0), probabilities, atol=1e-6)


def test_a_bad_temperature_is_refused():
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(np.full((1, 10), 0.1), 0.0)


def test_ece_of_an_overconfident_model_drops_after_scaling():
    probabilities, labels, _ = sampled(temperature=2.5)
    before = expected_calibration_error(probabilities, labels)
    after = expected_calibration_error(apply_temperature(probabilities, fit_temperature(probabilities, labels)),
                                       labels)
    assert before > 0.1 and after < 0.03


def test_reliability_bins_count_every_answer_once():
    probabilities = np.array([[1.0] + [0.0] * 9, [0.5, 0.5] + [0.0] * 8, [0.05] * 9 + [0.55]], np.float32)
    labels = np.array([0, 1, 9])
    bins = reliability_bins(probabilities, labels, bins=10)
    assert sum(row.count for row in bins) == 3
    assert bins[-1].count == 1 and bins[-1].accuracy == 1.0  # a confidence of exactly 1 is in the top bin
    assert bins[5].count == 2 and bins[5].accuracy == 0.5  # 0.5 (said 0, was 1) and 0.55 (right)


def test_not_sure_threshold_is_where_answers_turn_mostly_wrong():
    # Confidences 0.2 … 0.9: the four least confident are all wrong, the rest right.
    confidence = np.array([0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.8, 0.9])
    probabilities = np.zeros((8, 10))
    probabilities[:, 0] = confidence
    probabilities[:, 1:] = ((1 - confidence) / 9)[:, None]
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    # Up to 0.8, 3 of 7 are right (less than half); up to 0.9, 4 of 8 (not less).
    assert not_sure_threshold(probabilities, labels) == pytest.approx(0.8)
    assert not_sure_threshold(probabilities, np.zeros(8)) == 0.0


def test_calibration_round_trips_through_json():
    probabilities, labels, _ = sampled(temperature=1.5, count=500)
    result = calibrate((probabilities, labels), {"test": (probabilities, labels)})
    again = Calibration.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result and again.sets["test"].bins_after[0].lower == 0.0


@pytest.fixture(scope="module")
def uci_as_mnist() -> Mnist:
    from digitlab.other_handwriting import load_uci_digits

    digits = load_uci_digits()
    images = np.rint(digits.images * 255).astype(np.uint8)
    return Mnist(images[:1400], digits.labels[:1400], images[1400:], digits.labels[1400:], "uci")


@pytest.fixture(scope="module")
def uci_store(tmp_path_factory, uci_as_mnist):
    from digitlab.runs import train_and_store
    from digitlab.training import TrainConfig

    store = ModelStore(tmp_path_factory.mktemp("calibrated"))
    train_and_store(TrainConfig("mlp", epochs=2, augment=False, validation_fraction=0.2, seed=3),
                    uci_as_mnist, store, "small")
    return store


def test_training_stores_a_calibration_fitted_on_the_validation_split(uci_store):
    card = uci_store.read_card("small")
    calibration = Calibration.from_dict(card["calibration"])
    assert calibration.validation_samples == card["validation_samples"] == 280
    assert calibration.validation_nll_after <= calibration.validation_nll_before
    assert set(calibration.sets) == {"mnist", "uci"}
    assert calibration.sets["mnist"].samples == 397


def test_calibrate_command_rewrites_only_the_card(uci_store, uci_as_mnist, tmp_path, monkeypatch, capsys):
    from digitlab.runs import calibrate_stored

    card = uci_store.read_card("small")
    card_path = uci_store.card_path("small")
    stripped = {key: value for key, value in card.items() if key != "calibration"}
    card_path.write_text(json.dumps(stripped))
    again = calibrate_stored(uci_store, "small", uci_as_mnist)
    assert again["model_file"] == card["model_file"] and again["model_bytes"] == card["model_bytes"]
    assert again["calibration"] == card["calibration"]  # deterministic: the same split, the same fit
    assert uci_store.list()[0].usable


def test_a_card_for_replaced_weights_is_not_written(uci_store):
    with pytest.raises(StoreError, match="replaced"):
        uci_store.update_card("small", {"calibration": {}}, model_file="small.00000000.keras")


def test_cli_calibrate_and_evaluate_report_ece(uci_store, tmp_path, capsys):
    data = tmp_path / "data.npz"
    from digitlab.other_handwriting import load_uci_digits

    digits = load_uci_digits()
    images = np.rint(digits.images * 255).astype(np.uint8)
    np.savez(data, x_train=images[:1400], y_train=digits.labels[:1400], x_test=images[1400:],
             y_test=digits.labels[1400:])
    assert main(["calibrate", "small", "--models", str(uci_store.root), "--data", str(data), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)[0]
    assert summary["name"] == "small" and summary["temperature"] > 0 and "ece_after" in summary["mnist"]
    assert main(["evaluate", "small", "--models", str(uci_store.root), "--data", str(data), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["temperature_fitted"] and payload["temperature"] == summary["temperature"]
    assert payload["ece_calibrated"] == pytest.approx(summary["mnist"]["ece_after"], abs=1e-6)
    assert main(["calibrate", "missing", "--models", str(uci_store.root), "--data", str(data)]) == 1
    assert "no model named 'missing'" in capsys.readouterr().err
