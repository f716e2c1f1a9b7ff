"""The training benchmark: our recipe against the tutorial's, as time to a test accuracy.

For each family (MLP, LeNet, CNN) two runs are timed on the same data: ours through
:func:`digitlab.training.train` (augmentation, schedule, best epoch kept), and the tutorial's
recipe of the same family trained the tutorial's way — plain ``model.fit`` on numpy arrays with
its batch size, optimizer and epochs. After every epoch a callback measures test accuracy and the
training time so far, with its own evaluation time left out, which gives time-to-accuracy.

Every run trains in a fresh Python process (``python -m bench.training SPEC``): our
``train`` switches TensorFlow's op determinism on for the rest of a process, and thread pools and
memory would otherwise carry over from one run to the next.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# family: (our recipe, the tutorial's recipe of the same kind). ``cnn_fast`` is our time-to-99 % recipe;
# it shares the Keras example as its baseline, which is trained once per benchmark run.
FAMILIES = {"mlp": ("mlp", "tutorial_mlp"), "lenet": ("lenet", "tutorial_lenet"), "cnn": ("cnn", "keras_cnn"),
            "cnn_fast": ("cnn_fast", "keras_cnn")}
TARGET_ACCURACY = {"mlp": 0.98, "lenet": 0.99, "cnn": 0.99, "cnn_fast": 0.99}
QUICK_TARGET_ACCURACY = 0.80
RESULT_PREFIX = "BENCH-RESULT "
PROGRESS_INDENT = "  "
ERROR_TAIL_LINES = 20
EVALUATION_BATCH = 1000


@dataclass(frozen=True)
class RunSpec:
    """One timed training run, as handed to the child process."""

    family: str
    architecture: str
    way: str  # "ours" (digitlab.training.train) or "tutorial" (plain model.fit)
    target: float
    data_path: str | None = None
    train_size: int | None = None  # None: all 60,000
    test_size: int | None = None  # None: all 10,000
    epochs: int | None = None  # None: the recipe's
    seed: int = 0
    save_to: str | None = None  # also store the model there under the family's name


def family_specs(families: list[str], *, quick: bool, data_path: str | None,
                 save_to: str | None = None) -> list[RunSpec]:
    """The (ours, tutorial) run pair of each family, full-size or quick."""
    sizes: dict[str, Any] = {"train_size": 3000, "test_size": 1000, "epochs": 2} if quick else {}
    specs = []
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
        target = QUICK_TARGET_ACCURACY if quick else TARGET_ACCURACY[family]
        ours, tutorial = FAMILIES[family]
        specs.append(RunSpec(family, ours, "ours", target, data_path, save_to=save_to, **sizes))
        specs.append(RunSpec(family, tutorial, "tutorial", target, data_path, **sizes))
    return specs


def compare_family(ours: dict[str, Any], tutorial: dict[str, Any]) -> dict[str, Any]:
    """The family's verdict: how many times sooner ours reached the target (None: not both did)."""
    mine, theirs = ours.get("time_to_target"), tutorial.get("time_to_target")
    speedup = round(theirs / mine, 2) if mine and theirs else None
    return {"family": ours["family"], "target": ours["target"], "ours": ours, "tutorial": tutorial,
            "speedup": speedup}


def measure_run(spec: RunSpec, timeout: float = 4 * 3600) -> dict[str, Any]:
    """Run one spec in a child process; returns its result, or ``{"error": …}``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    command = [sys.executable, "-m", "bench.training", json.dumps(asdict(spec))]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               cwd=Path(__file__).resolve().parent.parent)
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    tail: list[str] = []
    try:
        for line in process.stderr:  # pass the per-epoch lines on, keep the rest for an error message
            if line.startswith(PROGRESS_INDENT):
                sys.stderr.write(line)
            tail = [*tail[-(ERROR_TAIL_LINES - 1):], line.rstrip()]
        output = process.stdout.read()
        process.wait()
    finally:
        timer.cancel()
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    last_words = next((line for line in reversed(tail) if line.strip()), "no output")
    return {**asdict(spec), "error": f"the run failed (exit {process.returncode}): {last_words}"}


# -- inside the child --------------------------------------------------------------------------
def _clock_class():
    """The Keras callback class, defined late so the parent never imports TensorFlow."""
    import keras
    import numpy as np

    from digitlab.data import to_float
    from digitlab.inference import Predictor

    class AccuracyClock(keras.callbacks.Callback):
        """Test accuracy after each epoch, and the training seconds so far without its own evaluation."""

        def __init__(self, images: np.ndarray, labels: np.ndarray, label: str):
            super().__init__()
            self.images, self.labels, self.label = to_float(images), labels, label
            self.rows: list[dict[str, float]] = []
            self.started = self.epoch_started = 0.0
            self.paused = 0.0

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.predictor = Predictor(self.model, batch_size=EVALUATION_BATCH)  # traced before the clock starts
            self.started = time.perf_counter()

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            ended = time.perf_counter()
            predicted = self.predictor.probabilities(self.images).argmax(axis=1)
            accuracy = float((predicted == self.labels).mean())
            row = {"epoch": epoch + 1, "seconds": round(ended - self.epoch_started, 3),
                   "train_seconds": round(ended - self.started - self.paused, 3),
                   "test_accuracy": round(accuracy, 5)}
            self.rows.append(row)
            print(f"{PROGRESS_INDENT}{self.label} epoch {row['epoch']}: test {accuracy * 100:.2f} %, "
                  f"{row['seconds']:.1f} s/epoch, {row['train_seconds']:.1f} s so far",
                  file=sys.stderr, flush=True)
            self.paused += time.perf_counter() - ended

    return AccuracyClock


def _train_ours(spec: RunSpec, data, clock):
    from digitlab.training import TrainConfig, train

    result = train(TrainConfig(spec.architecture, epochs=spec.epochs, train_size=spec.train_size,
                               seed=spec.seed), data, callbacks=[clock])
    config = result.config
    recipe = {"epochs": config.epochs, "batch_size": config.batch_size, "optimizer": config.optimizer,
              "learning_rate": config.learning_rate, "schedule": config.schedule, "augment": config.augment}
    return result.model, result.train_samples, recipe


def _train_tutorial(spec: RunSpec, data, clock):
    """The tutorial's way: compile with its optimizer, ``fit`` numpy arrays, keep the last epoch."""
    import keras

    from digitlab.architectures import build_model, get_architecture
    from digitlab.data import to_float
    from digitlab.training import make_optimizer

    recipe = get_architecture(spec.architecture).recipe
    epochs = spec.epochs or recipe.epochs
    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec.architecture)
    model.compile(optimizer=make_optimizer(recipe.optimizer, recipe.learning_rate, "constant", 0),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x_train, y_train = to_float(data.x_train[: spec.train_size]), data.y_train[: spec.train_size]
    model.fit(x_train, y_train, batch_size=recipe.batch_size, epochs=epochs,
              validation_split=recipe.validation_fraction, callbacks=[clock], verbose=0)
    train_samples = len(x_train) - int(len(x_train) * recipe.validation_fraction)
    settings = {"epochs": epochs, "batch_size": recipe.batch_size, "optimizer": recipe.optimizer,
                "learning_rate": recipe.learning_rate, "schedule": "constant", "augment": False}
    return model, train_samples, settings


def run_in_child(spec: RunSpec) -> dict[str, Any]:
    """Train, time and evaluate one spec in this process (the child's work)."""
    from digitlab.data import load_mnist
    from digitlab.inference import Predictor
    from digitlab.store import ModelStore

    data = load_mnist(spec.data_path, allow_download=False)
    data = data.subset(None, spec.test_size)
    clock = _clock_class()(data.x_test, data.y_test, f"{spec.architecture} ({spec.way})")
    trainer = _train_ours if spec.way == "ours" else _train_tutorial
    model, train_samples, recipe = trainer(spec, data, clock)
    predictor = Predictor(model, batch_size=EVALUATION_BATCH)
    accuracy = float((predictor.probabilities(data.x_test).argmax(axis=1) == data.y_test).mean())
    with tempfile.TemporaryDirectory() as folder:
        store = ModelStore(spec.save_to or folder)
        store.save(spec.family, model, {"architecture": spec.architecture, "parameters": model.count_params(),
                                        "test": {"accuracy": accuracy}},
                   overwrite=True, allow_shipped=True)
        file_bytes = store.read_card(spec.family)["model_bytes"]
    summary = summarise(spec, clock.rows, recipe, train_samples, len(data.y_test), accuracy,
                        int(model.count_params()), file_bytes)
    return {**summary, "uci_accuracy": _uci_accuracy(predictor)}


def _uci_accuracy(predictor) -> float | None:
    """Accuracy on the UCI digits (other writers, our preprocessing); None without scikit-learn."""
    from digitlab.evaluation import evaluate
    from digitlab.other_handwriting import MissingDatasetError, load_uci_digits

    try:
        digits = load_uci_digits()
    except MissingDatasetError:
        return None
    return round(evaluate(predictor, digits.images, digits.labels).accuracy, 5)


def summarise(spec: RunSpec, rows: list[dict[str, float]], recipe: dict[str, Any], train_samples: int,
              test_samples: int, accuracy: float, parameters: int, file_bytes: int) -> dict[str, Any]:
    """The run's figures from its per-epoch rows (pure: tested without training)."""
    reached = next((row for row in rows if row["test_accuracy"] >= spec.target), None)
    steady = [row["seconds"] for row in rows[1:]] or [row["seconds"] for row in rows]
    per_epoch = sorted(steady)[len(steady) // 2] if steady else None
    return {
        **asdict(spec), "recipe": recipe, "train_samples": train_samples, "test_samples": test_samples,
        "parameters": parameters, "file_bytes": file_bytes, "test_accuracy": round(accuracy, 5),
        "best_test_accuracy": max((row["test_accuracy"] for row in rows), default=None),
        "seconds_per_epoch": per_epoch,
        "samples_per_second": round(train_samples / per_epoch) if per_epoch else None,
        "train_seconds": rows[-1]["train_seconds"] if rows else None,
        "time_to_target": reached["train_seconds"] if reached else None,
        "epochs_to_target": reached["epoch"] if reached else None,
        "history": rows,
    }


def main(argv: list[str]) -> int:
    """Child entry point: ``python -m bench.training '<RunSpec as JSON>'``."""
    spec = RunSpec(**json.loads(argv[0]))
    print(RESULT_PREFIX + json.dumps(run_in_child(spec)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
