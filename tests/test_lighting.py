"""Photos under uneven light: a shadow across the page, darker corners, a lit chalkboard."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlab.lighting import is_photo, is_uneven
from digitlab.other_handwriting import to_picture
from digitlab.preprocess import FLAT_MESSAGE, brightness, preprocess

SIDE = 600


def strokes(digit: str, width: int = 18) -> np.ndarray:
    """Where the ink of a hand-drawn 0, 4 or 7 is on a 600 px page: float (H, W) in [0, 1]."""
    page = Image.new("L", (SIDE, SIDE), 0)
    pen = ImageDraw.Draw(page)
    if digit == "0":
        pen.ellipse([220, 130, 380, 470], outline=255, width=width)
    elif digit == "4":
        pen.line([(330, 120), (210, 360), (400, 360)], fill=255, width=width, joint="curve")
        pen.line([(340, 250), (340, 480)], fill=255, width=width)
    else:
        pen.line([(200, 150), (400, 150), (290, 470)], fill=255, width=width, joint="curve")
    return np.asarray(page, np.float32) / 255.0


def light(kind: str) -> np.ndarray:
    """How bright the paper is at each pixel: even, a shadow from the left, or darker corners."""
    columns = np.linspace(0.0, 1.0, SIDE)[np.newaxis, :]
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    corner = np.hypot(rows - SIDE / 2, cols - SIDE / 2) / (SIDE / np.sqrt(2))
    return {"even": np.full((SIDE, SIDE), 0.92),
            "shadow": 0.40 + 0.52 * np.broadcast_to(columns, (SIDE, SIDE)),
            "corners": 0.88 * (1.0 - 0.4 * corner ** 2)}[kind]


def photo(digit: str, kind: str, *, ink: float = 0.12, seed: int = 0, pen: int = 18) -> np.ndarray:
    """A grey uint8 photo of dark ink on paper under ``kind`` of light, with sensor noise."""
    noise = np.random.default_rng(seed).normal(0.0, 0.015, (SIDE, SIDE))
    marks = strokes(digit, pen)
    page = light(kind) * (1.0 - marks) + ink * light(kind) * marks + noise
    return np.rint(np.clip(page, 0.0, 1.0) * 255).astype(np.uint8)


@pytest.mark.parametrize("kind", ["shadow", "corners"])
@pytest.mark.parametrize("digit", ["0", "4", "7"])
def test_a_photo_under_uneven_light_gives_the_digit_an_even_light_gives(digit: str, kind: str) -> None:
    even, uneven = preprocess(photo(digit, "even")), preprocess(photo(digit, kind))
    assert even.inverted and uneven.inverted
    assert uneven.image is not None, uneven.message
    assert np.abs(uneven.image - even.image).mean() < 0.03
    height, width = uneven.steps["cropped"].shape
    assert (height, width) == pytest.approx(even.steps["cropped"].shape, abs=6)  # the digit, not half the page


@pytest.mark.parametrize("kind", ["even", "shadow"])
@pytest.mark.parametrize("digit", ["0", "4", "7"])
def test_a_photo_cropped_tight_to_its_thick_strokes_gives_the_whole_photos_digit(digit: str, kind: str) -> None:
    whole = photo(digit, kind, pen=48)
    rows, cols = np.nonzero(strokes(digit, 48) > 0.5)  # the crop a user makes: the strokes touch every edge
    tight = preprocess(whole[rows.min():rows.max() + 1, cols.min():cols.max() + 1])
    reference = preprocess(photo(digit, "even", pen=48))
    assert tight.inverted and tight.image is not None, tight.message
    assert np.abs(tight.image - reference.image).mean() < 0.03


def test_a_small_scan_enlarged_smoothly_is_not_a_photo_even_where_its_strokes_touch_the_edges() -> None:
    three = np.array([[0, 0, 5, 10, 16, 16, 15, 2], [0, 0, 6, 8, 8, 11, 16, 4], [0, 0, 0, 0, 2, 11, 14, 1],
                      [0, 0, 8, 12, 15, 16, 4, 0], [0, 0, 7, 8, 8, 15, 3, 0], [0, 0, 0, 0, 1, 14, 4, 0],
                      [5, 14, 8, 8, 14, 12, 0, 0], [2, 13, 16, 9, 6, 0, 0, 0]])  # 8×8 blocks of 0–16 ink
    picture = to_picture(three)
    assert not is_photo(brightness(picture))
    framed = preprocess(np.pad(picture, 16))  # the same digit with a margin round it
    assert np.abs(preprocess(picture).image - framed.image).mean() < 0.02


@pytest.mark.parametrize("digit", ["0", "4", "7"])
def test_a_shadow_with_a_hard_edge_through_the_digit_gives_the_evenly_lit_digit(digit: str) -> None:
    marks = strokes(digit)
    noise = np.random.default_rng(2).normal(0.0, 0.01, (SIDE, SIDE))
    paper = np.where(np.arange(SIDE)[np.newaxis, :] < SIDE // 2, 0.9, 0.45)  # half the border in each light
    pages = [np.clip(light * (1.0 - 0.88 * marks) + noise, 0.0, 1.0) for light in (paper, np.full((SIDE, SIDE), 0.9))]
    # A phone photo shrunk to 240 px, as uploads often are: the shadow's edge stays sharp.
    result, reference = (preprocess(np.asarray(Image.fromarray(np.rint(page * 255).astype(np.uint8)).resize(
        (240, 240), Image.Resampling.BOX))) for page in pages)
    assert result.inverted and result.image is not None, result.message
    assert np.abs(result.image - reference.image).mean() < 0.03


def on_a_desk(digit: str, *, degrees: float, shadow: bool = False, off_edge: bool = False) -> np.ndarray:
    """A photo of the digit on a sheet of paper (360×440 px, turned by ``degrees``) lying on a
    dark, grained desk; the sheet may run off the photo's right edge."""
    centre = (SIDE - 120.0, SIDE / 2) if off_edge else (SIDE / 2, SIDE / 2)
    angle = np.radians(degrees)
    corners = [(x * np.cos(angle) - y * np.sin(angle) + centre[0], x * np.sin(angle) + y * np.cos(angle) + centre[1])
               for x, y in ((-180, -220), (180, -220), (180, 220), (-180, 220))]
    outline = Image.new("L", (SIDE, SIDE), 0)
    ImageDraw.Draw(outline).polygon(corners, fill=255)
    sheet = np.asarray(outline, np.float32) / 255.0
    grain = 0.25 * (1.0 + 0.15 * np.sin(np.arange(SIDE)[np.newaxis, :] / 7.0))
    light = 0.55 + 0.4 * np.linspace(0.0, 1.0, SIDE)[np.newaxis, :] if shadow else 1.0
    marks = np.roll(strokes(digit), round(centre[0] - SIDE / 2), axis=1)
    page = (0.92 * sheet + grain * (1.0 - sheet)) * light * (1.0 - 0.88 * marks)
    page += np.random.default_rng(4).normal(0.0, 0.012, page.shape)
    return np.rint(np.clip(page, 0.0, 1.0) * 255).astype(np.uint8)


@pytest.mark.parametrize(("degrees", "shadow", "off_edge"), [(0, False, False), (20, False, False),
                                                             (-15, True, False), (0, False, True)])
@pytest.mark.parametrize("digit", ["0", "4", "7"])
def test_a_sheet_photographed_on_a_dark_desk_gives_its_digit_not_the_sheets_outline(
        digit: str, degrees: float, shadow: bool, off_edge: bool) -> None:
    result = preprocess(on_a_desk(digit, degrees=degrees, shadow=shadow, off_edge=off_edge))
    reference = preprocess(photo(digit, "even"))
    assert result.inverted and result.image is not None, result.message
    assert np.abs(result.image - reference.image).mean() < 0.03


@pytest.mark.parametrize("shift", [-200, 0, 200])
@pytest.mark.parametrize("digit", ["0", "4", "7"])
def test_a_page_whose_light_fades_into_a_deep_shadow_is_not_taken_for_a_sheet_on_a_desk(digit: str,
                                                                                          shift: int) -> None:
    marks = np.roll(strokes(digit), shift, axis=1)  # from deep in the shadow to near the lit edge
    noise = np.random.default_rng(0).normal(0.0, 0.015, (SIDE, SIDE))
    fading = (0.3 + 0.62 * np.linspace(0.0, 1.0, SIDE)[np.newaxis, :]) * (1.0 - 0.88 * marks) + noise
    even = 0.92 * (1.0 - 0.88 * marks) + noise
    result, reference = (preprocess(np.rint(np.clip(page, 0.0, 1.0) * 255).astype(np.uint8)) for page in (fading, even))
    assert result.image is not None, result.message
    assert np.abs(result.image - reference.image).mean() < 0.03


def test_a_blank_page_under_a_shadow_is_blank() -> None:
    page = np.rint(np.clip(light("shadow"), 0, 1) * 255).astype(np.uint8)
    result = preprocess(page)
    assert result.image is None and result.message == FLAT_MESSAGE


def test_chalk_on_an_unevenly_lit_board_is_read_as_bright_ink() -> None:
    board = 0.15 + 0.25 * np.linspace(0.0, 1.0, SIDE)[np.newaxis, :]
    chalk = np.clip(board + 0.7 * strokes("7"), 0.0, 1.0)
    result = preprocess(np.rint(chalk * 255).astype(np.uint8))
    reference = preprocess(np.rint(strokes("7") * 255).astype(np.uint8))
    assert not result.inverted and result.image is not None
    assert np.abs(result.image - reference.image).mean() < 0.03


@pytest.mark.parametrize("digit", ["0", "4"])
def test_a_bold_chalk_digit_filling_the_photo_is_bright_ink_not_a_sheet_of_paper(digit: str) -> None:
    board = 0.15 + 0.05 * np.linspace(0.0, 1.0, SIDE)[np.newaxis, :]
    chalk = np.clip(board + 0.7 * strokes(digit, 60) + np.random.default_rng(5).normal(0.0, 0.01, (SIDE, SIDE)), 0, 1)
    close = np.rint(chalk[80:540, 150:460] * 255).astype(np.uint8)  # the board still shows all round
    result = preprocess(close)
    reference = preprocess(np.rint(strokes(digit, 60) * 255).astype(np.uint8))
    assert not result.inverted and result.image is not None, result.message
    assert np.abs(result.image - reference.image).mean() < 0.03


def test_a_drawing_canvas_and_an_evenly_lit_photo_are_not_uneven() -> None:
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[60:220, 130:150, :3] = 255
    assert not is_uneven(brightness(canvas))
    assert not is_uneven(brightness(photo("7", "even")))
    assert is_uneven(brightness(photo("7", "shadow"))) and is_uneven(brightness(photo("7", "corners")))


def squared(page: np.ndarray, darker: float, spacing: int = 24) -> np.ndarray:
    """``page`` (uint8) on squared paper: 2 px lines every ``spacing`` px, ``darker`` than the paper."""
    lines = (np.arange(SIDE) % spacing < 2)[:, np.newaxis] | (np.arange(SIDE) % spacing < 2)[np.newaxis, :]
    return np.rint(page * (1.0 - darker * lines)).astype(np.uint8)


@pytest.mark.parametrize("darker", [0.2, 0.4])
@pytest.mark.parametrize("digit", ["0", "7"])
def test_the_lines_of_squared_paper_are_not_ink(digit: str, darker: float) -> None:
    plain = preprocess(photo(digit, "even"))
    lined = preprocess(squared(photo(digit, "even"), darker))
    assert lined.image is not None, lined.message
    assert np.abs(lined.image - plain.image).mean() < 0.03


def test_a_pencil_digit_drawn_lighter_in_places_keeps_its_light_strokes() -> None:
    marks = strokes("4")
    pressure = np.where(np.arange(SIDE)[np.newaxis, :] < 300, 1.0, 0.3)  # the right half drawn lightly
    page = 0.92 * (1.0 - 0.85 * marks * pressure) + np.random.default_rng(1).normal(0.0, 0.01, (SIDE, SIDE))
    result = preprocess(np.rint(np.clip(page, 0.0, 1.0) * 255).astype(np.uint8))
    assert result.image is not None
    full = preprocess(photo("4", "even"))
    assert result.steps["cropped"].shape[1] >= full.steps["cropped"].shape[1] - 2  # the light strokes stay
