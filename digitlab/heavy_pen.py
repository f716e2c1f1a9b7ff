"""Heavy pens: training digits redrawn with a marker's stroke, made from MNIST's own digits.

MNIST's strokes are about an eighth of the digit's height. A digit written with a felt pen, drawn
small with a wide brush or scanned in bold reaches the model with strokes a fifth to a half
of its height, and the flag and base of a continental 1 then fuse into a blob that reads as 4 or
8. ``heavy_pen_batch`` widens the strokes of a share of each training batch by 1–3 px all round
(grey dilation) and puts the digit back in MNIST's frame, so the stroke grows against the digit's
size the way it does in such pictures. ``styled_only`` gives the heavy pen to the synthetic
styles alone (a flagged 1, a narrow 8), where it fuses strokes, and leaves MNIST's own digits as
they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from digitlab.framing import reframe
from digitlab.recipe import RecipePart

PAD = 4  # px of room round the 28×28 frame: a dilated 20 px digit grows to at most 26 px


@dataclass(frozen=True)
class HeavyPenSettings(RecipePart):
    """How often a digit gets a heavy pen, and how heavy: the stroke is widened by a whole number
    of pixels on each side, drawn uniformly from ``grow`` per digit. With ``styled_only`` the rate
    is a share of the digits given a synthetic style, and no other digit gets a heavy pen."""

    rate: float = 0.1
    grow: tuple[int, int] = (1, 3)
    styled_only: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"heavy pen rate must be in [0, 1]; got {self.rate}")
        low, high = self.grow
        if not 1 <= low <= high <= PAD:
            raise ValueError(f"heavy pen grow must be whole pixels in [1, {PAD}], low ≤ high; got {self.grow}")


def heavy_pen_batch(images: tf.Tensor, generator: tf.random.Generator, settings: HeavyPenSettings,
                    eligible: tf.Tensor | None = None) -> tf.Tensor:
    """Redraw a random ``settings.rate`` share of (N, 28, 28) digits in [0, 1] with a heavier pen.

    ``eligible`` ((N,) bool), when given, limits the choice to those digits. Returns the same
    shape, the chosen digits re-framed (longer side 20 px, centre of mass at the centre); the
    others are untouched.
    """
    picked_here = generator.uniform([tf.shape(images)[0]]) < settings.rate
    chosen = tf.where(picked_here if eligible is None else picked_here & eligible)
    picked = tf.pad(tf.gather_nd(images, chosen), [[0, 0], [PAD, PAD], [PAD, PAD]])[..., None]
    grow = generator.uniform([tf.shape(picked)[0], 1, 1, 1], settings.grow[0], settings.grow[1] + 1)
    grow = tf.floor(grow)
    widened = picked
    for step in range(1, settings.grow[1] + 1):
        dilated = tf.nn.max_pool2d(widened, 3, 1, "SAME")
        widened = tf.where(grow >= step, dilated, widened)
    return tf.tensor_scatter_nd_update(images, chosen, reframe(widened[..., 0]))
