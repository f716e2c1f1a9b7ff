"""The run card type: read once with every gap filled, written back as it came."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from digitlab.card import RunCard

SHIPPED_CARD = Path(__file__).resolve().parent.parent / "models" / "cnn.json"


def test_a_shipped_card_round_trips_unchanged():
    data = json.loads(SHIPPED_CARD.read_text())
    card = RunCard.from_dict(data)
    assert card.test_accuracy == data["test"]["accuracy"] and card.architecture == data["architecture"]
    assert card.to_dict() == data


def test_an_old_card_without_a_test_result_reads_as_untested():
    card = RunCard.from_dict({"architecture": "mlp", "model_file": "m.keras"})
    assert card.test is None and card.test_accuracy is None and card.history == []
    assert card.headline() == "mlp, untested"


def test_fields_of_a_newer_version_are_kept():
    card = RunCard.from_dict({"architecture": "cnn", "calibration": {"temperature": 1.3}})
    assert card.extra == {"calibration": {"temperature": 1.3}}
    assert card.to_dict()["calibration"] == {"temperature": 1.3}


def test_a_short_test_result_keeps_its_accuracy():
    card = RunCard.from_dict({"architecture": "mlp", "test": {"accuracy": 0.5}})
    assert card.test_accuracy == 0.5 and card.test.confusion == []


@pytest.mark.parametrize("data", [[1, 2], {"architecture": "cnn", "test": {"loss": 0.9}}])
def test_something_that_is_not_a_card_is_refused(data):
    with pytest.raises(ValueError, match="card"):
        RunCard.from_dict(data)
