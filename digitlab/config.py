"""What a run is, without TensorFlow: shapes, the pad, the architectures' recipes, ``TrainConfig``.

Everything here is plain Python, so the Train page's form, ``--help`` and ``list`` can describe
and validate a run without loading TensorFlow (several seconds). The layers themselves are in
:mod:`digitlab.architectures`, keyed by the same names.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28)
# The Draw page's pad: a square this many CSS pixels wide, and the default pen. 22 px is wide
# enough that a digit drawn across most of the pad keeps MNIST-like strokes at 28×28.
CANVAS_SIZE = 280
DEFAULT_BRUSH = 22
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine")
MAX_EPOCHS = 500
MAX_SEED = 2**32 - 1  # NumPy's seeds (keras.utils.set_random_seed seeds NumPy too) stop here
MIN_WEIGHT_AVERAGE = 0.9  # a lower momentum averages a few batches only: no different from off
WHOLE_NUMBER = re.compile(r"[+-]?\d{1,30}")


@dataclass(frozen=True)
class Recipe:
    """The training settings an architecture is meant to be trained with."""

    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    schedule: str = "constant"  # "constant" | "cosine"
    augment: bool = False
    validation_fraction: float = 0.1


@dataclass(frozen=True)
class ArchitectureSpec:
    """A named architecture as a user chooses it: what it is, its hyperparameters, its recipe."""

    name: str
    family: str
    description: str
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    recipe: Recipe = Recipe(10, 128, "adam", 1e-3)
    reference_accuracy: float | None = None  # what the tutorial reports, for baselines


SPECS: dict[str, ArchitectureSpec] = {
    arch.name: arch
    for arch in (
        ArchitectureSpec(
            "mlp", "mlp", "1024-1024 multilayer perceptron with dropout, trained on augmented digits",
            {"units": 1024, "depth": 2, "dropout": 0.2},
            Recipe(40, 128, "adam", 1e-3, "cosine", augment=True, validation_fraction=0.05),
        ),
        ArchitectureSpec(
            "lenet", "lenet", "LeNet-5 style convnet (20@5×5, 50@5×5, dense 500), augmented",
            {"conv1_filters": 20, "conv2_filters": 50, "dense_units": 500, "dropout": 0.3},
            Recipe(20, 128, "adam", 1e-3, "cosine", augment=True, validation_fraction=0.05),
        ),
        ArchitectureSpec(
            "cnn", "cnn", "Our small CNN: strided stem, conv-BN blocks, dropout, augmented",
            {"width": 32, "dense_units": 128, "dropout": 0.25, "head_dropout": 0.4},
            Recipe(24, 128, "adam", 3e-3, "cosine", augment=True, validation_fraction=0.05),
        ),
        ArchitectureSpec(
            "cnn_fast", "cnn", "Our CNN at 3/8 width, 2 epochs without augmentation: 99 % in under a minute",
            {"width": 12, "dense_units": 128, "dropout": 0.25, "head_dropout": 0.4},
            Recipe(2, 128, "adam", 5e-3, "cosine", augment=False, validation_fraction=0.05),
        ),
        ArchitectureSpec(
            "tutorial_mlp", "mlp", "Keras mnist_mlp tutorial: 512-512, dropout 0.2, RMSprop, 20 epochs",
            {"units": 512, "depth": 2, "dropout": 0.2},
            Recipe(20, 128, "rmsprop", 1e-3, validation_fraction=0.0), reference_accuracy=0.9840,
        ),
        ArchitectureSpec(
            "tutorial_lenet", "lenet", "LeNet-5 as usually taught: no augmentation, batch 32, Adam",
            {"conv1_filters": 20, "conv2_filters": 50, "dense_units": 500, "dropout": 0.0},
            Recipe(10, 32, "adam", 1e-3, validation_fraction=0.0), reference_accuracy=0.9900,
        ),
        ArchitectureSpec(
            "tutorial_small_cnn", "cnn", "Blog tutorial's simple CNN: conv 32@5×5, dense 128, 10 epochs",
            {},
            Recipe(10, 200, "adam", 1e-3, validation_fraction=0.0), reference_accuracy=0.9880,
        ),
        ArchitectureSpec(
            "keras_cnn", "cnn", "keras-io mnist_convnet example: conv 32/64, dropout, 15 epochs",
            {"dropout": 0.5},
            Recipe(15, 128, "adam", 1e-3, validation_fraction=0.1), reference_accuracy=0.9919,
        ),
    )
}


def get_spec(name: str) -> ArchitectureSpec:
    """Look an architecture up by name, with the list of valid names in the error."""
    try:
        return SPECS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(SPECS)}") from None


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run. ``None`` fields take the architecture's recipe."""

    architecture: str = "cnn"
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    schedule: str | None = None
    augment: bool | None = None
    validation_fraction: float | None = None
    train_size: int | None = None  # use only the first N training images (quick runs)
    seed: int = 0
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    # The augmentation recipe (``AugmentSettings.to_dict``); empty takes the default one.
    augmentation: dict[str, Any] = field(default_factory=dict)
    # Stored models whose averaged answers the run learns from besides the labels
    # (:mod:`digitlab.distillation`), and the share of each target their answer takes.
    teachers: list[str] = field(default_factory=list)
    teacher_weight: float = 0.5
    # Polyak averaging: the momentum of an exponential moving average of the weights, which the run
    # validates and keeps instead of the raw weights (0: off). It spans about 1 / (1 − momentum)
    # batches; averaging the end of a trajectory lands in a flatter minimum, which is meant to
    # read unfamiliar writers better.
    weight_average: float = 0.0

    def resolved(self) -> TrainConfig:
        """This config with every ``None`` replaced by the architecture's recipe (and, when
        augmenting, the augmentation recipe written out so the run card records it)."""
        recipe = asdict(get_spec(self.architecture).recipe)
        filled = {key: recipe[key] for key in recipe if getattr(self, key) is None}
        config = replace(self, **filled)
        if config.augment and not config.augmentation:
            from digitlab.augment import AugmentSettings  # TensorFlow: only an augmented run needs it

            config = replace(config, augmentation=AugmentSettings().to_dict())
        return config

    def validate(self, available: int) -> None:
        """Raise ``ValueError`` with a readable message for any setting that cannot work."""
        arch = get_spec(self.architecture)
        config = self.resolved()
        _require(_is_whole(config.epochs) and 1 <= config.epochs <= MAX_EPOCHS, f"epochs must be 1–{MAX_EPOCHS}")
        _require(_is_whole(config.seed) and 0 <= config.seed <= MAX_SEED, f"seed must be 0–{MAX_SEED}")
        rate = config.learning_rate
        _require(isinstance(rate, (int, float)) and math.isfinite(rate) and 0 < rate <= 1,
                 "learning rate must be a finite number in (0, 1]")
        _require(config.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        _require(config.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}")
        _require(0.0 <= config.validation_fraction <= 0.5, "validation fraction must be in [0, 0.5]")
        size = available if config.train_size is None else config.train_size
        _require(isinstance(size, int) and 100 <= size <= available,
                 f"training-set size must be 100–{available}")
        train_count = size - round(size * config.validation_fraction)
        _require(isinstance(config.batch_size, int) and 1 <= config.batch_size <= train_count,
                 f"batch size must be 1–{train_count} (the number of training images)")
        unknown = set(config.hyperparameters) - set(arch.hyperparameters)
        _require(not unknown, f"{arch.name} has no hyperparameter(s) {sorted(unknown)}")
        for key, value in config.hyperparameters.items():
            _check_hyperparameter(key, value, arch.hyperparameters[key])
        _require(isinstance(config.teachers, (list, tuple))
                 and all(isinstance(name, str) and name for name in config.teachers),
                 "teachers must be a list of model names")
        weight = config.teacher_weight
        _require(isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight)
                 and 0 < weight <= 1, "teacher weight must be a number in (0, 1]")
        average = config.weight_average
        _require(isinstance(average, (int, float)) and not isinstance(average, bool)
                 and (average == 0 or MIN_WEIGHT_AVERAGE <= average < 1),
                 f"weight average must be 0 (off) or a momentum in [{MIN_WEIGHT_AVERAGE}, 1)")
        if config.augmentation:
            from digitlab.augment import AugmentSettings

            try:
                AugmentSettings.from_dict(config.augmentation)
            except (TypeError, ValueError, AttributeError) as error:
                raise ValueError(f"the augmentation recipe is not one this version knows: {error}") from None


def whole_number(text: str, setting: str) -> int:
    """Read a typed whole number exactly, for a form: ``"2.5"``, ``"1e30"`` or ``"NaN"`` are
    refused with a message naming ``setting``, never rounded or replaced by a default.

    Thousands separators (``10,000``, ``10_000``) are allowed. The range is checked by
    :meth:`TrainConfig.validate`.
    """
    cleaned = str(text).strip().replace(",", "").replace("_", "")
    if not WHOLE_NUMBER.fullmatch(cleaned):
        raise ValueError(f"{setting} must be a whole number in digits, e.g. 5; got {str(text).strip()[:40]!r}")
    return int(cleaned)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_hyperparameter(name: str, value: Any, default: Any) -> None:
    """Sizes (integer defaults) must be whole numbers ≥ 1; rates (float defaults) in [0, 1)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    _require(number, f"{name} must be a finite number, got {value!r}")
    if isinstance(default, int):
        _require(isinstance(value, int) and value >= 1, f"{name} must be a whole number ≥ 1, got {value!r}")
    elif isinstance(default, float):
        _require(0.0 <= value < 1.0, f"{name} must be in [0, 1), got {value!r}")
