"""What the your-handwriting tests share: digits without MNIST (scikit-learn's UCI digits) and a
tiny model trained on them in a few seconds, stored like any other."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digitlab.digits_db import DigitsDb, ModelAnswer, NewDigit, picture_to_png
from digitlab.other_handwriting import to_picture
from digitlab.preprocess import preprocess


def uci_pictures(count: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` UCI digits from index ``start`` on, as 64×64 white-on-black uint8 pictures, and their
    labels. The few the preprocessing refuses (blobs that look like filled shapes) are skipped."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pictures, labels = [], []
    for block, label in zip(bunch.images[start:], bunch.target[start:], strict=True):
        picture = to_picture(block)
        if preprocess(picture).image is not None:
            pictures.append(picture)
            labels.append(label)
        if len(pictures) == count:
            break
    return np.stack(pictures), np.array(labels, dtype=np.int64)


def uci_inputs(count: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The same digits as 28×28 model inputs (float32)."""
    pictures, labels = uci_pictures(count, start)
    return np.stack([preprocess(picture).image for picture in pictures]).astype(np.float32), labels


def fill_writer(db: DigitsDb, writer: str, count: int, start: int = 0) -> None:
    """Label ``count`` UCI digits as ``writer``'s, the way the Draw page stores them."""
    pictures, labels = uci_pictures(count, start)
    db.add_many([NewDigit(writer, int(label), picture_to_png(picture), preprocess(picture).image,
                          (ModelAnswer("tiny", int(label), 0.9),))
                 for picture, label in zip(pictures, labels, strict=True)])


def tiny_model(seed: int = 0, epochs: int = 8):
    """A small dense model (28×28 → 10) fitted to 600 UCI digits: rough, but far above chance."""
    import keras

    keras.utils.set_random_seed(seed)
    images, labels = uci_inputs(600, start=600)
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(images, labels, epochs=epochs, batch_size=32, verbose=0)
    return model


def store_tiny_model(root: Path, name: str = "tiny") -> Path:
    """Put :func:`tiny_model` in a model store at ``root``; its card's test set is 300 other UCI digits."""
    from digitlab.evaluation import evaluate
    from digitlab.inference import Predictor
    from digitlab.store import ModelStore

    model = tiny_model()
    images, labels = uci_inputs(300, start=1400)
    test = evaluate(Predictor(model), images, labels).to_dict()
    ModelStore(root).save(name, model, {"architecture": "tiny", "parameters": int(model.count_params()),
                                        "test": test, "history": []})
    return root
