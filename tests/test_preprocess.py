"""Behaviour of digitlab.preprocess: whatever was drawn or uploaded, the model gets an MNIST digit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageDraw

from digitlab.preprocess import (
    DIGIT_BOX,
    MNIST_SIZE,
    Preprocessed,
    brightness,
    preprocess,
    squash,
    to_grayscale,
)

CANVAS = 280
STEP_NAMES = ("grayscale", "cropped", "scaled", "centred")


def draw(
    digit: str = "7",
    *,
    width: int = 18,
    scale: float = 1.0,
    offset: tuple[int, int] = (0, 0),
    size: int = CANVAS,
    ink: int = 255,
    background: int = 0,
) -> np.ndarray:
    """A digit drawn with lines on a square canvas, like the app's drawing canvas (uint8)."""
    image = Image.new("L", (size, size), background)
    pen = ImageDraw.Draw(image)

    def place(x: float, y: float) -> tuple[float, float]:
        return x * scale + offset[0], y * scale + offset[1]

    if digit == "7":
        pen.line([place(70, 60), place(210, 60), place(120, 230)], fill=ink, width=width, joint="curve")
    elif digit == "0":
        pen.ellipse([place(90, 40), place(190, 240)], outline=ink, width=width)
    elif digit == "1":
        pen.line([place(140, 40), place(140, 240)], fill=ink, width=width)
    elif digit == "4":
        corners = [place(170, 240), place(170, 40), place(80, 170), place(210, 170)]
        pen.line(corners, fill=ink, width=width)
    else:
        raise ValueError(f"no drawing for {digit!r}")
    return np.array(image)


def as_rgba(gray: np.ndarray, *, transparent: bool, colour: int = 255) -> np.ndarray:
    """The canvas payload: black background (alpha 255) or transparent (ink only in alpha)."""
    rgba = np.zeros((*gray.shape, 4), np.uint8)
    if transparent:
        rgba[..., :3] = np.where(gray[..., None] > 0, colour, 0)
        rgba[..., 3] = gray
    else:
        rgba[..., :3] = gray[..., None]
        rgba[..., 3] = 255
    return rgba


def encode(pixels: np.ndarray, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, image_format)
    return buffer.getvalue()


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def ink_box(image: np.ndarray, threshold: float = 0.0) -> tuple[int, int]:
    """Height and width of the bounding box of pixels brighter than the threshold."""
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def digit_of(picture: object, **options: object) -> np.ndarray:
    result = preprocess(picture, **options)
    assert result.image is not None, result.message
    return result.image


@pytest.mark.parametrize("digit", ["7", "0", "1", "4"])
def test_result_is_an_mnist_input(digit: str) -> None:
    result = preprocess(draw(digit))
    assert isinstance(result, Preprocessed)
    assert not result.is_blank and result.message == ""
    assert result.image.shape == (MNIST_SIZE, MNIST_SIZE)
    assert result.image.dtype == np.float32
    assert result.image.min() >= 0.0 and result.image.max() == pytest.approx(1.0)
    assert result.image[0].max() == 0 or result.image[-1].max() == 0  # a margin, like MNIST


@pytest.mark.parametrize("digit", ["7", "0", "4"])
def test_centre_of_mass_is_at_the_centre(digit: str) -> None:
    row, col = centre_of_mass(digit_of(draw(digit, offset=(-50, 30), scale=0.7)))
    assert abs(row - 14) <= 1 and abs(col - 14) <= 1


@pytest.mark.parametrize("digit", ["7", "0", "4", "1"])
def test_longer_side_of_the_digit_is_20_pixels(digit: str) -> None:
    height, width = ink_box(digit_of(draw(digit, scale=0.5, offset=(20, 10))), threshold=0.05)
    assert abs(max(height, width) - DIGIT_BOX) <= 1


def test_aspect_ratio_is_kept_a_one_stays_narrow() -> None:
    height, width = ink_box(digit_of(draw("1")), threshold=0.05)
    assert abs(height - DIGIT_BOX) <= 1
    assert width <= 5


def test_mnist_style_input_is_left_almost_as_it_is() -> None:
    once = digit_of(draw("4"))
    twice = digit_of((once * 255).round().astype(np.uint8))
    assert np.abs(twice - once).mean() < 0.04  # at most a sub-pixel shift's blur


def test_black_on_white_gives_the_same_digit_as_white_on_black() -> None:
    white_on_black = preprocess(draw("7"))
    black_on_white = preprocess(draw("7", ink=0, background=255))
    assert black_on_white.inverted and not white_on_black.inverted
    np.testing.assert_allclose(black_on_white.image, white_on_black.image, atol=1e-6)


def test_photo_of_dark_ink_on_grey_paper_is_inverted() -> None:
    rng = np.random.default_rng(3)
    paper = 190 - draw("0").astype(float) / 255 * 150 + rng.normal(0, 6, (CANVAS, CANVAS))
    photo = np.clip(paper, 0, 255).astype(np.uint8)
    result = preprocess(encode(photo, "JPEG"))
    assert result.inverted
    assert np.abs(result.image - digit_of(draw("0"))).mean() < 0.03


def test_a_bright_speck_does_not_flip_a_dark_on_light_picture() -> None:
    picture = draw("7", ink=0, background=200)
    picture[5:8, 5:8] = 255
    assert preprocess(picture).inverted


def blank_pictures() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(4)
    return {
        "black": np.zeros((CANVAS, CANVAS), np.uint8),
        "white": np.full((CANVAS, CANVAS), 255, np.uint8),
        "white on white": draw("7", ink=255, background=255),
        "untouched transparent canvas": np.zeros((CANVAS, CANVAS, 4), np.uint8),
        "untouched black canvas": as_rgba(np.zeros((CANVAS, CANVAS), np.uint8), transparent=False),
        "faint noise": rng.integers(0, 30, (CANVAS, CANVAS), dtype=np.uint8),
        "faint noise on paper": rng.integers(225, 256, (CANVAS, CANVAS), dtype=np.uint8),
        "grey": np.full((CANVAS, CANVAS, 3), 128, np.uint8),
    }


@pytest.mark.parametrize("name", list(blank_pictures()))
def test_blank_picture_gives_no_digit_and_says_so(name: str) -> None:
    result = preprocess(blank_pictures()[name])
    assert result.is_blank and result.image is None
    # A light picture without contrast is a pad covered in ink or a bare page, not a blank canvas.
    light = name in ("white", "white on white", "faint noise on paper", "grey")
    assert ("one colour all over" if light else "blank") in result.message
    assert "grayscale" in result.steps


def test_single_dot_is_not_a_digit() -> None:
    picture = np.zeros((CANVAS, CANVAS), np.uint8)
    ImageDraw.Draw(image := Image.fromarray(picture)).ellipse([130, 130, 148, 148], fill=255)
    result = preprocess(np.asarray(image))
    assert result.is_blank
    assert "dot" in result.message


def test_single_pixel_is_not_a_digit() -> None:
    picture = np.zeros((CANVAS, CANVAS), np.uint8)
    picture[100, 200] = 255
    result = preprocess(picture)
    assert result.is_blank and result.message


def test_blank_threshold_decides_how_faint_ink_may_be() -> None:
    faint = (draw("7").astype(np.float32) / 255) * 0.15
    assert preprocess(faint).is_blank
    assert not preprocess(faint, blank_threshold=0.1).is_blank
    with pytest.raises(ValueError, match="blank_threshold"):
        preprocess(faint, blank_threshold=0.0)


def test_tiny_scribble_is_scaled_up_to_20_pixels() -> None:
    picture = np.zeros((CANVAS, CANVAS), np.uint8)
    ImageDraw.Draw(image := Image.fromarray(picture)).line(
        [(200, 40), (205, 40), (202, 46)], fill=255, width=1
    )
    result = digit_of(np.asarray(image))
    assert abs(max(ink_box(result, threshold=0.05)) - DIGIT_BOX) <= 1
    assert result.max() == pytest.approx(1.0)


@pytest.mark.parametrize("digit", ["7", "0", "4"])
def test_thin_one_pixel_stroke_survives(digit: str) -> None:
    result = digit_of(draw(digit, width=1))
    assert result.max() >= 0.9
    assert (result > 0.5).sum() >= 40  # MNIST digits have 60-140 such pixels


def test_thin_and_thick_pens_give_similar_digits() -> None:
    thin, thick = digit_of(draw("7", width=3)), digit_of(draw("7", width=18))
    assert abs(float(thin.sum()) - float(thick.sum())) / float(thick.sum()) < 0.25


def test_a_huge_picture_reads_like_the_same_drawing_at_canvas_size() -> None:
    huge = draw("7", width=200, scale=4000 / CANVAS, size=4000)  # timed by the inference bench
    result = preprocess(huge)
    assert result.image is not None
    assert np.abs(result.image - digit_of(draw("7", width=14))).mean() < 0.03


@pytest.mark.parametrize("digit", ["7", "4"])
def test_black_and_transparent_canvas_backgrounds_give_the_same_digit(digit: str) -> None:
    gray = draw(digit)
    expected = digit_of(gray)
    for rgba in (
        as_rgba(gray, transparent=False),
        as_rgba(gray, transparent=True, colour=0),
        as_rgba(gray, transparent=True, colour=255),
    ):
        np.testing.assert_allclose(digit_of(rgba), expected, atol=1e-6)


def test_dark_ink_on_transparent_background_is_read_from_alpha() -> None:
    gray = draw("7")
    rgba = as_rgba(gray, transparent=True, colour=40)
    np.testing.assert_allclose(digit_of(rgba), digit_of(gray), atol=1e-6)


@pytest.mark.parametrize("offset", [(60, 0), (0, 60), (-40, 40), (37, -23)])
def test_position_on_the_canvas_does_not_matter(offset: tuple[int, int]) -> None:
    reference = digit_of(draw("7", scale=0.7))
    moved = digit_of(draw("7", scale=0.7, offset=offset))
    assert np.abs(moved - reference).max() < 1e-6


@pytest.mark.parametrize("digit", ["7", "0", "4", "1"])
@pytest.mark.parametrize("scale", [0.8, 0.6, 0.4])
def test_size_on_the_canvas_hardly_matters(digit: str, scale: float) -> None:
    reference = digit_of(draw(digit, width=30))
    smaller = digit_of(draw(digit, width=round(30 * scale), scale=scale, offset=(20, 20)))
    difference = np.abs(smaller - reference)
    assert difference.mean() < 0.02
    assert difference.max() < 0.35


@pytest.mark.parametrize("digit", ["7", "0", "4"])
def test_size_hardly_matters_for_thin_pens_either(digit: str) -> None:
    reference = digit_of(draw(digit, width=6))
    smaller = digit_of(draw(digit, width=3, scale=0.5, offset=(30, 60)))
    assert np.abs(smaller - reference).mean() < 0.03


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_image_bytes_are_accepted(image_format: str) -> None:
    expected = digit_of(draw("4"))
    from_bytes = digit_of(encode(draw("4", ink=0, background=255), image_format))
    assert np.abs(from_bytes - expected).max() < 0.1


def test_bad_image_bytes_raise_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a PNG or JPEG"):
        preprocess(b"GIF89a not really")


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "1", "P", "I;16", "LA"])
def test_pil_images_of_any_mode_are_accepted(mode: str) -> None:
    image = Image.fromarray(draw("0")).convert(mode)
    np.testing.assert_allclose(digit_of(image), digit_of(draw("0")), atol=0.02)


@pytest.mark.parametrize(
    "convert",
    [
        lambda gray: gray > 127,
        lambda gray: gray.astype(np.float64) / 255,
        lambda gray: gray.astype(np.uint16) * 257,
        lambda gray: gray.astype(np.int64),
        lambda gray: gray[..., None],
        lambda gray: np.stack([gray] * 3, axis=-1),
    ],
    ids=["bool", "float", "uint16", "int64", "one channel", "rgb"],
)
def test_array_types_give_the_same_digit(convert: object) -> None:
    gray = draw("7")
    np.testing.assert_allclose(digit_of(convert(gray)), digit_of(gray), atol=1e-5)


@pytest.mark.parametrize(
    ("picture", "message"),
    [
        (np.zeros((280, 280, 5), np.uint8), "5 channels"),
        (np.zeros((280,), np.uint8), "1 dimensions"),
        (np.zeros((2, 280, 280, 4), np.uint8), "4 dimensions"),
        (np.zeros((0, 280), np.uint8), "empty"),
        (np.zeros((280, 0, 4), np.uint8), "empty"),
        (np.full((8, 8), np.nan), "NaN"),
        (np.full((8, 8), 200.0), r"\[0, 1\]"),
        (np.full((8, 8), -3, np.int32), "0..255"),
        (np.zeros((8, 8), np.complex64), "unsupported"),
    ],
)
def test_malformed_arrays_are_refused_clearly(picture: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess(picture)


def test_other_objects_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="numpy array"):
        preprocess([[0, 255], [255, 0]])  # type: ignore[arg-type]


def test_steps_show_the_way_to_the_result() -> None:
    result = preprocess(draw("7", width=18))
    assert [name for name in result.steps if name in STEP_NAMES] == list(STEP_NAMES)
    for name, step in result.steps.items():
        assert step.dtype == np.float32, name
        assert step.min() >= 0.0 and step.max() <= 1.0, name
    assert max(result.steps["scaled"].shape) == DIGIT_BOX
    assert result.steps["grayscale"].shape == (CANVAS, CANVAS)
    assert result.steps["centred"] is result.image


def test_to_grayscale_makes_ink_bright_on_black() -> None:
    gray = to_grayscale(draw("0", ink=30, background=230))
    assert gray.dtype == np.float32 and gray.shape == (CANVAS, CANVAS)
    assert gray[0, 0] == 0.0  # the paper is black now
    assert gray.max() == pytest.approx(200 / 230)  # ink as far above the paper as it was below
    assert brightness(draw("0", ink=30, background=230))[0, 0] == pytest.approx(230 / 255)


def test_squash_is_the_naive_whole_canvas_resize() -> None:
    picture = draw("7", scale=0.3, offset=(170, 170), ink=0, background=255)
    squashed = squash(picture)
    assert squashed.shape == (MNIST_SIZE, MNIST_SIZE) and squashed.dtype == np.float32
    assert squashed.min() >= 0.0 and squashed.max() <= 1.0
    row, col = centre_of_mass(squashed)
    assert row > 18 and col > 18  # still small and in the corner
    assert centre_of_mass(digit_of(picture)) == pytest.approx((14, 14), abs=1)


picture_shapes = st.one_of(
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=48),
    st.tuples(st.integers(1, 48), st.integers(1, 48), st.sampled_from([1, 2, 3, 4])),
)


@st.composite
def pictures(draw_from: st.DrawFn) -> np.ndarray:
    shape = draw_from(picture_shapes)
    kind = draw_from(st.sampled_from(["uint8", "uint16", "bool", "float32"]))
    if kind == "float32":
        elements = st.floats(0.0, 1.0, width=32)
        return draw_from(hnp.arrays(np.float32, shape, elements=elements))
    return draw_from(hnp.arrays(np.dtype(kind), shape))


@settings(
    derandomize=True,
    database=None,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(picture=pictures())
def test_any_valid_array_gives_a_digit_or_none(picture: np.ndarray) -> None:
    result = preprocess(picture)
    if result.image is None:
        assert result.message
    else:
        assert result.image.shape == (MNIST_SIZE, MNIST_SIZE)
        assert result.image.dtype == np.float32
        assert np.isfinite(result.image).all()
        assert result.image.min() >= 0.0 and result.image.max() <= 1.0
        assert result.message == ""


@settings(derandomize=True, database=None, max_examples=60, deadline=None)
@given(
    shape=st.one_of(
        hnp.array_shapes(min_dims=0, max_dims=1, min_side=0, max_side=8),
        hnp.array_shapes(min_dims=4, max_dims=5, min_side=1, max_side=4),
        st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(5, 9)),
        st.tuples(st.just(0), st.integers(0, 8)),
    )
)
def test_arrays_of_the_wrong_shape_raise_value_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape|empty"):
        preprocess(np.zeros(shape, np.uint8))


def narrow_digit(digit: str, *, box_width: int, pen: int) -> np.ndarray:
    """A tall, narrow 0, 6 or 8 (200 px high, ``box_width`` wide) drawn on the pad with ``pen``."""
    image = Image.new("L", (CANVAS, CANVAS), 0)
    pen_tool = ImageDraw.Draw(image)
    left, right = CANVAS // 2 - box_width // 2, CANVAS // 2 + box_width // 2
    if digit == "0":
        pen_tool.ellipse([left, 40, right, 240], outline=255, width=pen)
    elif digit == "8":
        pen_tool.ellipse([left, 40, right, 138], outline=255, width=pen)
        pen_tool.ellipse([left, 138, right, 240], outline=255, width=pen)
    else:  # a 6: a loop at the bottom and a stroke up from its left side
        pen_tool.ellipse([left, 130, right, 240], outline=255, width=pen)
        pen_tool.line([(left + pen // 2, 185), (right - box_width // 4, 40)], fill=255, width=pen)
    return np.asarray(image)


def enclosed_background(digit: np.ndarray, level: float = 0.35) -> int:
    """Pixels of background (below ``level``) that cannot reach the border: the loops' insides."""
    from scipy import ndimage

    labels, count = ndimage.label(digit < level)
    edge = set(labels[0]) | set(labels[-1]) | set(labels[:, 0]) | set(labels[:, -1])
    return sum(int((labels == label).sum()) for label in range(1, count + 1) if label not in edge)


@pytest.mark.parametrize("digit", ["0", "6", "8"])
@pytest.mark.parametrize("pen", [3, 6, 10])
def test_widening_keeps_the_loops_of_narrow_digits_open(digit: str, pen: int) -> None:
    # A 40 px wide, 200 px tall digit: widening sized from the longer side alone filled these loops
    # (a 0 kept 0 to 7 pixels of its hole, a 6 0 to 2), and a model then read a 1.
    result = preprocess(narrow_digit(digit, box_width=40, pen=pen))
    loops = 2 if digit == "8" else 1
    assert enclosed_background(result.image) >= 3 * loops


@pytest.mark.parametrize("digit", ["0", "8"])
def test_thin_pens_are_still_widened_when_no_loop_is_at_stake(digit: str) -> None:
    # A round digit drawn with a 3 px pen has room to grow: it gets close to MNIST's stroke weight.
    thin = preprocess(narrow_digit(digit, box_width=150, pen=3))
    thick = preprocess(narrow_digit(digit, box_width=150, pen=16))
    assert "thickened" in thin.steps
    assert abs(float(thin.image.sum()) - float(thick.image.sum())) / float(thick.image.sum()) < 0.3


def test_the_two_arms_of_a_narrow_open_four_stay_apart() -> None:
    image = Image.new("L", (CANVAS, CANVAS), 0)
    pen = ImageDraw.Draw(image)
    pen.line([(120, 40), (118, 170), (165, 170)], fill=255, width=3)  # the left arm and the bar
    pen.line([(150, 40), (150, 240)], fill=255, width=3)  # the stem, 30 px to the right
    digit = preprocess(np.asarray(image)).image
    upper_rows = digit[6:13]  # between the top of the digit and its bar
    # Each of those rows still has dark background between the two arms.
    for row in upper_rows:
        ink = np.flatnonzero(row > 0.5)
        assert ink.size and (row[ink[0]:ink[-1] + 1] < 0.35).any()


def test_a_small_digit_drawn_with_a_wide_brush_gets_advice_and_a_regular_one_none():
    """A 7 drawn 85 px tall with a 32 px brush: its strokes fuse, and the page says how to draw it."""
    heavy = preprocess(draw("7", width=32, scale=0.5, offset=(70, 70)))
    regular = preprocess(draw("7", width=18))
    assert heavy.stroke_ratio > 0.25 and "draw it larger or with a thinner pen" in heavy.advice
    assert 0.05 < regular.stroke_ratio < 0.2 and regular.advice == ""
    assert preprocess(np.zeros((CANVAS, CANVAS), np.uint8)).advice == ""  # no digit, no advice
