"""What defines a fine-tuning run and what it reports, without TensorFlow.

The settings (:class:`FinetuneConfig`), the forgetting meter (:class:`ForgettingMeter`) and the
checks made before a run starts live here, so the command line's ``--help`` and the Train page's
form do not load TensorFlow; the run itself is in :mod:`digitlab.finetune`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from digitlab.store import ModelStore, already_exists, validate_name

MIN_DIGITS = 10  # fewer drawings than this teach a model nothing it keeps


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that defines a fine-tuning run (field names shared with training's settings)."""

    base: str
    writer: str
    architecture: str = ""  # the base model's, filled from its card by :func:`finetune_and_store`
    epochs: int = 6
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 3e-4
    schedule: str = "constant"
    augment: bool = True
    holdout_fraction: float = 0.3  # of each digit's drawings, kept out to measure the effect
    copies: int = 8  # each fine-tune drawing appears this often per epoch, distorted afresh
    replay_ratio: float = 2.0  # MNIST training images per writer image in each epoch
    seed: int = 0
    digits_db: str | None = None  # the database file; None: beside the model store

    def validate(self) -> None:
        """Raise ``ValueError`` for a setting that cannot work, before anything is loaded."""
        checks = [
            (isinstance(self.epochs, int) and 1 <= self.epochs <= 100, "epochs must be 1–100"),
            (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 4096, "batch size must be 1–4096"),
            (isinstance(self.learning_rate, (int, float)) and math.isfinite(self.learning_rate)
             and 0 < self.learning_rate <= 0.1, "learning rate must be in (0, 0.1]"),
            (0.0 <= self.holdout_fraction <= 0.5, "the held-out fraction must be in [0, 0.5]"),
            (isinstance(self.copies, int) and 1 <= self.copies <= 100, "copies must be 1–100"),
            (0.0 <= self.replay_ratio <= 20.0, "the replay ratio must be in [0, 20]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


FINETUNE_DEFAULTS = FinetuneConfig(base="cnn", writer="me")


@dataclass(frozen=True)
class ForgettingMeter:
    """What fine-tuning cost and gained: accuracies before → after (held-out ones None if none held out)."""

    mnist_before: float
    mnist_after: float
    heldout_before: float | None
    heldout_after: float | None
    heldout_digits: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForgettingMeter:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})

    def lines(self) -> list[str]:
        """Two lines for a terminal or a page, e.g. ``MNIST test accuracy 99.60 % → 99.52 %``."""
        lines = [f"MNIST test accuracy {_percent(self.mnist_before)} → {_percent(self.mnist_after)} "
                 f"({(self.mnist_after - self.mnist_before) * 100:+.2f} points)"]
        if self.heldout_before is None:
            lines.append("held-out accuracy: not measured (no digits held out)")
        else:
            lines.append(f"held-out accuracy on {self.heldout_digits} of the writer's digits "
                         f"{_percent(self.heldout_before)} → {_percent(self.heldout_after)}")
        return lines


def _percent(value: float) -> str:
    return f"{value * 100:.2f} %"


def check_finetune(config: FinetuneConfig, store: ModelStore, name: str, *, overwrite: bool = False) -> None:
    """Refuse, before any work, a run that cannot start: bad settings, names, or a missing base."""
    config.validate()
    validate_name(name)
    store.read_card(config.base)  # StoreError when there is no such base model
    taken = store.taken_name(name)  # the same name in another case is the same file on some disks
    if taken is not None and (taken != name or not overwrite):
        raise ValueError(already_exists(name, taken))
