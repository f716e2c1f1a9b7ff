"""The Look-inside benchmark: the layer view, a saliency map and the nearest neighbours for one drawing.

What the Draw page computes when a learner opens the layers, the saliency map and "where your
drawing lands" for one model: every layer's output (:class:`digitlab.layers.LayerInspector`), the
gradient × input map (:class:`digitlab.saliency.Explainer`) and the 8 nearest of 10,000 training
digits in the penultimate layer (:class:`digitlab.neighbours.FeatureSpace`). Each is timed alone
and the three together, per model; the target is the three together in ≤ 60 ms.
"""

from __future__ import annotations

from typing import Any

from bench.inference import canvas_drawing, percentiles, time_calls

SPACE_TRAIN = 10_000  # as the Draw page searches
SPACE_MAP = 3_000


def measure_inside(models: dict[str, Any], data, repeats: int) -> dict[str, Any]:
    """Per model: p50/p95 ms of the layer view, the saliency map, the neighbours and all three.

    Args:
        models: name → loaded Keras model.
        data: MNIST (:class:`digitlab.data.Mnist`): the neighbours are searched among its digits.
        repeats: timed calls per measurement.
    """
    from digitlab.layers import LayerInspector
    from digitlab.neighbours import FeatureSpace
    from digitlab.preprocess import preprocess
    from digitlab.saliency import Explainer

    image = preprocess(canvas_drawing()).image
    if image is None:
        raise RuntimeError("the benchmark drawing was not recognised as a digit")
    result: dict[str, Any] = {"drawing": "the inference part's two-stroke 4", "neighbours_searched": SPACE_TRAIN,
                              "models": {}}
    for name, model in models.items():
        inspector, explainer = LayerInspector(model), Explainer(model)
        space = FeatureSpace(model, data.x_train[:SPACE_TRAIN], data.y_train[:SPACE_TRAIN],
                             data.x_test[:SPACE_MAP], data.y_test[:SPACE_MAP])

        def all_three(inspector=inspector, explainer=explainer, space=space) -> None:
            inspector.outputs(image)
            explainer.saliency(image, 4)
            space.nearest(image)

        result["models"][name] = {
            "layers": percentiles(time_calls(lambda i=inspector: i.outputs(image), repeats)),
            "saliency": percentiles(time_calls(lambda e=explainer: e.saliency(image, 4), repeats)),
            "neighbours": percentiles(time_calls(lambda s=space: s.nearest(image), repeats)),
            "all_three": percentiles(time_calls(all_three, repeats)),
        }
    result["slowest_p50"] = max(timing["all_three"]["p50"] for timing in result["models"].values())
    return result


def inside_section(inside: dict[str, Any]) -> str:
    """The part's table: one row per model."""
    from bench.report import format_table

    headers = ["one drawing, one model", "layers p50", "saliency p50", "neighbours p50", "all three p50 / p95"]
    rows = [[name, timing["layers"]["p50"], timing["saliency"]["p50"], timing["neighbours"]["p50"],
             f"{timing['all_three']['p50']:.1f} / {timing['all_three']['p95']:.1f}"]
            for name, timing in inside["models"].items()]
    return "\n".join([f"Look inside, ms ({inside['drawing']}; neighbours among {inside['neighbours_searched']:,})",
                      format_table(headers, rows)])
