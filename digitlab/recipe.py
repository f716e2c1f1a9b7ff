"""The parts of a training recipe (styles, coarse scans, warps, heavy pens) as run-card JSON.

Each part is a frozen dataclass of numbers and ranges. The run card stores it as plain JSON,
where a range becomes a list; reading it back turns the lists into tuples again, so a recipe read
from a card equals the one that trained the model.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Self


class RecipePart:
    """A mixin for a frozen dataclass that the run card records: ``to_dict`` and ``from_dict``."""

    def to_dict(self) -> dict[str, Any]:
        """The part as plain JSON values, for the run card."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """The inverse of ``to_dict`` (JSON turns the ranges into lists); unknown keys raise
        ``TypeError``, a key a card lacks takes its default."""
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})
