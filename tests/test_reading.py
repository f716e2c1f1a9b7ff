"""The one picture → answer path: preprocess once, read with each model, judge, vote."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.reading import NOT_SURE, Reading, averaged_reading, judge, read_picture, vote


class FixedModel:
    """A stand-in predictor that always gives the same probabilities and records its inputs."""

    def __init__(self, digit: int, confidence: float):
        self.probabilities = np.full(10, (1 - confidence) / 9, np.float32)
        self.probabilities[digit] = confidence
        self.inputs: list[np.ndarray] = []

    def predict_one(self, image: np.ndarray) -> tuple[int, np.ndarray]:
        self.inputs.append(image)
        return int(np.argmax(self.probabilities)), self.probabilities


def _drawn_one(size: int = 280) -> np.ndarray:
    picture = Image.new("L", (size, size))
    ImageDraw.Draw(picture).line([(140, 40), (140, 240)], fill=255, width=20)
    return np.asarray(picture)


def test_every_model_reads_the_same_preprocessed_input():
    models = {"a": FixedModel(1, 0.9), "b": FixedModel(7, 0.8)}
    read = read_picture(_drawn_one(), models)
    assert read.model_input.shape == (28, 28) and read.message is None
    assert models["a"].inputs[0] is models["b"].inputs[0] is read.model_input
    assert (read.readings["a"].digit, read.readings["b"].digit) == (1, 7)


def test_a_blank_pad_is_not_read_and_says_why():
    model = FixedModel(3, 0.9)
    read = read_picture(np.zeros((280, 280), np.uint8), {"a": model})
    assert read.model_input is None and read.readings == {} and "blank" in read.message
    assert model.inputs == []


def test_feeding_raw_gives_the_squashed_picture_to_the_models():
    model = FixedModel(1, 0.9)
    read = read_picture(_drawn_one(), {"a": model}, feed_raw=True)
    assert read.fed_raw and not np.array_equal(read.model_input, read.prepared.image)
    assert np.array_equal(read.squashed_input(), read.model_input)


def test_an_answer_below_the_threshold_is_not_sure_and_names_its_runner_up():
    probabilities = np.array([0.05, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.45, 0.0, 0.0])
    reading = judge("m", probabilities)
    assert reading.digit == 1 and not reading.sure and reading.runner_up() == (7, pytest.approx(0.45))
    assert judge("m", np.eye(10)[4] * 0.99 + 0.001).sure


def test_the_vote_groups_models_by_digit_biggest_camp_first():
    readings = {name: judge(name, np.eye(10)[digit]) for name, digit in (("a", 3), ("b", 5), ("c", 3))}
    result = vote(readings)
    assert result.split and not result.unanimous and result.camps == [(3, ["a", "c"]), (5, ["b"])]
    assert result.average == (3, pytest.approx(2 / 3))
    agreed = vote({name: judge(name, np.eye(10)[2]) for name in ("a", "b")})
    assert agreed.unanimous and agreed.camps == [(2, ["a", "b"])]
    assert not vote({"a": judge("a", np.eye(10)[2])}).unanimous


def test_when_the_models_disagree_their_averaged_answer_can_side_with_the_surer_one():
    unsure_five = np.full(10, 0.02)
    unsure_five[[5, 3]] = 0.46, 0.38
    readings = {"a": judge("a", np.eye(10)[3] * 0.98 + 0.002), "b": judge("b", unsure_five),
                "c": judge("c", unsure_five)}
    result = vote(readings)
    assert result.camps[0] == (5, ["b", "c"])  # two of three say 5, neither is sure of it
    assert result.average[0] == 3  # the surer 3 outweighs them


def test_an_averaged_reading_is_sure_only_when_every_model_is_sure_of_its_digit():
    sure_three = judge("a", np.eye(10)[3] * 0.98 + 0.002)
    agreed = averaged_reading({"a": sure_three, "b": judge("b", np.eye(10)[3] * 0.9 + 0.01)}, "a+b")
    assert agreed.model == "a+b" and agreed.digit == 3 and agreed.sure
    split = averaged_reading({"a": sure_three, "b": judge("b", np.eye(10)[5] * 0.9 + 0.01)}, "a+b")
    assert split.digit == 3 and not split.sure and split.reason == NOT_SURE
    declined = Reading("b", None, np.full(10, 0.1), 0.1, False, "not a digit")
    assert averaged_reading({"a": sure_three, "b": declined}, "a+b").digit == 3  # who declines has no say
    nobody = averaged_reading({"b": declined, "c": declined}, "b+c")
    assert nobody.digit is None and nobody.reason == "not a digit"
