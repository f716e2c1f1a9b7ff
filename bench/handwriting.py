"""The your-handwriting benchmark: what labelling a drawing costs the server, and fine-tuning.

``labelling`` times :func:`digitlab.labelling.label_drawing` — the Draw page's Right / Wrong
click — on a 280×280 canvas drawing with every timed model answering it, into a fresh database.

``finetune`` fine-tunes ``cnn`` on the synthetic continental writer (30 drawings per digit, 300
in all: :mod:`digitlab.synthetic_writer`) with MNIST replay, through
:func:`digitlab.finetune.finetune_and_store`, and reports the time and the forgetting meter.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from bench.inference import canvas_drawing, percentiles, time_calls

WRITER = "continental"


def measure_labelling(models: dict[str, Any], repeats: int, scratch: str) -> dict[str, Any]:
    """Milliseconds per labelled drawing: the models' answers, the PNG and one database transaction."""
    from digitlab.digits_db import DigitsDb, NewDigit, picture_to_png
    from digitlab.inference import Predictor
    from digitlab.labelling import label_drawing
    from digitlab.preprocess import preprocess
    from digitlab.reading import read_input

    drawing = canvas_drawing()
    model_input = preprocess(drawing).image
    predictors = {name: Predictor(model) for name, model in models.items()}
    db = DigitsDb(Path(scratch) / "labelling.sqlite")
    samples = time_calls(lambda: label_drawing(db, "bench", 4, drawing, model_input, predictors), repeats)
    stored = len(db.digits("bench"))
    # Where the time goes: the models' answers, the PNG, and the database write (checks and commit).
    digit = NewDigit("bench-parts", 4, picture_to_png(drawing), model_input)
    parts = {"answers": lambda: read_input(model_input, predictors), "png": lambda: picture_to_png(drawing),
             "database write": lambda: db.add(digit)}
    return {"drawing": "280×280 RGBA canvas, a two-stroke 4", "models": list(models), "label": percentiles(samples),
            "rows_stored": stored,
            "parts": {name: percentiles(time_calls(function, repeats)) for name, function in parts.items()}}


def measure_finetune(models_dir: str, data_path: str | None, scratch: str, *, per_digit: int = 30,
                     base: str = "cnn") -> dict[str, Any]:
    """Fine-tune ``base`` on the synthetic writer with the default settings; time and meter."""
    from digitlab.data import load_mnist
    from digitlab.digits_db import DigitsDb, NewDigit, picture_to_png
    from digitlab.finetune import FinetuneConfig, ForgettingMeter, finetune_and_store
    from digitlab.preprocess import preprocess
    from digitlab.store import ModelStore
    from digitlab.synthetic_writer import synthetic_writer
    from digitlab.writer_scores import load_writer_digits

    source = ModelStore(models_dir)
    store = ModelStore(Path(scratch) / "finetune-models")  # the new model never lands in the real store
    store.root.mkdir(parents=True, exist_ok=True)
    for path in (source.card_path(base), source.model_path(base)):
        shutil.copy2(path, store.root / path.name)
    pictures, labels = synthetic_writer(per_digit=per_digit, seed=0)
    db = DigitsDb(Path(scratch) / "finetune.sqlite")
    db.add_many([NewDigit(WRITER, int(label), picture_to_png(picture), preprocess(picture).image)
                 for picture, label in zip(pictures, labels, strict=True)])
    data = load_mnist(data_path, allow_download=False)
    config = FinetuneConfig(base=base, writer=WRITER)
    started = time.perf_counter()
    card = finetune_and_store(config, load_writer_digits(db, WRITER), data, store, f"{base}-{WRITER}")
    total = time.perf_counter() - started
    meter = ForgettingMeter.from_dict(card["finetune"]["meter"])
    held = meter.heldout_digits
    errors_before = round((1 - meter.heldout_before) * held) if held else None
    errors_after = round((1 - meter.heldout_after) * held) if held else None
    return {
        "base": base, "writer": f"synthetic continental (1s with a long flag, crossed 7s), {per_digit} per digit",
        "config": card["config"], "finetune_digits": card["finetune"]["finetune_digits"], "heldout_digits": held,
        "train_samples_per_epoch": card["train_samples"], "epochs": card["epochs_run"],
        "fit_seconds": card["train_seconds"], "total_seconds": round(total, 2), "meter": meter.to_dict(),
        "mnist_drop_points": round((meter.mnist_before - meter.mnist_after) * 100, 3),
        "heldout_errors_before": errors_before, "heldout_errors_after": errors_after,
        "errors_left_share": (round(errors_after / errors_before, 3) if errors_before else None),
    }


def labelling_section(part: dict[str, Any]) -> str:
    label = part["label"]
    lines = [f"Labelling one drawing ({', '.join(part['models'])} answering, one transaction): "
             f"p50 {label['p50']:.1f} ms, p95 {label['p95']:.1f} ms over {label['n']} ({part['rows_stored']} rows)"]
    lines += [f"  {name}: p50 {timing['p50']:.1f} ms, p95 {timing['p95']:.1f} ms"
              for name, timing in part.get("parts", {}).items()]
    return "\n".join(lines)


def finetune_section(part: dict[str, Any]) -> str:
    meter = part["meter"]
    return "\n".join([
        f"Fine-tuning {part['base']} on {part['finetune_digits']} digits of a {part['writer']}",
        f"  fit {part['fit_seconds']:.1f} s ({part['epochs']} epochs of {part['train_samples_per_epoch']:,} images), "
        f"{part['total_seconds']:.1f} s with the before/after evaluations",
        f"  MNIST test accuracy {meter['mnist_before']:.2%} → {meter['mnist_after']:.2%} "
        f"(drop {part['mnist_drop_points']:.2f} points)",
        f"  held-out ({part['heldout_digits']} digits) {meter['heldout_before']:.2%} → {meter['heldout_after']:.2%}: "
        f"errors {part['heldout_errors_before']} → {part['heldout_errors_after']}",
    ])
