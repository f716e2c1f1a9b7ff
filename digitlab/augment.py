"""Random distortions that make MNIST look like digits people draw.

People draw digits tilted, squeezed, off-centre and with pens of every width; MNIST's own
digits are tidy. Training on random affine distortions and stroke-width changes is what lets a
model trained on MNIST read a mouse drawing; the synthetic styles of :mod:`digitlab.styles`
(flagged 1s, crossed 7s, narrow and wide digits…) cover writers MNIST lacks. Everything runs as
batched TensorFlow ops inside the ``tf.data`` pipeline, so the models themselves stay plain and load anywhere.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import tensorflow as tf

from digitlab.coarse import CoarseSettings, coarsen_batch
from digitlab.elastic import ElasticSettings, elastic_batch
from digitlab.heavy_pen import HeavyPenSettings, heavy_pen_batch
from digitlab.styles import StyleSettings, style_batch


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the random distortions (uniformly sampled per image)."""

    rotation_degrees: float = 12.0
    scale_range: tuple[float, float] = (0.85, 1.15)
    shear_degrees: float = 8.0
    translate_pixels: float = 2.5
    stroke_probability: float = 0.5  # chance of thinning or thickening the strokes
    styles: StyleSettings | None = field(default_factory=StyleSettings)  # None: MNIST's styles only
    coarse: CoarseSettings | None = field(default_factory=CoarseSettings)  # None: full resolution only
    # Off by default: trained into cnn and lenet, it did not beat the recipe without it
    # (docs/handwriting.md, "Elastic distortions"). ``ElasticSettings()`` turns it on.
    elastic: ElasticSettings | None = None
    # Off by default (docs/handwriting.md, "Heavy pens"). ``HeavyPenSettings()`` turns it on.
    heavy_pen: HeavyPenSettings | None = None

    def to_dict(self) -> dict[str, Any]:
        """The whole recipe as plain JSON values, for the run card."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentSettings:
        """The inverse of ``to_dict``; unknown keys raise ``TypeError``.

        A recipe recorded before a kind of distortion existed did not use it: a missing ``styles``,
        ``coarse``, ``elastic`` or ``heavy_pen`` reads as None.
        """
        values = dict(values)
        kinds = {"styles": StyleSettings, "coarse": CoarseSettings, "elastic": ElasticSettings,
                 "heavy_pen": HeavyPenSettings}
        parts = {key: values.pop(key, None) for key in kinds}
        ranges = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
        return cls(**ranges, **{key: None if part is None else kinds[key].from_dict(part)
                                for key, part in parts.items()})


def _affine_matrices(batch: int, settings: AugmentSettings, generator: tf.random.Generator) -> tf.Tensor:
    """Per-image 8-parameter projective transforms (output → input) about the image centre."""
    rad = math.pi / 180.0
    angle = generator.uniform([batch], -settings.rotation_degrees, settings.rotation_degrees) * rad
    shear = generator.uniform([batch], -settings.shear_degrees, settings.shear_degrees) * rad
    low, high = settings.scale_range
    scale_x = generator.uniform([batch], low, high)
    scale_y = scale_x * generator.uniform([batch], 0.92, 1.08)
    shift = generator.uniform([batch, 2], -settings.translate_pixels, settings.translate_pixels)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Inverse map: input = A^-1 (output - centre - shift) + centre, A = R·Shear·Scale.
    a00, a01 = cos / scale_x, (sin + cos * tf.tan(shear)) / scale_x
    a10, a11 = -sin / scale_y, (cos - sin * tf.tan(shear)) / scale_y
    centre = 13.5
    out_x, out_y = centre + shift[:, 0], centre + shift[:, 1]
    b0 = centre - a00 * out_x - a01 * out_y
    b1 = centre - a10 * out_x - a11 * out_y
    zeros = tf.zeros([batch])
    return tf.stack([a00, a01, b0, a10, a11, b1, zeros, zeros], axis=1)


def _stroke_width(images: tf.Tensor, settings: AugmentSettings, generator: tf.random.Generator) -> tf.Tensor:
    """Randomly thicken (grey dilation) or thin (grey erosion) each image's strokes, partially."""
    batch = tf.shape(images)[0]
    dilated = tf.nn.max_pool2d(images, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-images, 2, 1, "SAME")
    choice = generator.uniform([batch, 1, 1, 1])
    amount = generator.uniform([batch, 1, 1, 1], 0.3, 0.8)
    half = settings.stroke_probability / 2
    thicker = images + amount * (dilated - images)
    thinner = images + amount * (eroded - images)
    return tf.where(choice < half, thicker, tf.where(choice < 2 * half, thinner, images))


def augment_batch(
    images: tf.Tensor, generator: tf.random.Generator, settings: AugmentSettings | None = None
) -> tf.Tensor:
    """Warp, re-pen and affinely distort a batch of (N, 28, 28) float images in [0, 1]; same shape out."""
    settings = settings or AugmentSettings()
    batch = tf.shape(images)[0]
    if settings.elastic is not None and settings.elastic.rate > 0:
        images = elastic_batch(images, generator, settings.elastic)
    x = _stroke_width(images[..., tf.newaxis], settings, generator)
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x,
        transforms=_affine_matrices(batch, settings, generator),
        output_shape=tf.shape(x)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return tf.clip_by_value(x[..., 0], 0.0, 1.0)


def augment_examples(
    images: tf.Tensor, labels: tf.Tensor, generator: tf.random.Generator, settings: AugmentSettings | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Give a share of a batch a synthetic style and a share a heavy pen, distort every image, then
    coarsen a share.

    Returns (images, labels): a 1's stem drawn into a 7 or a 4 carries its new label.
    """
    settings = settings or AugmentSettings()
    plain = images
    if settings.styles is not None and any(settings.styles.rates):
        images, labels = style_batch(images, labels, generator, settings.styles)
    heavy = settings.heavy_pen
    if heavy is not None and heavy.rate > 0:  # a styled 1's flag and base too
        styled = tf.reduce_any(tf.not_equal(images, plain), axis=[1, 2]) if heavy.styled_only else None
        images = heavy_pen_batch(images, generator, heavy, styled)
    images = augment_batch(images, generator, settings)
    if settings.coarse is not None and settings.coarse.rate > 0:
        images = coarsen_batch(images, generator, settings.coarse)
    return images, labels
