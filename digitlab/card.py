"""The run card: what a stored model is, how it was trained and how it scores, as one type.

A card is written as JSON beside each model (``<name>.json``). Cards from older versions, or
written by hand, may lack fields: ``RunCard.from_dict`` fills what is missing with ``None`` or an
empty value once, here, so no reader has to guess. Fields this version does not know (added by a
newer one) are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from digitlab.calibration import Calibration
from digitlab.evaluation import Evaluation


@dataclass(frozen=True)
class RunCard:
    """A stored model's card. Every field but ``architecture`` may be unknown (None or empty)."""

    architecture: str = "?"
    name: str | None = None
    parameters: int | None = None
    test: Evaluation | None = None  # on the MNIST test set
    config: dict[str, Any] = field(default_factory=dict)  # the resolved TrainConfig, as a dict
    seed: int | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)  # one row per finished epoch
    train_seconds: float | None = None
    train_samples: int | None = None
    validation_samples: int | None = None
    test_samples: int | None = None
    teacher_files: list[str] | None = None  # the weights files a distilled run learned from
    versions: dict[str, str] = field(default_factory=dict)
    created_at: str | None = None
    model_file: str | None = None  # written by the store
    model_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields of newer versions, kept as they are

    @property
    def test_accuracy(self) -> float | None:
        """The MNIST test accuracy, or None when the card has no test result."""
        return None if self.test is None else self.test.accuracy

    @property
    def calibration(self) -> Calibration | None:
        """The temperature fitted on the run's validation split (and what it was measured to do),
        or None for a card from before calibration."""
        stored = self.extra.get("calibration")
        return Calibration.from_dict(stored) if isinstance(stored, dict) else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunCard:
        """A card from its JSON form; raises ``ValueError`` when it is not a card at all."""
        if not isinstance(data, dict):
            raise ValueError("a run card is a JSON object")
        known = {item.name for item in fields(cls)} - {"extra"}
        values = {key: value for key, value in data.items() if key in known and value is not None}
        values["test"] = _evaluation(values.get("test"))
        values["extra"] = {key: value for key, value in data.items() if key not in known}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the known fields (None ones left out), then ``extra``'s."""
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "extra" or value is None:
                continue
            data[item.name] = value.to_dict() if isinstance(value, Evaluation) else value
        return {**data, **self.extra}

    def headline(self) -> str:
        """One line for pickers and listings, e.g. ``cnn, 99.60 % test accuracy, 898,474 parameters``."""
        accuracy = "untested" if self.test_accuracy is None else f"{self.test_accuracy:.2%} test accuracy"
        accuracy = accuracy.replace("%", " %")
        parameters = "" if self.parameters is None else f", {self.parameters:,} parameters"
        return f"{self.architecture}, {accuracy}{parameters}"


def _evaluation(test: Any) -> Evaluation | None:
    """A card's test result; a short one (hand-written, or from an older version) keeps its
    accuracy and leaves the rest empty. Raises ``ValueError`` without a usable accuracy."""
    if not isinstance(test, dict):
        return None
    accuracy = test.get("accuracy")
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
        raise ValueError("the card's test result has no accuracy")
    defaults = {"loss": float("nan"), "correct": 0, "incorrect": 0, "confusion": [], "precision": [], "recall": []}
    known = {key: test[key] for key in (*defaults, "accuracy", "mistakes") if key in test}
    try:
        return Evaluation.from_dict({**defaults, **known})
    except TypeError as error:
        raise ValueError(f"the card's test result is malformed: {error}") from None
