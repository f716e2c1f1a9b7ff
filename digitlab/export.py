"""Take a model home: its ``.keras`` file as stored, or a TensorFlow Lite file for phones.

A TFLite file is only written after it has been run on test digits and gave the same answer as
the Keras model on every one of them; otherwise the export is refused and nothing is written.
Files are written under a temporary name and renamed into place.

Converting with ``tf.lite.TFLiteConverter.from_keras_model`` matters: converting a traced
``tf.function`` over the model (``from_concrete_functions``) gave a 17 KB file without the
weights that answered NaN (measured with the shipped ``cnn``).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitlab.store import ModelStore

FORMATS = ("keras", "tflite")
SUFFIXES = {"keras": ".keras", "tflite": ".tflite"}


class ExportError(ValueError):
    """The model cannot be exported as asked; the message says why."""


@dataclass(frozen=True)
class ExportReport:
    """What was written and how the exported file was checked."""

    name: str
    format: str
    path: str
    bytes: int
    checked: int  # test digits the exported file was run on (0: not run, a plain copy)
    agreeing: int  # of those, how many got the Keras model's answer
    max_difference: float | None  # the largest probability difference on them


def export_model(store: ModelStore, name: str, format: str, output: str | os.PathLike,
                 check_images: np.ndarray | None = None) -> ExportReport:
    """Write model ``name`` to ``output`` as ``format`` (``keras`` or ``tflite``).

    Args:
        store: where the model is.
        name: the model's name in the store.
        format: ``keras`` copies the stored file; ``tflite`` converts and checks.
        output: the file to write; its suffix must match the format.
        check_images: (N, 28, 28) test digits in [0, 1] the TFLite file must answer like the model.

    Raises:
        ExportError: an unknown format, a wrong suffix, no test digits for TFLite, or answers that
            differ from the Keras model's (nothing is written then).
        StoreError: no such model, or it cannot be loaded.
    """
    output = Path(output)
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}: use {' or '.join(FORMATS)}")
    if output.suffix != SUFFIXES[format]:
        raise ExportError(f"a {format} file must end in {SUFFIXES[format]}, not {output.name!r}")
    if format == "keras":
        store.load(name)  # refuse a broken file now rather than hand it out
        _atomic_copy(store.model_path(name), output)
        return ExportReport(name, format, str(output), output.stat().st_size, 0, 0, None)
    if check_images is None or len(check_images) == 0:
        raise ExportError("a TFLite export is checked on test digits; none were given")
    model = store.load(name)
    content = to_tflite(model)
    expected = _keras_probabilities(model, check_images)
    got = tflite_probabilities(content, check_images)
    agreeing = int((got.argmax(axis=1) == expected.argmax(axis=1)).sum())
    difference = float(np.abs(got - expected).max())
    if agreeing != len(check_images):
        raise ExportError(f"the TFLite file answers {len(check_images) - agreeing} of {len(check_images)} "
                          "test digits differently from the Keras model; nothing was written")
    _atomic_write(output, content)
    return ExportReport(name, format, str(output), len(content), len(check_images), agreeing, difference)


def to_tflite(model) -> bytes:
    """A Keras model as TFLite flat-buffer bytes (float32, batch size free)."""
    import tensorflow as tf

    # The converter prints the endpoints of a temporary SavedModel to stdout: keep stdout for results.
    with contextlib.redirect_stdout(io.StringIO()):
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def tflite_probabilities(content: bytes, images: np.ndarray) -> np.ndarray:
    """Run a TFLite model over (N, 28, 28) images in one batch; returns (N, 10)."""
    import tensorflow as tf

    batch = np.asarray(images, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_content=content)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(source["index"], list(batch.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], batch)
    interpreter.invoke()
    return np.array(interpreter.get_tensor(target["index"]))


def _keras_probabilities(model, images: np.ndarray) -> np.ndarray:
    from digitlab.inference import Predictor

    return Predictor(model).probabilities(images)


def _atomic_write(path: Path, content: bytes) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)


def _atomic_copy(source: Path, path: Path) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file, open(source, "rb") as original:
            shutil.copyfileobj(original, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    finally:
        Path(temp_name).unlink(missing_ok=True)
