"""One printable sheet per model: training curves, confusion matrix, per-digit precision and
recall, and the misread test digits — what a notebook's ``plt.plot(history…)`` cells show, on one
page, as PNG, SVG or PDF.

matplotlib is imported only here, with its non-interactive Agg backend, so nothing opens a window
and a server without a display can write the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from digitlab.card import RunCard
from digitlab.config import NUM_CLASSES

FORMATS = (".png", ".svg", ".pdf")
MISREAD_SHOWN = 24  # the grid of misread digits: 3 rows of 8
DPI = 120


def write_sheet(card: RunCard, output: str | os.PathLike, test_images: np.ndarray | None = None) -> Path:
    """Draw ``card``'s sheet and write it to ``output`` (its suffix picks the format), atomically.

    Args:
        card: the model's run card (its history and its MNIST test result).
        output: a ``.png``, ``.svg`` or ``.pdf`` path.
        test_images: the MNIST test images the card's mistakes index into; without them the
            grid says how to get them instead.

    Raises:
        ValueError: an unknown suffix, or a card without a test result.
    """
    path = Path(output)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"the report is written as {', '.join(FORMATS)}; got {path.name!r}")
    if card.test is None or not card.test.confusion:
        raise ValueError("the model's card has no test result to report (evaluate it first)")
    figure = draw_sheet(card, test_images)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.close(descriptor)
    try:
        figure.savefig(temporary, dpi=DPI, format=path.suffix[1:].lower())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def draw_sheet(card: RunCard, test_images: np.ndarray | None = None):
    """The sheet as a matplotlib ``Figure`` (for notebooks: display it or save it yourself)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 10), layout="constrained")
    title = card.name or card.architecture
    figure.suptitle(f"{title} — {card.headline()}", fontsize=13)
    top, bottom = figure.subfigures(2, 1, height_ratios=[1, 1.1])
    loss_axes, accuracy_axes, confusion_axes = top.subplots(1, 3, width_ratios=[1, 1, 1.15])
    _curves(card, loss_axes, "loss", "loss")
    _curves(card, accuracy_axes, "accuracy", "accuracy")
    _confusion(card, confusion_axes, figure)
    scores_axes, misread = bottom.subfigures(1, 2, width_ratios=[1, 1.6])
    _per_digit(card, scores_axes.subplots())
    _misread_grid(card, misread, test_images)
    return figure


def _curves(card: RunCard, axes, metric: str, label: str) -> None:
    epochs = [row.get("epoch", index + 1) for index, row in enumerate(card.history)]
    for key, name in ((metric, "training"), (f"val_{metric}", "validation")):
        values = [row.get(key) for row in card.history]
        if any(value is not None for value in values):
            axes.plot(epochs, [np.nan if value is None else value for value in values], marker=".", label=name)
    if metric == "accuracy" and card.test_accuracy is not None:
        axes.axhline(card.test_accuracy, color="grey", linestyle="--", linewidth=1,
                     label=f"test {card.test_accuracy:.2%}")
    axes.set(title=f"{label} per epoch", xlabel="epoch", ylabel=label)
    if card.history:
        axes.legend(fontsize=8)
    else:
        axes.text(0.5, 0.5, "no training history on this card", ha="center", va="center", transform=axes.transAxes)


def _confusion(card: RunCard, axes, figure) -> None:
    matrix = np.asarray(card.test.confusion, dtype=float)
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, np.nan)  # the diagonal would drown the mistakes' colours
    image = axes.imshow(off_diagonal, cmap="Reds")
    for true in range(NUM_CLASSES):
        for predicted in range(NUM_CLASSES):
            count = int(matrix[true, predicted])
            if count:
                axes.text(predicted, true, str(count), ha="center", va="center", fontsize=7,
                          color="black" if true != predicted else "tab:green")
    axes.set(title="confusion (mistakes coloured)", xlabel="predicted digit", ylabel="true digit",
             xticks=range(NUM_CLASSES), yticks=range(NUM_CLASSES))
    figure.colorbar(image, ax=axes, shrink=0.8)


def _per_digit(card: RunCard, axes) -> None:
    digits = np.arange(NUM_CLASSES)
    width = 0.4
    axes.bar(digits - width / 2, np.asarray(card.test.precision) * 100, width, label="precision")
    axes.bar(digits + width / 2, np.asarray(card.test.recall) * 100, width, label="recall")
    lowest = min(min(card.test.precision), min(card.test.recall)) * 100
    axes.set(title="per digit, on the test set", xlabel="digit", ylabel="%", xticks=digits,
             ylim=(max(0.0, lowest - 2), 100.2))
    axes.legend(fontsize=8, loc="lower left")


def _misread_grid(card: RunCard, subfigure, test_images: np.ndarray | None) -> None:
    mistakes = sorted(card.test.mistakes, key=lambda m: -max(m.probabilities))[:MISREAD_SHOWN]
    subfigure.suptitle(f"the {len(mistakes)} most confident of {card.test.incorrect} misread test digits "
                       "(label → answer)", fontsize=10)
    if test_images is None or not mistakes:
        axes = subfigure.subplots()
        axes.axis("off")
        text = "no misread digits" if not mistakes else "the pictures need MNIST: set DIGITLAB_MNIST or pass --data"
        axes.text(0.5, 0.5, text, ha="center", va="center")
        return
    grid = subfigure.subplots(3, MISREAD_SHOWN // 3)
    for axes, mistake in zip(grid.flat, mistakes + [None] * (grid.size - len(mistakes)), strict=True):
        axes.axis("off")
        if mistake is None or mistake.index >= len(test_images):
            continue
        axes.imshow(test_images[mistake.index], cmap="gray", vmin=0, vmax=255)
        axes.set_title(f"{mistake.label} → {mistake.predicted} ({max(mistake.probabilities):.0%})", fontsize=8)
