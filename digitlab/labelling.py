"""Label a drawing: keep the picture, its 28×28 input, the true digit and what every model said.

The Draw page's "Right" and "Wrong — it's a …" buttons and the labelling benchmark call
:func:`label_drawing`; what it costs on the server is the bench figure.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from PIL import Image

from digitlab.digits_db import DigitsDb, ModelAnswer, NewDigit, picture_to_png
from digitlab.reading import Predicts, read_input


def label_drawing(db: DigitsDb, writer: str, label: int, picture: Image.Image | np.ndarray,
                  model_input: np.ndarray, predictors: Mapping[str, Predicts]) -> int:
    """Store one labelled drawing with every model's answer to it now; returns its id.

    Args:
        db: where the digit goes.
        writer: whose handwriting it is.
        label: the true digit, 0–9, as the writer says.
        picture: the drawing as it came from the pad (or an upload).
        model_input: the 28×28 input the models were given.
        predictors: every usable model by name; each one's answer and confidence is kept.

    Raises:
        ValueError: an invalid writer, label, picture or input (nothing is written).
        DigitsDbError: the database cannot be written.
    """
    readings = read_input(model_input, predictors)
    answers = tuple(ModelAnswer(name, int(reading.digit), float(reading.confidence))
                    for name, reading in readings.items() if reading.digit is not None)
    return db.add(NewDigit(writer, label, picture_to_png(picture), model_input, answers))
