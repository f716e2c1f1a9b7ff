"""The models we ship reach, on the real 10,000 test images, what their cards and the README claim."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.evaluation import evaluate
from digitlab.inference import Predictor
from digitlab.preprocess import preprocess
from digitlab.store import SHIPPED_MODELS, ModelStore

# The promise: beat every tutorial (MLP 98.4 %, LeNet ~99 %, Keras CNN 99.19 %), and keep MNIST's
# floors while learning the styles MNIST lacks (cnn 99.60 %, lenet 99.50 %, mlp 99.20 %).
TARGETS = {"mlp": 0.992, "lenet": 0.995, "cnn": 0.996}


@pytest.fixture(scope="module")
def shipped_store() -> ModelStore:
    return ModelStore()  # the repository's models/ folder


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_model_reaches_its_card_and_target_on_the_real_test_set(shipped_store, real_mnist, name):
    mnist = real_mnist
    card = shipped_store.read_card(name)
    result = evaluate(Predictor(shipped_store.load(name)), mnist.x_test, mnist.y_test)
    assert card["test"]["accuracy"] >= TARGETS[name]
    # Re-measured here: the card's figure is reproduced (to a digit or two of float noise).
    assert result.accuracy == pytest.approx(card["test"]["accuracy"], abs=2e-4)
    assert card["test_samples"] == 10000 and card["train_samples"] + card["validation_samples"] == 60000


def test_shipped_models_are_listed_first_and_small(shipped_store):
    entries = shipped_store.list()
    assert [entry.name for entry in entries[:3]] == ["cnn", "lenet", "mlp"]
    assert all(entry.usable for entry in entries[:3])
    assert all(shipped_store.model_path(name).stat().st_size < 8_000_000 for name in SHIPPED_MODELS)


def continental_one(flag_length: int, flag_degrees: float, *, base: bool = False) -> np.ndarray:
    """A 1 drawn the European way on a 280×280 pad: a 200 px upright stem with a flag from its top
    going down to the left (``flag_degrees`` below the horizontal), and optionally a base."""
    pad = Image.new("L", (280, 280), 0)
    pen = ImageDraw.Draw(pad)
    top, bottom = (150, 40), (150, 240)
    pen.line([top, bottom], fill=255, width=16)
    angle = math.radians(flag_degrees)
    flag_end = (top[0] - flag_length * math.cos(angle), top[1] + flag_length * math.sin(angle))
    pen.line([top, flag_end], fill=255, width=16)
    if base:
        pen.line([(110, 240), (190, 240)], fill=255, width=16)
    return np.asarray(pad)


def short_bar_seven(bar_length: int, bar_degrees: float, *, lean: int = 0) -> np.ndarray:
    """A 7 with a short bar on a nearly upright stem, on the pad: the stem runs 200 px down from
    (150, 40) to ``lean`` px left of it; the bar comes from its left end ``bar_degrees`` below the
    horizontal (negative: rising) to the stem's top."""
    pad = Image.new("L", (280, 280), 0)
    pen = ImageDraw.Draw(pad)
    top, bottom = (150, 40), (150 - lean, 240)
    angle = math.radians(bar_degrees)
    bar_start = (top[0] - bar_length * math.cos(angle), top[1] + bar_length * math.sin(angle))
    pen.line([bar_start, top, bottom], fill=255, width=16, joint="curve")
    return np.asarray(pad)


# The drawn-1s probe: flags of 30–90 px at 20°–65° below the horizontal, with and without a base.
CONTINENTAL_ONES = [(length, degrees, base) for length in (30, 50, 70, 90) for degrees in (20, 35, 50, 65)
                    for base in (False, True)]
# Its counterpart: 7s whose bar is short (50–80 px against a 200 px stem) and flat (−5° to 5°).
SHORT_BAR_SEVENS = [(length, degrees, lean) for length in (50, 60, 70, 80) for degrees in (-5, 0, 5)
                    for lean in (0, 30)]
# How many of each probe every shipped model reads correctly (measured; see docs/handwriting.md).
PROBE_FLOORS = {"cnn": (31, 24), "lenet": (32, 23), "mlp": (30, 24)}


def _read(name: str, store: ModelStore, pictures: list[np.ndarray]) -> np.ndarray:
    predictor = Predictor(store.load(name))
    return predictor.probabilities(np.stack([preprocess(picture).image for picture in pictures])).argmax(axis=1)


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_models_read_a_one_with_a_flag_as_one(shipped_store, name):
    read_as = _read(name, shipped_store, [continental_one(length, degrees, base=base)
                                          for length, degrees, base in CONTINENTAL_ONES])
    assert int((read_as == 1).sum()) >= PROBE_FLOORS[name][0]


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_models_read_a_seven_with_a_short_bar_as_seven(shipped_store, name):
    read_as = _read(name, shipped_store, [short_bar_seven(length, degrees, lean=lean)
                                          for length, degrees, lean in SHORT_BAR_SEVENS])
    assert int((read_as == 7).sum()) >= PROBE_FLOORS[name][1]


def printed_one(flag: int, base: int, width: int) -> np.ndarray:
    """A 1 as print has it, drawn on the pad: a 180 px stem, a short flag from its top and a base."""
    pad = Image.new("L", (280, 280), 0)
    pen = ImageDraw.Draw(pad)
    pen.line([(150, 50), (150, 230)], fill=255, width=width)
    pen.line([(150, 50), (150 - flag, 50 + flag * 0.6)], fill=255, width=width)
    pen.line([(150 - base / 2, 230), (150 + base / 2, 230)], fill=255, width=width)
    return np.asarray(pad)


def test_a_printed_one_is_a_one_to_every_shipped_model_and_never_not_a_digit(shipped_store):
    """The page's whole reading, "not a digit" tests included: before its own test learned the
    styles its training draws, cnn read 5 of these 12 as something other than a 1."""
    from digitlab.feature_novelty import load_check
    from digitlab.novelty import default_path, load_detector
    from digitlab.reading import read_picture

    predictors = {name: Predictor(shipped_store.load(name)) for name in sorted(SHIPPED_MODELS)}
    checks = {name: load_check(shipped_store.root, name, shipped_store.read_card(name)["model_file"],
                               predictor.model) for name, predictor in predictors.items()}
    detector = load_detector(default_path(shipped_store.root))
    for flag in (40, 55, 70):
        for base in (70, 100):
            for width in (16, 22):
                read = read_picture(printed_one(flag, base, width), predictors, novelty=detector,
                                    feature_checks=checks)
                assert {name: reading.digit for name, reading in read.readings.items()} == \
                    dict.fromkeys(predictors, 1), (flag, base, width)


def z_two(rng: np.random.Generator, *, crossed: bool) -> np.ndarray:
    """A 2 written like a Z on the pad: flat top, straight diagonal, flat base, and when ``crossed``
    a short bar through the diagonal; box, slant and pen width drawn from ``rng``."""
    pad = Image.new("L", (280, 280), 0)
    pen = ImageDraw.Draw(pad)
    width, height = rng.uniform(110, 190), rng.uniform(150, 220)
    centre_x, centre_y = rng.uniform(110, 170), rng.uniform(110, 170)
    slant, pen_width = math.tan(math.radians(rng.uniform(-10, 15))), int(rng.uniform(10, 24))

    def at(x: float, y: float) -> tuple[float, float]:  # x, y in [-0.5, 0.5] of the slanted box
        return centre_x + x * width - y * height * slant, centre_y + y * height

    corners = [at(-0.5, -0.5 + rng.uniform(-0.04, 0.04)), at(0.5, -0.5), at(-0.5, 0.5),
               at(0.5, 0.5 + rng.uniform(-0.04, 0.04))]
    pen.line(corners, fill=255, width=pen_width, joint="curve")
    if crossed:
        half = rng.uniform(0.18, 0.32)
        pen.line([at(-half, rng.uniform(-0.03, 0.03)), at(half, rng.uniform(-0.03, 0.03))], fill=255, width=pen_width)
    return np.asarray(pad)


# How many of 60 Z-shaped 2s (two in three crossed) each shipped model reads as 2, measured: the
# style is one the training does not draw, and a fine-tune on ten of them teaches it
# (docs/your-handwriting.md, "Teaching a style every model misreads").
Z_TWO_FLOORS = {"cnn": 24, "lenet": 38, "mlp": 52}


@pytest.mark.parametrize("name", sorted(SHIPPED_MODELS))
def test_shipped_models_read_z_shaped_twos_at_least_as_well_as_measured(shipped_store, name):
    rng = np.random.default_rng(99)
    pictures = [z_two(rng, crossed=index % 3 != 0) for index in range(60)]
    assert int((_read(name, shipped_store, pictures) == 2).sum()) >= Z_TWO_FLOORS[name]
