"""Decode untrusted image bytes (uploads) safely.

An uploaded file is only named ``.png`` by its sender: it may be anything, a decompression bomb
included. ``decode_image`` accepts PNG and JPEG only, checks the declared size before any pixel is
decompressed, and always hands back an 8-bit ``L``, ``RGB`` or ``RGBA`` picture.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

import numpy as np
from PIL import Image, ImageOps

ALLOWED_FORMATS = ("PNG", "JPEG")
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_BYTES = 16 * 1024 * 1024  # at least the uploader's server.maxUploadSize (16 MB)
# A digit, even a "1" cropped tight, is at most a few times taller than wide; a 4096×1 strip
# holds none, and cannot even be shown (its preview would be 0 px high).
MAX_ASPECT_RATIO = 20
OUTPUT_MODES = ("L", "RGB", "RGBA")
PNG_DATA_URL_PREFIX = "data:image/png;base64,"
SIXTEEN_BIT_MAX = 65535
EIGHT_BIT_MAX = 255


class ImageError(ValueError):
    """The bytes are not a picture we are willing to decode; the message says why, for a person."""


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Image.Image:
    """Decode PNG or JPEG bytes from an untrusted source into an 8-bit picture.

    The declared size is checked before decompression, so a tiny file declaring a huge picture
    costs nothing. EXIF orientation is applied, animated PNGs give their first frame, and palette
    pictures keep their transparency.

    Args:
        data: the file's bytes.
        max_pixels: the largest width × height accepted.
        max_bytes: the largest file accepted.

    Returns:
        A loaded picture in mode ``"L"``, ``"RGB"`` or ``"RGBA"``.

    Raises:
        ImageError: empty, too large, far too thin, not PNG/JPEG, truncated or corrupt. No
            other PIL error escapes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected the file's bytes, got {type(data).__name__}")
    _check_file_size(data.nbytes if isinstance(data, memoryview) else len(data), max_bytes)
    image = _open(bytes(data))
    _check_pixel_count(image.size, max_pixels)
    _check_proportions(image.size)
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        return to_standard_mode(image)
    except Exception as error:  # a decoder fed hostile bytes can fail in any way
        raise ImageError("the file is truncated or corrupt") from error


def decode_data_url(url: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode a browser canvas's ``data:image/png;base64,…`` URL, as untrusted as any upload."""
    if not isinstance(url, str) or not url.startswith(PNG_DATA_URL_PREFIX):
        raise ImageError("the drawing did not arrive as a PNG picture")
    encoded = url[len(PNG_DATA_URL_PREFIX):]
    if len(encoded) > DEFAULT_MAX_BYTES * 4 // 3 + 4:
        raise ImageError("the drawing is larger than any canvas sends")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("the drawing's data is damaged (not base64)") from None
    return decode_image(data, max_pixels=max_pixels)


def to_standard_mode(image: Image.Image) -> Image.Image:
    """Convert a picture of any PIL mode to 8-bit ``L``, ``RGB`` or ``RGBA``.

    PIL's own ``convert("L")`` clips 16-bit pixels at 255 (a 16-bit scan turns almost white),
    so wide integer modes are rescaled here instead; transparency is kept wherever it exists.
    """
    if image.mode in OUTPUT_MODES:
        return image
    if image.mode == "P":
        has_transparency = "transparency" in image.info
        return image.convert("RGBA" if has_transparency else "RGB")
    if image.mode == "1":
        return image.convert("L")
    if image.mode.startswith("I") or image.mode == "F":
        return _wide_gray_to_l(image)
    has_alpha = "A" in image.getbands() or "a" in image.getbands()
    return image.convert("RGBA" if has_alpha else "RGB")


def _check_file_size(size: int, max_bytes: int) -> None:
    """Reject empty and oversized files before looking inside them."""
    if size == 0:
        raise ImageError("empty file")
    if size > max_bytes:
        raise ImageError(f"the file is {size / 2**20:.1f} MiB; the limit is {max_bytes / 2**20:.1f} MiB")


def _open(data: bytes) -> Image.Image:
    """Read only the header, allowing PNG and JPEG and nothing else."""
    try:
        with warnings.catch_warnings():  # our own pixel limit, checked next, speaks for a large picture
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        # PIL's own guard fired (its limit, or its warning turned into an error by a filter).
        raise ImageError("the image is far too large to decode") from error
    except Image.UnidentifiedImageError as error:
        raise ImageError("not a PNG or JPEG image") from error
    except Exception as error:  # hostile headers can fail in any way
        raise ImageError("the file is truncated or corrupt") from error


def _check_pixel_count(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse a picture whose declared size is too large, before it is decompressed."""
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError("the image has no pixels")
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}×{height} pixels; the limit is {max_pixels:,} pixels "
            f"(e.g. {int(max_pixels**0.5)}×{int(max_pixels**0.5)})"
        )


def _check_proportions(size: tuple[int, int]) -> None:
    """Refuse a strip far too thin to hold a digit (EXIF rotation does not change the ratio)."""
    width, height = size
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageError(f"the image is {width}×{height} pixels, too thin to hold a digit; crop it "
                         f"to the digit (at most {MAX_ASPECT_RATIO} times longer than wide)")


def _wide_gray_to_l(image: Image.Image) -> Image.Image:
    """Rescale a 16/32-bit integer or float grayscale picture to 8 bits.

    Values beyond 255 mean a 16-bit range; a wide picture whose values all fit in 8 bits (what
    PIL's own ``convert("I;16")`` of an 8-bit picture gives) is taken as it is.
    """
    pixels = np.asarray(image).astype(np.float64)
    pixels = np.nan_to_num(pixels, nan=0.0, posinf=SIXTEEN_BIT_MAX, neginf=0.0)
    if pixels.max(initial=0) > EIGHT_BIT_MAX:
        pixels = pixels * (EIGHT_BIT_MAX / SIXTEEN_BIT_MAX)
    return Image.fromarray(np.clip(np.rint(pixels), 0, EIGHT_BIT_MAX).astype(np.uint8))
