"""The training child's side: ``python -m digitlab.jobs.child``, started by :mod:`digitlab.jobs`.

It reads one JSON spec line on stdin, calls the runner (by default the CLI's
:func:`~digitlab.runs.train_and_store`) and writes JSON lines to stdout: a
progress event per epoch and every few batches, then one result. Further stdin lines are stop
commands; the end of stdin (the web server went away) means stop and discard.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from digitlab.progress import EventHandler, StopSignal

BATCH_REPORT_SECONDS = 0.25  # batch events are throttled; epoch events always go through
EVENT_FIELDS = ("kind", "epoch", "epochs", "batch", "batches", "elapsed", "eta", "logs", "watched")


def epoch_history(epochs: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """A run's "epoch" events as per-epoch metric rows, e.g. ``{"epoch": 1, "loss": …, "val_accuracy": …}``."""
    return [{"epoch": event["epoch"], **event["logs"]} for event in epochs]


def card_summary(card: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a stored run card (small enough to pass between processes)."""
    test = card.get("test", {})
    return {"name": card.get("name"), "architecture": card.get("architecture"),
            "test_accuracy": test.get("accuracy"), "test_loss": test.get("loss"),
            "epochs_run": card.get("epochs_run"), "best_epoch": card.get("best_epoch"),
            "stopped_early": card.get("stopped_early"), "train_seconds": card.get("train_seconds"),
            "parameters": card.get("parameters"), "history": card.get("history", [])}


@dataclass(frozen=True)
class RunSpec:
    """What the child is asked to do; ``config`` holds :class:`TrainConfig` fields."""

    config: dict[str, Any]
    name: str
    models_dir: str
    data_path: str | None
    watch: list[dict[str, Any]] | None = None  # pictures to read after every epoch (``Pin.to_dict``)


def run_train_and_store(spec: RunSpec, *, on_event: EventHandler, stop: StopSignal,
                        keep_if_stopped: bool | Callable[[], bool]) -> dict[str, Any] | None:
    """The child's default runner: the CLI's :func:`~digitlab.runs.train_and_store`, as is.

    Returns the stored run card, or ``None`` when a stopped run was discarded.
    """
    from digitlab.data import load_mnist
    from digitlab.runs import train_and_store
    from digitlab.store import ModelStore
    from digitlab.training import TrainConfig
    from digitlab.watch import pins_from_json

    return train_and_store(TrainConfig(**spec.config), load_mnist(spec.data_path), ModelStore(spec.models_dir),
                           spec.name, on_event=on_event, stop=stop, keep_if_stopped=keep_if_stopped,
                           watch=pins_from_json(spec.watch))


def run_finetune_and_store(spec: RunSpec, *, on_event: EventHandler, stop: StopSignal,
                           keep_if_stopped: bool | Callable[[], bool]) -> dict[str, Any] | None:
    """The fine-tuning runner: the CLI's :func:`~digitlab.finetune.finetune_and_store`, as is.

    ``spec.config`` holds :class:`~digitlab.finetune_config.FinetuneConfig` fields.
    """
    from digitlab.data import load_mnist
    from digitlab.digits_db import DigitsDb, default_db_path
    from digitlab.finetune import finetune_and_store
    from digitlab.finetune_config import FinetuneConfig
    from digitlab.store import ModelStore
    from digitlab.writer_scores import load_writer_digits

    config = FinetuneConfig(**spec.config)
    db = DigitsDb(config.digits_db or default_db_path(spec.models_dir))
    return finetune_and_store(config, load_writer_digits(db, config.writer), load_mnist(spec.data_path),
                              ModelStore(spec.models_dir), spec.name, on_event=on_event, stop=stop,
                              keep_if_stopped=keep_if_stopped)


@dataclass
class _Controls:
    """Stop requests arriving on stdin; end of input (the server went away) means discard."""

    stop: threading.Event = field(default_factory=threading.Event)
    keep: bool = False

    def listen(self, stream: IO[str]) -> None:
        for line in stream:
            with contextlib.suppress(json.JSONDecodeError):
                command = json.loads(line)
                if command.get("command") == "stop":
                    self.keep = bool(command.get("keep"))
                    self.stop.set()
        if not self.stop.is_set():
            self.keep = False
            self.stop.set()


class _Channel:
    """JSON lines to the parent; batch events throttled, write errors ignored (parent gone)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.last_batch = 0.0
        self.lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        with self.lock, contextlib.suppress(OSError, ValueError):
            self.stream.write(json.dumps(message) + "\n")
            self.stream.flush()

    def event(self, event: Any) -> None:
        if event.kind == "batch":
            now = time.monotonic()
            if now - self.last_batch < BATCH_REPORT_SECONDS and event.batch < event.batches:
                return
            self.last_batch = now
        self.send({"type": "event", "event": {key: getattr(event, key, None) for key in EVENT_FIELDS}})


def main() -> None:
    """Entry point of the child: read the spec, train, report, exit."""
    channel = _Channel(os.fdopen(os.dup(1), "w", encoding="utf-8"))
    os.dup2(2, 1)  # anything printed by libraries goes to stderr, not into the message stream
    spec = json.loads(sys.stdin.readline())
    sys.path.extend(entry for entry in spec["sys_path"] if entry not in sys.path)
    controls = _Controls()
    threading.Thread(target=controls.listen, args=(sys.stdin,), daemon=True).start()
    channel.send({"type": "result", **_run(spec, controls, channel)})


def _run(spec: dict[str, Any], controls: _Controls, channel: _Channel) -> dict[str, Any]:
    """Call the runner; every outcome becomes a result message, never a traceback."""
    try:
        module_name, function_name = spec["runner"].split(":")
        runner = getattr(importlib.import_module(module_name), function_name)
        card = runner(RunSpec(spec["config"], spec["name"], spec["models_dir"], spec["data_path"], spec.get("watch")),
                      on_event=channel.event, stop=controls.stop, keep_if_stopped=lambda: controls.keep)
    except Exception as error:  # noqa: BLE001 - reported to the page, which shows the message
        if controls.stop.is_set():
            return {"status": "stopped-discarded", "error": _describe(error)}
        return {"status": "failed", "error": _describe(error)}
    if card is None:
        return {"status": "stopped-discarded"}
    return {"status": "stopped-kept" if card.get("stopped_early") else "done", "card": card_summary(card)}


def _describe(error: Exception) -> str:
    """The message of a settings or training error (``TrainingError`` is a ``RuntimeError``);
    other errors also say their type."""
    if isinstance(error, (ValueError, RuntimeError)) and str(error):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


if __name__ == "__main__":
    main()
