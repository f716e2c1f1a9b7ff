"""Watch it learn: up to four pictures a training run reads after every epoch.

A learner pins a few pictures to a run (their own drawing, a digit they labelled, a test digit
the shipped model misreads) and sees, epoch by epoch, the network's probabilities for them grow
(or a misread settle) beside the loss curves. The run reports them in its epoch events
(:attr:`digitlab.progress.TrainEvent.watched`), so the page, the CLI and the queue see them the
same way. Pins travel between processes as small JSON objects: the 28×28 input as base64 bytes.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_PINS = 4
SIDE = 28
TITLE_LENGTH = 60


@dataclass(frozen=True)
class Pin:
    """One watched picture: the 28×28 model input, a title, and the digit it is (if known)."""

    title: str
    image: np.ndarray  # (28, 28) float32 in [0, 1], as the preprocessing hands it to a model
    digit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values: the image as 784 bytes of base64."""
        pixels = np.rint(np.clip(self.image, 0.0, 1.0) * 255).astype(np.uint8)
        return {"title": self.title, "digit": self.digit, "image": base64.b64encode(pixels.tobytes()).decode("ascii")}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Pin:
        """The inverse of ``to_dict``; raises ``ValueError`` for anything that is not a pin."""
        try:
            raw = base64.b64decode(values["image"], validate=True)
            title, digit = str(values["title"]), values.get("digit")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"a watched picture needs a title and a 28×28 image ({error})") from None
        if len(raw) != SIDE * SIDE:
            raise ValueError(f"a watched picture is 28×28 ({SIDE * SIDE} bytes), not {len(raw)} bytes")
        image = np.frombuffer(raw, np.uint8).reshape(SIDE, SIDE).astype(np.float32) / 255.0
        return make_pin(title, image, digit)


def make_pin(title: str, image: np.ndarray, digit: int | None = None) -> Pin:
    """A checked pin: a 28×28 image of finite values, a digit 0–9 or none, a short title.

    Raises:
        ValueError: with a one-line reason.
    """
    array = np.asarray(image, np.float32)
    if array.shape != (SIDE, SIDE) or not np.isfinite(array).all():
        raise ValueError(f"a watched picture must be a 28×28 model input, not shape {array.shape}")
    if digit is not None and (isinstance(digit, bool) or not isinstance(digit, (int, np.integer))
                              or not 0 <= digit <= 9):
        raise ValueError(f"a watched picture's digit is 0–9 or unknown, not {digit!r}")
    clean_title = " ".join(str(title).split())[:TITLE_LENGTH] or "picture"
    return Pin(clean_title, np.clip(array, 0.0, 1.0), None if digit is None else int(digit))


def check_pins(pins: Sequence[Pin]) -> tuple[Pin, ...]:
    """The pins of one run, at most :data:`MAX_PINS`; raises ``ValueError`` for more."""
    if len(pins) > MAX_PINS:
        raise ValueError(f"a run watches at most {MAX_PINS} pictures, not {len(pins)}")
    return tuple(pins)


def pins_to_json(pins: Sequence[Pin]) -> list[dict[str, Any]]:
    """The pins as JSON values (for the queue and the training child)."""
    return [pin.to_dict() for pin in check_pins(pins)]


def pins_from_json(values: Sequence[dict[str, Any]] | None) -> tuple[Pin, ...]:
    """The inverse of :func:`pins_to_json`; ``None`` (a run without pins) gives none."""
    return check_pins([Pin.from_dict(value) for value in values or ()])


def stack(pins: Sequence[Pin]) -> np.ndarray:
    """The pins' images as one (N, 28, 28) float32 batch."""
    return np.stack([pin.image for pin in pins]).astype(np.float32) if pins else np.zeros((0, SIDE, SIDE), np.float32)


@dataclass(frozen=True)
class WatchPoint:
    """One pin after one epoch: the answer and the probability of the pin's digit (or the answer's)."""

    epoch: int
    pin: int  # index into the run's pins
    answer: int
    probability: float  # of ``digit`` when the pin has one, else of ``answer``
    probabilities: tuple[float, ...]


def watch_points(epochs: Sequence[dict[str, Any]], pins: Sequence[Pin]) -> list[WatchPoint]:
    """Every epoch event's watched probabilities as points to chart, in epoch order.

    Epoch events without ``watched`` (a run without pins, an older run) give none.
    """
    points = []
    for event in epochs:
        watched = event.get("watched") or []
        for index, (pin, probabilities) in enumerate(zip(pins, watched, strict=False)):
            values = tuple(float(p) for p in probabilities)
            answer = int(np.argmax(values))
            target = answer if pin.digit is None else pin.digit
            points.append(WatchPoint(int(event["epoch"]), index, answer, values[target], values))
    return points
