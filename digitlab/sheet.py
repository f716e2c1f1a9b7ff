"""A sheet of paper photographed lying on a desk: the desk is not the picture's background.

The preprocessing takes a picture's border for its background. In a photo of a sheet on a darker
desk the border is the desk, so the sheet itself would pass for bright ink and every answer would
be the sheet's outline. :func:`within_the_sheet` finds the sheet and cuts the photo down to it.
"""

from __future__ import annotations

import numpy as np

from digitlab.picture_ops import REDUCED_SIDE, binary, carried_on, enlarge, frame, joined_to_border, reduced

PAPER_PERCENTILE = 90  # of a photo's brightness: its paper, where a sheet lies on a surface
SURFACE_CONTRAST = 0.25  # the border darker than the paper by this: the surface round a sheet
BAND_SHARE = 0.12  # of the reduced picture's longer side: the surface is wider than this, strokes narrower
RECTANGULAR = 0.8  # of the smallest rectangle round the sheet, turned any way: the least it fills
SHEET_INSET = 0.03  # of the sheet's box: cut off its edge
MIN_SHEET_SIDE = 0.1  # of the photo's longer side: a sheet's box is at least this wide and tall
SURFACE_INK = 0.4  # darker than the surface by this share of it: ink, so the "surface" is paper in shadow
SURFACE_INK_SHARE = 0.005  # of the surface: that much ink means a page in shadow, not a desk
SHEET_EDGE = 0.5  # of the paper's contrast with the surface: the least step across the sheet's edge


def within_the_sheet(gray: np.ndarray) -> np.ndarray:
    """A photo (float (H, W) brightness) of a sheet of paper on a darker surface, cut down to the
    sheet; any other picture as it is.

    The surface is the dark region joined to the border that is wider than any stroke (ink
    touching the edge is not it); the rest is the sheet. When the sheet is about as rectangular
    as a sheet (not a bold chalk digit) and edged by a step (not a fading shadow), and the
    surface has no pen strokes on it (not a page half in a hard shadow), the photo is cropped to
    the sheet's box, and the surface left in the box's corners is painted with the paper next to
    it.
    """
    small = reduced(gray, REDUCED_SIDE // 2)  # a sheet is large: half the pixels find it
    border = frame(small, 1)
    paper = float(np.percentile(small, PAPER_PERCENTILE))
    surface_level = float(np.median(border))
    if paper - surface_level < SURFACE_CONTRAST:
        return gray
    dark = small < (surface_level + paper) / 2.0
    band = max(3, round(BAND_SHARE * max(small.shape)) | 1)
    surface = joined_to_border(binary(binary(dark, band, np.min), band, np.max) & dark)
    sheet = ~surface
    rows, cols = np.nonzero(sheet)
    if not len(rows):
        return gray
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    finer = reduced(gray) < (surface_level + paper) / 2.0  # the outline's shape wants more pixels
    if _rectangularity(*np.nonzero(~joined_to_border(finer))) < RECTANGULAR:
        return gray  # a bold bright digit (chalk) is no rectangle
    if _step(small, sheet) < SHEET_EDGE * (paper - surface_level) or _holds_ink(small, surface):
        return gray  # the light fades into a shadow, or a shadow's hard edge crosses the digit
    scale = gray.shape[0] / small.shape[0], gray.shape[1] / small.shape[1]
    inset = round(SHEET_INSET * max(bottom - top, right - left))
    box = (slice(int((top + inset) * scale[0]), int((bottom - inset) * scale[0])),
           slice(int((left + inset) * scale[1]), int((right - inset) * scale[1])))
    inside = gray[box].copy()
    if min(inside.shape) < MIN_SHEET_SIDE * max(gray.shape):
        return gray  # a sliver, not a sheet with a digit on it
    # Painted over: all the dark joined to the edge, the slivers the opening left out included,
    # with the paper next to it carried on outwards (so a shadow on the sheet goes on smoothly).
    painted = binary(joined_to_border(dark), 3, np.max)
    around = enlarge(painted.astype(np.float32), gray.shape)[box] > 0
    inside[around] = enlarge(carried_on(small, ~painted), gray.shape)[box][around]
    return inside


def _rectangularity(rows: np.ndarray, cols: np.ndarray) -> float:
    """How much of the smallest rectangle round these pixels (turned in steps of 3°) they fill:
    about 1 for a sheet, even turned or seen a little askew; π/4 for an ellipse."""
    if not len(rows):
        return 0.0
    smallest = np.inf
    for degrees in range(0, 90, 3):
        angle = np.radians(degrees)
        along = cols * np.cos(angle) + rows * np.sin(angle)
        across = rows * np.cos(angle) - cols * np.sin(angle)
        smallest = min(smallest, (np.ptp(along) + 1) * (np.ptp(across) + 1))
    return float(len(rows) / smallest)


def _step(small: np.ndarray, sheet: np.ndarray) -> float:
    """How much brighter the sheet is just inside its edge than the surface just outside it
    (medians over 2 px on either side, the picture's own border left out)."""
    inner = sheet & ~binary(sheet, 5, np.min)
    outer = ~sheet & binary(sheet, 5, np.max)
    away = np.zeros_like(sheet)
    away[1:-1, 1:-1] = True
    inner, outer = inner & away, outer & away
    if not inner.any() or not outer.any():
        return 0.0
    return float(np.median(small[inner]) - np.median(small[outer]))


def _holds_ink(small: np.ndarray, surface: np.ndarray) -> bool:
    """Whether the surface, away from the sheet's edge, has pen strokes on it: then it is the
    page itself in a shadow with a hard edge, and the digit may lie on both sides of it."""
    core = binary(surface, 5, np.min)
    if not core.any():
        return False
    values = small[core]
    return bool(np.mean(values < (1.0 - SURFACE_INK) * np.median(values)) > SURFACE_INK_SHARE)
