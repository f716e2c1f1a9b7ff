"""The inference benchmark: how long one drawing takes, against ``model.predict``.

Times preprocessing of a canvas-sized drawing, each model on it through
:class:`~digitlab.inference.Predictor` (the app's path), and all models on it (the Draw page's
Compare mode), each against ``model.predict`` on the same input — what most tutorials call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

CANVAS_SIZE = 280
BRUSH_WIDTH = 22
# A "4" in two strokes, in canvas coordinates, the way the Draw page's canvas delivers it.
FOUR_STROKES = (((190, 40), (70, 170), (220, 170)), ((175, 90), (175, 250)))


HUGE_SIZE = 4000  # pixels a side: a phone photo's size


def canvas_drawing(size: int = CANVAS_SIZE, brush: int = BRUSH_WIDTH) -> np.ndarray:
    """An (H, W, 4) uint8 RGBA canvas: a white "4" on opaque black, like the Draw page's."""
    picture = Image.new("RGBA", (size, size), (0, 0, 0, 255))
    pen = ImageDraw.Draw(picture)
    scale = size / CANVAS_SIZE
    for stroke in FOUR_STROKES:
        points = [(x * scale, y * scale) for x, y in stroke]
        pen.line(points, fill=(255, 255, 255, 255), width=max(1, round(brush * scale)), joint="curve")
    return np.asarray(picture)


def photo_timings(repeats: int) -> dict[str, Any]:
    """Preprocessing the benchmark's 4 photographed in each paper-photos scene (a 240 px photo;
    the scenes that even out the light or find a sheet on a desk cost the most)."""
    from digitlab.paper_photos import SCENES, photograph
    from digitlab.preprocess import preprocess

    digit = np.asarray(Image.fromarray(canvas_drawing()[..., 0]).resize((28, 28), Image.Resampling.BOX))
    photos = {scene: photograph(digit, scene, np.random.default_rng(0)) for scene in SCENES}
    scenes = {scene: percentiles(time_calls(lambda photo=photo: preprocess(photo), repeats))
              for scene, photo in photos.items()}
    slowest = max(scenes, key=lambda scene: scenes[scene]["p50"])
    return {"scenes": scenes, "slowest": slowest, "slowest_p50": scenes[slowest]["p50"]}


def time_calls(function: Callable[[], Any], repeats: int, warmup: int = 3) -> list[float]:
    """Milliseconds of each of ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def percentiles(samples: list[float]) -> dict[str, float | int | None]:
    """p50, p95, mean and count of a list of timings (linear interpolation, like numpy)."""
    if not samples:
        return {"p50": None, "p95": None, "mean": None, "n": 0}
    values = np.asarray(samples, dtype=np.float64)
    return {"p50": round(float(np.percentile(values, 50)), 3), "p95": round(float(np.percentile(values, 95)), 3),
            "mean": round(float(values.mean()), 3), "n": len(samples)}


def ratio(baseline: dict[str, Any], ours: dict[str, Any]) -> float | None:
    """How many times faster ours is at the median (None when either is missing)."""
    if not baseline.get("p50") or not ours.get("p50"):
        return None
    return round(baseline["p50"] / ours["p50"], 1)


def measure_inference(models: dict[str, Any], repeats: int, baseline_repeats: int,
                      options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Time preprocessing, each model and all models on one drawing, and ``model.predict`` likewise.

    Args:
        models: name → loaded Keras model (e.g. from ``ModelStore.load``).
        repeats: timed calls per measurement of our path.
        baseline_repeats: timed calls of ``model.predict`` (50–150 ms each, so fewer).
        options: the store's reading options (``digitlab.reading.store_options``): all models
            are then also timed with the "not a digit" tests and calibration the page uses.

    Returns:
        JSON-ready timings in milliseconds, with the baseline/ours ratios.
    """
    from digitlab.inference import Predictor
    from digitlab.preprocess import preprocess
    from digitlab.reading import read_picture

    drawing = canvas_drawing()
    image = preprocess(drawing).image
    if image is None:
        raise RuntimeError("the benchmark drawing was not recognised as a digit")
    batch = image[np.newaxis]
    predictors = {name: Predictor(model) for name, model in models.items()}
    result: dict[str, Any] = {"drawing": f"{CANVAS_SIZE}×{CANVAS_SIZE} RGBA canvas, a two-stroke 4",
                              "preprocess": percentiles(time_calls(lambda: preprocess(drawing), repeats)),
                              "models": {}}
    huge = canvas_drawing(HUGE_SIZE)  # an uploaded photo: it must not take seconds
    result["preprocess_huge"] = {"size": HUGE_SIZE, **percentiles(
        time_calls(lambda: preprocess(huge), max(2, repeats // 20), warmup=1))}
    result["preprocess_photos"] = photo_timings(max(5, repeats // 4))
    for name, predictor in predictors.items():
        ours = percentiles(time_calls(lambda p=predictor: p.predict_one(image), repeats))
        baseline = percentiles(time_calls(lambda m=models[name]: m.predict(batch, verbose=0), baseline_repeats))
        result["models"][name] = {"predictor": ours, "predict": baseline, "ratio": ratio(baseline, ours),
                                  "digit": predictor.predict_one(image)[0]}

    def compare_ours() -> None:
        read_picture(drawing, predictors)

    def compare_baseline() -> None:
        prepared = preprocess(drawing).image[np.newaxis]
        for model in models.values():
            model.predict(prepared, verbose=0)

    ours = percentiles(time_calls(compare_ours, repeats))
    baseline = percentiles(time_calls(compare_baseline, baseline_repeats))
    result["compare"] = {"models": list(models), "ours": ours, "predict": baseline, "ratio": ratio(baseline, ours)}
    if options is not None:
        checked = [name for name, check in options.get("feature_checks", {}).items() if check is not None]
        result["compare_as_the_page_reads"] = {
            "pixel_test": options.get("novelty") is not None, "models_with_own_test": checked,
            "ours": percentiles(time_calls(lambda: read_picture(drawing, predictors, **options), repeats))}
    return result
