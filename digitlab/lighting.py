"""Photos of digits on paper: uneven light, and the lines of ruled or squared paper.

The preprocessing tells ink from background by one background level, the median of the
picture's border. Under a lamp or a phone's shadow the paper is brighter on one side than on the
other, and the darker paper counts as ink: the crop takes in half the page. The printed lines
of an exercise book count as ink too. On the paper-photos test set (:mod:`digitlab.paper_photos`,
2026-12-01) ``cnn`` read 70 of 200 photos right under a shadow, 25 under a deep shadow, 51 in a
dim room, 73 under darker corners, 42 on squared paper and 26 on ruled paper under a shadow,
against 200 of 200 on a blank, evenly lit page; with this module it reads all 1,400 (and all
200 close-ups, whose strokes touch the photo's edges).

When the border's brightness varies, :func:`even_out` estimates the paper's own brightness at
every pixel and takes the ink relative to it. The estimate is a grey-scale closing (for dark ink)
or opening (for bright ink) over a window a fifth of the picture wide: strokes thinner than the
window vanish from it, the light's slow changes stay. A digit cropped tight fills the picture and
its strokes can be as wide as that window; the window then grows to 2/5 of the digit's extent.
Which of the two is the ink is decided against a running median over 2/5 of the picture, which
sits on the paper whichever way the ink goes, even in a tight crop. All of it runs on the picture
reduced to under 100 px a side, then is enlarged back.

When faint lines cross a photo's edge again and again, :func:`without_ruled_lines` keeps only
the ink near the pen's own (darker) strokes. Pictures made on a computer take neither path.
"""

from __future__ import annotations

import numpy as np

from digitlab.picture_ops import REDUCED_SIDE, box_blur, enlarge, frame, reduced, running

WINDOW_SHARE = 0.2  # of the reduced picture's longer side: wider than any stroke, narrower than the light's changes
UNEVEN_BORDER = 0.08  # the border's brightness spans more than this (5th to 95th percentile): uneven light
RULED_CROSSINGS = 8  # runs of ink along the picture's edge: ruled or squared paper
CROSSING_INSETS = (0.0, 0.03, 0.06)  # of the shorter side: where the loops round the picture run
LINE_SHARE = 0.1  # of the peak ink: the faintest printed line looked for at the edges
STRONG_SHARE = 0.5  # of the peak ink: a photo's pen strokes reach it, its paper's printed lines do not
EDGE_REACH = 0.01  # of the picture's longer side: how far a stroke's soft edges reach from its core
ONE_COLOUR_SHARE = 0.5  # of the border's background in one exact colour: a picture made on a computer
NEAR_MEDIAN = 0.1  # of full brightness from the border's median: the border's background
MEDIAN_SHARE = 0.4  # of the reduced picture's longer side: the running median that sits on the paper
DIGIT_WINDOW_SHARE = 0.4  # of the digit's extent: wider than any of its strokes
BORDER_SHARE = 1 / 16  # of the reduced picture's shorter side: the frame the border is read from


def is_photo(gray: np.ndarray) -> bool:
    """Whether a picture (float (H, W) brightness) looks photographed rather than made on a
    computer: a canvas, a scan or a smoothly enlarged small picture has one exact background
    colour along most of its border's background (the border pixels near its median, so that a
    digit touching the edge does not count); a photo's background is noisy."""
    border = frame(gray, 1)
    middle = np.partition(border, len(border) // 2)[len(border) // 2]  # a pixel's own value, even half in shadow
    background = border[np.abs(border - middle) < NEAR_MEDIAN]
    _, counts = np.unique(background, return_counts=True)
    return bool(counts.max() < ONE_COLOUR_SHARE * counts.sum())


def is_uneven(gray: np.ndarray) -> bool:
    """Whether the light across a photo's border (float (H, W) brightness in [0, 1]) varies
    more than noise: a shadow, a lamp or a vignette. Ask only of a photo (:func:`is_photo`): a
    picture made on a computer may shade its background on purpose."""
    return _uneven(reduced(gray))


def even_out(gray: np.ndarray, margin: float) -> tuple[np.ndarray, bool]:
    """Ink relative to the local background, bright on 0, and whether the ink was dark.

    Args:
        gray: float32 (H, W) brightness in [0, 1], as from ``preprocess.brightness``.
        margin: differences from the paper below this are ignored when judging which way the
            ink goes (``preprocess.POLARITY_MARGIN``).

    Returns:
        (ink, inverted), like ``preprocess.fix_polarity``: a page with no contrast beyond
        ``margin`` anywhere gives all zeros, inverted when the page is light.
    """
    gray = box_blur(gray)  # the ink is taken relative to dim paper: noise grows with it
    small = reduced(gray)
    window = max(3, round(WINDOW_SHARE * max(small.shape)) | 1)
    coarse = reduced(small, REDUCED_SIDE // 2)  # a median over a wide window: half the pixels do
    paper = enlarge(running(coarse, round(MEDIAN_SHARE * max(coarse.shape)) | 1, np.median), gray.shape)
    darker, brighter = _positive_mass(paper - gray - margin), _positive_mass(gray - paper - margin)
    if darker == 0.0 and brighter == 0.0:
        return np.zeros(gray.shape, np.float32), bool(paper.mean() > 0.5)
    inverted = darker > brighter
    ink = _ink_against(gray, small, window, inverted)
    # A digit that fills the picture (a tight crop) has strokes as wide as the window: they come
    # out hollow. The window then grows to a share of the digit's own extent.
    wider = round(DIGIT_WINDOW_SHARE * _extent(ink) * max(small.shape) / max(gray.shape)) | 1
    if wider > window:
        ink = _ink_against(gray, small, wider, inverted)
    return ink, inverted


def _ink_against(gray: np.ndarray, small: np.ndarray, window: int, inverted: bool) -> np.ndarray:
    """The ink relative to the paper (or board) estimated over ``window``-wide squares of ``small``.

    The paper under dark strokes: a closing (max, then min) fills them in; the board under
    bright strokes: an opening (min, then max) removes them. Both keep a shadow's hard edge
    where it is; smoothing the estimate afterwards would blur it into a band of false ink.
    """
    first, then = (np.max, np.min) if inverted else (np.min, np.max)
    background = enlarge(running(running(small, window, first), window, then), gray.shape)
    if inverted:
        ink = (background - gray) / np.maximum(background, 1e-3)
    else:
        ink = (gray - background) / np.maximum(1.0 - background, 1e-3)
    return np.clip(ink, 0.0, 1.0).astype(np.float32)


def _extent(ink: np.ndarray) -> int:
    """The longer side, in pixels, of the box round the ink at half its peak or more."""
    rows, cols = np.nonzero(ink >= STRONG_SHARE * ink.max())
    return int(max(np.ptp(rows), np.ptp(cols))) + 1 if len(rows) else 0


def without_ruled_lines(ink: np.ndarray, peak: float, faint: float) -> np.ndarray:
    """A photo's ink at ``faint`` of ``peak`` or more, without the paper's printed lines.

    Ruled or squared paper shows itself at the picture's edges: its lines, however faint, cross
    the border again and again (:data:`RULED_CROSSINGS` times or more), a digit a few times at
    most. On such paper
    only ink within a few pixels of ink at half the peak or more counts: a pen stroke's soft
    edges stay, the lines (fainter than the pen) go. Other pictures keep all their faint ink, so
    a pencil digit drawn lighter in places loses nothing.
    """
    kept = ink >= faint * peak
    if _border_crossings(ink >= LINE_SHARE * peak) < RULED_CROSSINGS:
        return np.where(kept, ink, np.float32(0))
    # The pen's strokes, without the specks where two of the paper's lines cross (unless the pen
    # is finer than the specks).
    strong = (ink >= STRONG_SHARE * peak).astype(np.float32)
    core = running(running(strong, 3, np.min), 3, np.max)
    if not core.any():
        core = strong
    reach = max(1, round(EDGE_REACH * max(ink.shape))) * 2 + 1
    near = running(core, reach, np.max) > 0
    return np.where(kept & near, ink, np.float32(0))


def _border_crossings(mask: np.ndarray) -> int:
    """How many separate runs of ink a loop round the picture passes through: the most over
    loops at the edge and a little inside it (a line may run along the edge itself)."""
    counts = []
    for share in CROSSING_INSETS:
        inset = round(share * min(mask.shape))
        inner = mask[inset:mask.shape[0] - inset, inset:mask.shape[1] - inset]
        loop = np.concatenate([inner[0, :], inner[1:, -1], inner[-1, -2::-1], inner[-2:0:-1, 0]])
        counts.append(int(np.count_nonzero(loop & ~np.roll(loop, 1))))
    return max(counts)


def _uneven(small: np.ndarray) -> bool:
    border = frame(small, max(1, round(min(small.shape) * BORDER_SHARE)))
    low, high = np.percentile(border, [5, 95])
    return bool(high - low > UNEVEN_BORDER)


def _positive_mass(difference: np.ndarray) -> float:
    return float(np.maximum(difference, 0.0).sum())
