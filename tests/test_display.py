"""Pictures for the pages: crisp enlargements, heat overlays, confusion-matrix colours."""

from __future__ import annotations

import numpy as np
import pytest

from digitlab.display import confusion_styles, enlarge, heat_overlay, strip, tile, to_uint8


def test_enlarge_repeats_pixels():
    image = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)
    big = enlarge(image, 8)
    assert big.shape == (8, 8) and big.dtype == np.uint8
    assert set(np.unique(big)) == {0, 255}  # no blur between pixels
    assert (big[:4, :4] == 0).all() and (big[:4, 4:] == 255).all()
    assert enlarge(np.zeros((300, 200), np.uint8), 280).shape == (300, 200)  # already large
    with pytest.raises(ValueError):
        enlarge(image, 0)


def test_tile_fits_small_and_large_pictures_into_one_square():
    small = tile(np.ones((28, 14), np.float32), 112)  # grows 4×, centred left to right
    assert small.shape == (112, 112) and small.dtype == np.uint8
    assert (small[:, 28:84] == 255).all() and not small[:, :28].any() and not small[:, 84:].any()
    canvas = np.zeros((280, 280), np.uint8)
    canvas[:140] = 255  # top half inked
    shrunk = tile(canvas, 112)
    assert shrunk.shape == (112, 112)
    assert (shrunk[:56] == 255).all() and not shrunk[56:].any()


def test_strip_puts_the_steps_in_one_row_with_gaps():
    row = strip([np.ones((28, 28)), np.zeros((280, 280)), np.ones((5, 9))], 56, gap=4)
    assert row.shape == (56, 3 * 56 + 2 * 4)
    assert (row[:, :56] == 255).all() and (row[:, 56:60] == 128).all() and not row[:, 60:116].any()
    with pytest.raises(ValueError):
        strip([], 56)


def test_to_uint8_clips_and_rounds():
    assert to_uint8(np.array([-1.0, 0.5, 2.0])).tolist() == [0, 128, 255]


def test_heat_overlay_colours_the_hot_pixels():
    digit = np.zeros((28, 28), np.float32)
    heat = np.zeros((28, 28), np.float32)
    heat[10, 10] = 1.0
    overlay = heat_overlay(digit, heat, 56)
    assert overlay.shape == (56, 56, 3) and overlay.dtype == np.uint8
    red, green, blue = overlay[20, 20]
    assert red > 150 and green > 150 and blue == 0  # yellow where the heat is
    assert not overlay[0, 0].any()
    with pytest.raises(ValueError):
        heat_overlay(digit, np.zeros((14, 14)))


def test_confusion_styles():
    matrix = np.diag([50] * 10)
    matrix[4, 9] = 20
    matrix[3, 5] = 1
    styles = confusion_styles(matrix)
    assert "46, 160, 67" in styles[0][0]  # green diagonal
    assert styles[0][1] == ""  # no mistakes, no colour
    assert styles[4][9].endswith("0.90)") and 0.12 < float(styles[3][5].rsplit(" ", 1)[1][:-1]) < 0.9


def test_a_picture_as_a_data_address_decodes_back_to_itself():
    import base64
    import io

    from PIL import Image

    from digitlab.display import png_data_url

    picture = np.arange(28 * 28, dtype=np.float32).reshape(28, 28) / (28 * 28)
    prefix, _, payload = png_data_url(picture).partition(",")
    assert prefix == "data:image/png;base64"
    back = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))
    np.testing.assert_array_equal(back, np.rint(picture * 255).astype(np.uint8))
