"""Turn any picture of a digit into the 28×28 input MNIST itself would have produced.

MNIST's recipe (LeCun et al.): crop the digit to its ink, scale it so that its longer side is 20 px
with anti-aliasing and the aspect ratio kept, then place it in a 28×28 field with its centre of
mass at the centre. A model trained on MNIST has only ever seen digits made that way, so a drawing
or a photo must go through the same steps; squashing a whole canvas to 28×28 (``squash``) gives the
model something it never saw.

Everything here is a pure function of numpy arrays and PIL images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from digitlab.images import decode_image, to_standard_mode
from digitlab.lighting import even_out, is_photo, is_uneven, without_ruled_lines
from digitlab.sheet import within_the_sheet
from digitlab.widening import stroke_width, widen_thin_strokes

MNIST_SIZE = 28
DIGIT_BOX = 20
# MNIST's centres of mass lie at 14.0 ± 0.3 in pixel-index coordinates (measured on x_train).
MNIST_CENTRE = 14.0
# Pictures larger than this (longer side, px) are area-averaged down first, to stay fast.
WORKING_MAX_SIDE = 512
# Ink fainter than this (0..1 above the background) does not count: the picture is blank.
MIN_INK_CONTRAST = 0.2
# Pixels fainter than this fraction of the brightest ink are noise or anti-aliasing fringes.
INK_FRACTION_OF_PEAK = 0.25
# Brightness differences from the background below this are ignored when judging polarity.
POLARITY_MARGIN = 0.1
MIN_INK_PIXELS = 5
MIN_DIGIT_SIDE = 4
# A mark whose longer side is under this many stroke widths is a dot, not a digit.
DOT_ELONGATION = 2.3
# ...when it is small: a dot spans under this fraction of the picture's longer side (a 22 px pen
# dot is 0.08 of the pad); a blob as compact but larger is a filled shape (a disc: 0.72).
DOT_MAX_SPAN = 0.25
# A shape coloured in with gaps (a scribbled square, a dense spiral) is still read as a digit: no
# fill fraction tells it from a bold digit. Refusing ink over 0.75 of a squarish box or 0.9 of
# its inscribed ellipse refused 28 of the 1,797 smoothed UCI digits (mostly 8s) and 21 of
# MNIST's 60,000 training digits.
# Ink scattered over this many pieces or more, with under this share of it in the largest few, is
# grain or noise, not strokes: a picture of random noise 100 px or larger breaks into 22 pieces or
# more with at most 0.3 of its ink in the largest three, while every digit of MNIST's test set,
# the UCI digits, the hard styles and the paper photos keeps 0.87 or more there.
SCATTERED_PIECES = 20
SCATTERED_SHARE = 0.5
LARGEST_PIECES = 3
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)
# The alpha plane is taken as the ink when it varies this many times more than the colours do.
ALPHA_PREFERENCE = 2.0
FLOAT_TOLERANCE = 1e-3

BLANK_MESSAGE = "the picture is blank — there is no ink in it to read as a digit"
FLAT_MESSAGE = "the picture is one colour all over — there is no digit to tell from its background"
FILLED_MESSAGE = "that is a filled shape, not a digit — draw the digit's strokes"
TOO_LITTLE_INK_MESSAGE = "there is too little ink to read a digit — draw a whole digit"
DOT_MESSAGE = "that is a single dot, not a digit — draw a whole digit"
SCATTERED_MESSAGE = "that looks like noise or grain, not a digit's strokes — draw or photograph one digit"
# Strokes wider than this share of the digit's longer side fuse a 1's flag into its stem and fill
# small loops. Of drawn hard-styles pictures the shipped cnn reads 99.4 % of those under 0.2 and
# 85 % of those over 0.25 (docs/handwriting.md, "Heavy pens"); 1.6 % of MNIST's test digits are over it.
HEAVY_STROKE_RATIO = 0.25
HEAVY_STROKE_ADVICE = ("the strokes are heavy for a digit this size, which the models read less surely — "
                       "draw it larger or with a thinner pen")

Picture = np.ndarray | Image.Image | bytes


@dataclass(frozen=True)
class Preprocessed:
    """The MNIST-style input made from a picture, with the steps that led to it.

    Attributes:
        image: (28, 28) float32 in [0, 1], white digit on black; None when there is no digit.
        inverted: the picture was dark ink on a light background and was inverted.
        steps: ordered intermediate pictures for display, float32 in [0, 1]: "grayscale" (after
            polarity; shrunk to at most 512 px), "cropped" (the ink's bounding box), "thickened"
            (only when thin strokes were widened), "scaled" (longer side 20 px) and "centred"
            (the final 28×28, the same array as ``image``). A picture without a digit has only
            the steps reached.
        message: "" when a digit was found, else why there is none, for a person.
        stroke_ratio: the stroke's width over the digit's longer side, as drawn (before any
            widening); 0 when no digit was found. MNIST's median is about 0.15.
    """

    image: np.ndarray | None
    inverted: bool
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    message: str = ""
    stroke_ratio: float = 0.0

    @property
    def is_blank(self) -> bool:
        """No digit was found; ``message`` says why."""
        return self.image is None

    @property
    def advice(self) -> str:
        """A hint for a person when the digit is drawn in a way the models read less surely, else ""."""
        return HEAVY_STROKE_ADVICE if self.stroke_ratio > HEAVY_STROKE_RATIO else ""


def preprocess(picture: Picture, *, blank_threshold: float = MIN_INK_CONTRAST) -> Preprocessed:
    """Make the 28×28 MNIST-style input from a picture of one digit.

    Crops to the ink, widens strokes much thinner than MNIST's, scales the longer side to 20 px
    keeping the aspect ratio, and centres the centre of mass in the 28×28 field. A blank picture,
    a dot or a speck gives ``image=None`` and a message rather than a guess.

    Args:
        picture: a numpy array ((H, W), (H, W, 3) RGB or (H, W, 4) RGBA; uint8, uint16, bool or
            float in [0, 1]), a PIL image, or PNG/JPEG bytes.
        blank_threshold: the least contrast (0..1) between ink and background that counts as ink.

    Returns:
        The result, with the intermediate steps for display.

    Raises:
        ValueError: the picture has the wrong shape or type of pixels, its bytes are not a
            usable image (``images.ImageError``), or ``blank_threshold`` is outside (0, 1].
    """
    if not 0.0 < blank_threshold <= 1.0:
        raise ValueError(f"blank_threshold must be in (0, 1]; got {blank_threshold}")
    light = _shrink(brightness(picture), WORKING_MAX_SIDE)
    photo = is_photo(light)
    if photo:  # a sheet of paper photographed on a desk: the desk is not the background
        light = within_the_sheet(light)
    gray, inverted = fix_polarity(light, photo)
    steps = {"grayscale": gray}
    peak = float(gray.max())
    if peak < blank_threshold:  # a light picture without contrast is a covered pad or a bare page
        return Preprocessed(None, inverted, steps, FLAT_MESSAGE if inverted else BLANK_MESSAGE)
    if photo:  # a photo's paper may be ruled or squared
        ink = without_ruled_lines(gray, peak, INK_FRACTION_OF_PEAK)
    else:
        ink = np.where(gray >= INK_FRACTION_OF_PEAK * peak, gray, np.float32(0))
    if not ink.any():  # a tiny photo whose only ink was a printed line
        return Preprocessed(None, inverted, steps, FLAT_MESSAGE if inverted else BLANK_MESSAGE)
    rows, cols = _ink_box(ink > 0)
    cropped = ink[rows, cols]
    steps["cropped"] = cropped
    mask = cropped > 0
    width = stroke_width(mask)
    problem = _why_not_a_digit(mask, width, max(gray.shape))
    if problem:
        return Preprocessed(None, inverted, steps, problem)
    thickened = widen_thin_strokes(cropped, DIGIT_BOX)
    if thickened is not cropped:
        thickened = thickened[_ink_box(thickened > 0)]  # pooling may have added empty margins
        steps["thickened"] = thickened
    steps["scaled"] = _peak_to_one(_render(thickened, (0.0, 0.0)))
    steps["centred"] = _centre(thickened, steps["scaled"])
    return Preprocessed(steps["centred"], inverted, steps, "", width / max(mask.shape))


def squash(picture: Picture) -> np.ndarray:
    """Resize the whole picture to 28×28, the naive way, for comparison with ``preprocess``.

    Only the polarity is fixed: no cropping, no centring, no keeping of the aspect ratio. The app
    shows it to explain why preprocessing matters.

    Returns:
        (28, 28) float32 in [0, 1], ink bright on black.
    """
    gray = to_grayscale(picture)
    squashed = _resize(gray, (MNIST_SIZE, MNIST_SIZE))
    return np.clip(squashed, 0.0, 1.0)


def to_grayscale(picture: Picture) -> np.ndarray:
    """The picture as ink brightness: float32 (H, W) in [0, 1], bright ink on a dark background.

    Transparency is composited over black (the alpha plane is the ink when only it carries the
    drawing), dark-on-light pictures are inverted, and the background is brought to 0.
    """
    return fix_polarity(brightness(picture))[0]


def brightness(picture: Picture) -> np.ndarray:
    """How bright each pixel is, composited over black: float32 (H, W) in [0, 1], no inversion.

    A drawing canvas with a transparent background keeps its ink only in the alpha plane (the
    colours may all be 0); when alpha varies much more than the composited colours, alpha is used.

    Raises:
        ValueError: wrong shape, empty, or unusable pixel values.
    """
    pixels = _pixel_array(picture)
    channels = pixels.shape[2]
    colour = pixels[..., 0] if channels <= 2 else _luminance(pixels)
    colour = _to_unit(colour, pixels.dtype)
    if channels in (1, 3):
        return colour
    alpha = _to_unit(pixels[..., -1], pixels.dtype)
    if alpha.min() == 1.0:  # opaque, like the canvas with a black background
        return colour
    composite = colour * alpha
    if _spread(alpha) > ALPHA_PREFERENCE * _spread(composite):
        return alpha
    return composite


def fix_polarity(gray: np.ndarray, photo: bool | None = None) -> tuple[np.ndarray, bool]:
    """Make the ink bright and the background 0.

    The background is the median of the picture's border. The ink is whichever side of it, brighter
    or darker, holds more contrast mass, so a paper photo's stray bright speck does not flip it.
    In a photo under uneven light (a border that is brighter in some places than in others) the
    background is estimated at every pixel instead (:mod:`digitlab.lighting`).

    Args:
        gray: float (H, W) in [0, 1], as from ``brightness``.
        photo: whether the picture is a photo (``lighting.is_photo``), when the caller knows.

    Returns:
        (ink, inverted): float32 (H, W) in [0, 1], and whether the picture was dark on light.
    """
    if (is_photo(gray) if photo is None else photo) and is_uneven(gray):
        return even_out(gray, POLARITY_MARGIN)
    background = _background_level(gray)
    brighter = _mass_beyond(gray - np.float32(background + POLARITY_MARGIN))
    darker = _mass_beyond(np.float32(background - POLARITY_MARGIN) - gray)
    inverted = darker > brighter or (darker == brighter and background > 0.5)
    if inverted:
        gray, background = 1.0 - gray, 1.0 - background
    if background == 0.0:  # the drawing canvas: nothing to do
        return gray.astype(np.float32), inverted
    if background >= 1.0 - FLOAT_TOLERANCE:
        return np.zeros(gray.shape, np.float32), inverted
    ink = (gray - np.float32(background)) * np.float32(1.0 / (1.0 - background))
    return _clip_unit(ink.astype(np.float32, copy=False)), inverted


def _pixel_array(picture: Picture) -> np.ndarray:
    """Any accepted picture as a validated (H, W, C) array, C in 1..4, in its own dtype."""
    if isinstance(picture, (bytes, bytearray, memoryview)):
        picture = decode_image(picture)
    if isinstance(picture, Image.Image):
        picture = np.asarray(to_standard_mode(picture))
    if not isinstance(picture, np.ndarray):
        raise TypeError(f"expected a numpy array, a PIL image or image bytes, got {type(picture).__name__}")
    _check_shape(picture.shape)
    _check_values(picture)
    return picture if picture.ndim == 3 else picture[..., np.newaxis]


def _check_shape(shape: tuple[int, ...]) -> None:
    """Refuse shapes that are not a picture, such as a forged canvas payload."""
    expected = "expected a picture of shape (H, W), (H, W, 3) RGB or (H, W, 4) RGBA"
    if len(shape) not in (2, 3):
        raise ValueError(f"{expected}; got an array with {len(shape)} dimensions, shape {shape}")
    if len(shape) == 3 and shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"{expected}; got {shape[2]} channels, shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"the picture is empty: shape {shape}")


def _check_values(array: np.ndarray) -> None:
    """Refuse pixel types and ranges whose meaning would be a guess."""
    kind = array.dtype.kind
    if kind == "f":
        if not np.isfinite(array).all():
            raise ValueError("the picture contains NaN or infinite values")
        low, high = float(array.min()), float(array.max())
        if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
            raise ValueError(f"float pixels must be in [0, 1]; got {low:g}..{high:g} (divide 0..255 by 255)")
    elif kind in "iu" and array.dtype not in (np.uint8, np.uint16):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(f"integer pixels must be in 0..255 (or uint16); got {low}..{high}")
    elif kind not in "biu":
        raise ValueError(f"unsupported pixel type {array.dtype}")


def _luminance(pixels: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of the first three channels, in the pixels' own scale."""
    if pixels.dtype == np.uint8:
        # PIL computes the same luma in C, several times faster than numpy on a canvas.
        return np.asarray(Image.fromarray(pixels).convert("L"))
    red, green, blue = (np.float32(weight) for weight in LUMINANCE_WEIGHTS)
    return red * pixels[..., 0] + green * pixels[..., 1] + blue * pixels[..., 2]


def _to_unit(plane: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Scale a plane of the given source dtype to float32 in [0, 1]."""
    if dtype == np.uint8:
        return plane / np.float32(255.0)  # exact: 255 becomes 1.0, no clipping needed
    full_scale = 65535.0 if dtype == np.uint16 else 1.0 if dtype.kind in "fb" else 255.0
    return _clip_unit(np.asarray(plane / np.float32(full_scale), dtype=np.float32))


def _clip_unit(image: np.ndarray) -> np.ndarray:
    """Clip a float32 array to [0, 1] in place (ufuncs: np.clip's wrapper costs more here)."""
    np.maximum(image, 0.0, out=image)
    return np.minimum(image, 1.0, out=image)


def _mass_beyond(difference: np.ndarray) -> float:
    """The summed positive part of a difference image."""
    return float(np.maximum(difference, 0.0, out=difference).sum())


def _spread(plane: np.ndarray) -> float:
    """Standard deviation on a subsample: enough to tell which plane carries the drawing."""
    step = max(1, max(plane.shape) // 128)
    return float(plane[::step, ::step].std())


def _shrink(gray: np.ndarray, max_side: int) -> np.ndarray:
    """Area-average a large picture down so its longer side is at most ``max_side``."""
    height, width = gray.shape
    factor = -(-max(height, width) // max_side)
    if factor <= 1:
        return gray
    return np.asarray(Image.fromarray(gray).reduce(factor), dtype=np.float32)


def _background_level(gray: np.ndarray) -> float:
    """The median of a thin frame along the picture's edges: the background is the majority."""
    height, width = gray.shape
    frame = max(1, min(height, width) // 32)
    border = np.concatenate(
        [
            gray[:frame].ravel(),
            gray[-frame:].ravel(),
            gray[:, :frame].ravel(),
            gray[:, -frame:].ravel(),
        ]
    )
    return float(np.median(border))


def _ink_box(mask: np.ndarray) -> tuple[slice, slice]:
    """Row and column slices of the bounding box of the True pixels (the mask has some)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _why_not_a_digit(mask: np.ndarray, width: float, picture_side: int) -> str:
    """A message when the cropped ink is a speck, a dot, a solid blob or scattered grain, not a
    digit, else "".

    Args:
        mask: the ink, cropped to its box.
        width: the ink's stroke width (``widening.stroke_width``).
        picture_side: the longer side of the whole picture, which tells a dot from a large blob.
    """
    longer = max(mask.shape)
    if mask.sum() < MIN_INK_PIXELS or longer < MIN_DIGIT_SIDE:
        return TOO_LITTLE_INK_MESSAGE
    if longer < DOT_ELONGATION * width:
        return DOT_MESSAGE if longer < DOT_MAX_SPAN * picture_side else FILLED_MESSAGE
    if _is_scattered(mask):
        return SCATTERED_MESSAGE
    return ""


def _is_scattered(mask: np.ndarray) -> bool:
    """True when the ink is many small pieces (noise, grain) rather than a few strokes."""
    pieces, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count < SCATTERED_PIECES:
        return False
    sizes = np.sort(np.bincount(pieces.ravel())[1:])
    return sizes[-LARGEST_PIECES:].sum() < SCATTERED_SHARE * sizes.sum()


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float (H, W) image to ``size`` = (height, width) with PIL, anti-aliased."""
    source = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    shrinking = size[0] <= image.shape[0] and size[1] <= image.shape[1]
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(source.resize(size[::-1], resample), dtype=np.float32)


def _render(cropped: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Scale the crop so its longer side spans 20 px, moved down/right by a sub-pixel ``shift``.

    The aspect ratio is kept exactly. Shrinking is exact area averaging (MNIST's anti-aliasing)
    and enlarging a tiny digit is bilinear; both are weight matrices, so a fractional shift moves
    the centre of mass by exactly that much (PIL's resize quantises fractional boxes).
    """
    scale = DIGIT_BOX / max(cropped.shape)
    rows = _resampling_weights(cropped.shape[0], scale, shift[0])
    cols = _resampling_weights(cropped.shape[1], scale, shift[1])
    return (rows @ cropped.astype(np.float32, copy=False) @ cols.T).astype(np.float32)


def _resampling_weights(source_length: int, scale: float, shift: float) -> np.ndarray:
    """The (output, source) matrix that resamples one axis by ``scale``, then moves by ``shift``.

    Output pixel j covers source coordinates [(j - shift) / scale, (j + 1 - shift) / scale).
    """
    output_length = math.ceil(source_length * scale + shift - 1e-9)
    if scale <= 1.0:  # the share of each source pixel inside each output pixel
        edges = (np.arange(output_length + 1) - shift) / scale
        source = np.arange(source_length + 1)
        overlap = np.minimum(edges[1:, None], source[None, 1:]) - np.maximum(
            edges[:-1, None], source[None, :-1]
        )
        return (np.maximum(overlap, 0.0) * scale).astype(np.float32)
    centres = (np.arange(output_length) + 0.5 - shift) / scale
    distance = np.abs(centres[:, None] - (np.arange(source_length)[None, :] + 0.5))
    return np.maximum(1.0 - distance, 0.0).astype(np.float32)


def _centre(cropped: np.ndarray, scaled: np.ndarray) -> np.ndarray:
    """Render the digit in the 28×28 field with its centre of mass at MNIST's centre.

    The digit is rendered again from the crop at the sub-pixel offset, so the result changes
    smoothly with the drawing (whole-pixel shifts jump a pixel when the centre of mass crosses a
    half pixel) without the blur of shifting the small image. It is kept inside the field.
    """
    extent = np.array(cropped.shape) * (DIGIT_BOX / max(cropped.shape))
    total = float(scaled.sum())
    centre_row = float(scaled.sum(axis=1) @ np.arange(scaled.shape[0])) / total
    centre_col = float(scaled.sum(axis=0) @ np.arange(scaled.shape[1])) / total
    top = min(max(MNIST_CENTRE - centre_row, 0.0), MNIST_SIZE - extent[0])
    left = min(max(MNIST_CENTRE - centre_col, 0.0), MNIST_SIZE - extent[1])
    rendered = _render(cropped, (top % 1.0, left % 1.0))
    canvas = np.zeros((MNIST_SIZE + 1, MNIST_SIZE + 1), np.float32)
    height, width = rendered.shape
    canvas[int(top) : int(top) + height, int(left) : int(left) + width] = rendered
    return np.minimum(_peak_to_one(canvas[:MNIST_SIZE, :MNIST_SIZE]), 1.0)


def _peak_to_one(image: np.ndarray) -> np.ndarray:
    """Divide by the brightest pixel (when there is one), as MNIST digits peak at 1.0.

    This also keeps thin strokes from fading when a large drawing is shrunk.
    """
    peak = float(image.max())
    return image / np.float32(peak) if peak > 0 else image
