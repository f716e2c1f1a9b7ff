"""Behaviour of digitlab.images: uploads that are not sane pictures are refused, clearly."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from app_support import pad_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from digitlab.images import ImageError, decode_data_url, decode_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START = b"\xff\xd8\xff"
EXIF_ORIENTATION = 0x0112
ROTATED_90_CLOCKWISE = 6


def encode(image: Image.Image, image_format: str = "PNG", **options: object) -> bytes:
    """The image saved to bytes, as a browser would upload it."""
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def png_declaring_10000_squared() -> bytes:
    """A ~12 KB PNG that would decompress to 100 million pixels."""
    return encode(Image.new("1", (10_000, 10_000)))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_ordinary_png_comes_back_unchanged(mode: str) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (12, 9, len(mode)), dtype=np.uint8)
    original = Image.fromarray(pixels.squeeze())
    decoded = decode_image(encode(original))
    assert decoded.mode == mode
    assert decoded.size == (9, 12)
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(original))


def test_jpeg_is_decoded_to_rgb() -> None:
    decoded = decode_image(encode(Image.new("RGB", (30, 20), (200, 10, 10)), "JPEG"))
    assert decoded.mode == "RGB"
    assert decoded.size == (30, 20)
    assert abs(decoded.getpixel((15, 10))[0] - 200) < 8


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_huge_declared_size_is_refused_before_decompressing(
    png_declaring_10000_squared: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(png_declaring_10000_squared) < 50_000

    def must_not_decompress(self: Image.Image) -> None:
        raise AssertionError("the pixels were decompressed")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", must_not_decompress)
    with pytest.raises(ImageError, match="10000×10000 pixels; the limit is"):
        decode_image(png_declaring_10000_squared)


def test_pil_bomb_warning_never_escapes_and_our_limit_speaks(png_declaring_10000_squared: bytes) -> None:
    """PIL warns about pictures over 89 M pixels (on stderr, in the CLI); even with warnings made
    errors, the one message is our own limit's."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageError, match="10000×10000 pixels; the limit is"):
            decode_image(png_declaring_10000_squared)


def test_size_limit_is_adjustable() -> None:
    data = encode(Image.new("L", (100, 100)))
    assert decode_image(data, max_pixels=100 * 100).size == (100, 100)
    with pytest.raises(ImageError, match="100×100 pixels"):
        decode_image(data, max_pixels=99 * 100)


def test_file_over_the_byte_limit_is_refused() -> None:
    with pytest.raises(ImageError, match="the limit is"):
        decode_image(encode(Image.new("L", (64, 64))), max_bytes=10)


def test_empty_file_is_refused() -> None:
    with pytest.raises(ImageError, match="empty file"):
        decode_image(b"")


def test_text_named_png_is_refused() -> None:
    with pytest.raises(ImageError, match="not a PNG or JPEG image"):
        decode_image(b"<html>this is not a picture</html>")


@pytest.mark.parametrize("image_format", ["GIF", "BMP", "TIFF", "WEBP"])
def test_other_formats_are_refused(image_format: str) -> None:
    if image_format == "WEBP" and "WEBP" not in Image.SAVE:
        pytest.skip("this PIL build cannot write WebP")
    with pytest.raises(ImageError, match="not a PNG or JPEG image"):
        decode_image(encode(Image.new("L", (8, 8)), image_format))


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_truncated_file_is_refused(image_format: str) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    data = encode(Image.fromarray(noise), image_format)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2])


def test_palette_png_keeps_its_transparency() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 255, 255, 0, 0, 0] + [0] * (256 * 3 - 6))
    image.putpixel((1, 1), 1)
    decoded = decode_image(encode(image, transparency=0))
    assert decoded.mode == "RGBA"
    assert decoded.getpixel((0, 0))[3] == 0
    assert decoded.getpixel((1, 1)) == (0, 0, 0, 255)


def test_palette_png_without_transparency_becomes_rgb() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([10, 20, 30] * 256)
    decoded = decode_image(encode(image))
    assert decoded.mode == "RGB"
    assert decoded.getpixel((2, 2)) == (10, 20, 30)


def test_16_bit_png_is_scaled_not_clipped() -> None:
    levels = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16)
    decoded = decode_image(encode(Image.fromarray(levels)))
    assert decoded.mode == "L"
    np.testing.assert_array_equal(np.asarray(decoded), [[0, 64, 128, 255]])


def test_cmyk_jpeg_becomes_rgb() -> None:
    decoded = decode_image(encode(Image.new("CMYK", (16, 16), (0, 0, 0, 255)), "JPEG"))
    assert decoded.mode == "RGB"
    assert max(decoded.getpixel((8, 8))) < 30  # full black ink stays black


def test_gray_with_alpha_png_keeps_its_alpha() -> None:
    image = Image.new("LA", (4, 4), (0, 0))
    image.putpixel((2, 2), (200, 255))
    decoded = decode_image(encode(image))
    assert decoded.mode == "RGBA"
    assert decoded.getpixel((0, 0))[3] == 0
    assert decoded.getpixel((2, 2)) == (200, 200, 200, 255)


def test_one_bit_png_becomes_8_bit_gray() -> None:
    image = Image.new("1", (8, 8), 0)
    image.putpixel((3, 3), 1)
    decoded = decode_image(encode(image))
    assert decoded.mode == "L"
    assert decoded.getpixel((3, 3)) == 255
    assert decoded.getpixel((0, 0)) == 0


def test_jpeg_exif_orientation_is_applied() -> None:
    image = Image.new("L", (40, 20), 0)
    image.paste(255, (0, 0, 10, 20))  # a white band on the left
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_90_CLOCKWISE
    decoded = decode_image(encode(image, "JPEG", exif=exif.tobytes()))
    assert decoded.size == (20, 40)  # the phone held sideways: upright now
    assert decoded.getpixel((10, 3)) > 200  # the left band is on top after a clockwise turn
    assert decoded.getpixel((10, 36)) < 50


def test_animated_png_gives_its_first_frame() -> None:
    frames = [Image.new("L", (10, 10), level) for level in (50, 200)]
    data = encode(frames[0], save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    decoded = decode_image(data)
    assert decoded.mode == "L"
    assert decoded.getpixel((5, 5)) == 50


def test_decoded_image_no_longer_needs_the_bytes() -> None:
    data = bytearray(encode(Image.new("L", (5, 5), 77)))
    decoded = decode_image(data)
    data[:] = b"\0" * len(data)
    assert decoded.getpixel((2, 2)) == 77


def test_non_bytes_argument_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="bytes"):
        decode_image("picture.png")  # type: ignore[arg-type]


@settings(
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    prefix=st.sampled_from([b"", PNG_SIGNATURE, JPEG_START]),
    body=st.binary(max_size=300),
)
def test_random_bytes_raise_only_image_error(prefix: bytes, body: bytes) -> None:
    try:
        image = decode_image(prefix + body)
    except ImageError:
        return
    assert image.mode in ("L", "RGB", "RGBA")


@settings(derandomize=True, database=None, max_examples=60, deadline=None)
@given(data=st.data())
def test_corrupted_real_png_raises_only_image_error(data: st.DataObject) -> None:
    noise = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    original = bytearray(encode(Image.fromarray(noise)))
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(original) - 1))
        original[position] = data.draw(st.integers(0, 255))
    try:
        image = decode_image(bytes(original))
    except ImageError:
        return
    assert image.mode in ("L", "RGB", "RGBA")


def test_canvas_data_url_decodes_to_the_drawing() -> None:
    drawing = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    drawing.paste((255, 255, 255, 255), (100, 40, 130, 240))
    decoded = decode_data_url(pad_message(encode(drawing)))
    assert decoded.size == (280, 280) and decoded.getpixel((115, 100)) == (255, 255, 255, 255)


@pytest.mark.parametrize(("url", "reason"), [
    (None, "not arrive as a PNG"),
    ("data:image/svg+xml;base64,PHN2Zz4=", "not arrive as a PNG"),
    ("data:image/png;base64,@@not base64@@", "not base64"),
    (pad_message(b"just some text"), "not a PNG or JPEG"),
    (pad_message(encode(Image.new("1", (10_000, 10_000)))), "pixels"),
])
def test_forged_canvas_messages_are_refused_with_a_reason(url, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        decode_data_url(url, max_pixels=2048 * 2048)
