"""What the stroke tests share: a small narrow 8 as the pad sends its strokes, a count of loops, and
the command line's scores on the hard-styles sets."""

from __future__ import annotations

import json

import numpy as np
from scipy import ndimage


def loop(cx: float, cy: float, rx: float, ry: float, points: int = 40) -> list[float]:
    """A closed ellipse as the pad sends a stroke: x0, y0, x1, y1, … in pad pixels."""
    angles = np.linspace(0, 2 * np.pi, points)
    return [float(value) for a in angles for value in (cx + rx * np.sin(a), cy - ry * np.cos(a))]


def narrow_eight(width: float) -> list[dict]:
    """A narrow 8, 90 px tall and 30 px wide on the 280 px pad (two small loops), as the pad's
    strokes message, drawn with a ``width`` px pen."""
    return [{"width": width, "points": loop(140, 118, 15, 22)}, {"width": width, "points": loop(140, 162, 15, 22)}]


def holes(picture: np.ndarray, least: int = 50) -> int:
    """How many pockets of background of at least ``least`` px the ink (over half the peak)
    encloses: an 8 has two; a pinhole where a wide pen's segments meet is not a loop."""
    background, count = ndimage.label(picture < picture.max() / 2)
    border = set(np.unique(np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])))
    sizes = ndimage.sum(np.ones_like(background), background, range(1, count + 1))
    return sum(1 for label, size in enumerate(sizes, start=1) if label not in border and size >= least)


def assert_cli_floors(capsys, on: str, floors: dict[str, float]) -> None:
    """``python -m digitlab evaluate NAME --on ON --json`` for every shipped model: all 1,080 pictures
    scored, each model at or above its floor, and its misreads by style adding up to its misreads."""
    from digitlab.cli import main
    from digitlab.store import SHIPPED_MODELS

    for name in sorted(SHIPPED_MODELS):
        assert main(["evaluate", name, "--on", on, "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["dataset"] == on and result["correct"] + result["incorrect"] == 1080
        assert result["accuracy"] >= floors[name]
        assert sum(item["count"] for item in result["misreads_by_style"]) == result["incorrect"]
