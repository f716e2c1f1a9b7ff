"""What every command prints: progress lines, results as text or JSON, and Ctrl-C as a stop."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator

EXIT_ERROR = 1


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def epoch_line(event) -> str:
    """One progress line per finished epoch, e.g. ``epoch 3/12  loss 0.0512  acc 0.9841 …``."""
    logs = event.logs
    parts = [f"epoch {event.epoch}/{event.epochs}"]
    for key, label in (("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val_loss"),
                       ("val_accuracy", "val_acc")):
        if key in logs:
            parts.append(f"{label} {logs[key]:.4f}")
    parts.append(f"elapsed {format_seconds(event.elapsed)}")
    parts.append(f"ETA {format_seconds(event.eta)}")
    return "  ".join(parts)


def print_progress(event) -> None:
    if event.kind == "epoch":
        print(epoch_line(event), file=sys.stderr, flush=True)
    elif event.kind == "batch" and sys.stderr.isatty() and event.batch % 20 == 0:
        print(f"\r  batch {event.batch}/{event.batches}  loss {event.logs.get('loss', 0):.4f}",
              end="", file=sys.stderr, flush=True)


@contextlib.contextmanager
def interrupt_as_stop() -> Iterator[threading.Event]:
    """The first Ctrl-C asks training to stop after the current batch and keep the best finished
    epoch (as the page's Stop does); a second one aborts without saving."""
    stop = threading.Event()

    def handle(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this batch; the best finished epoch is kept (Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def reason(error: Exception) -> str:
    """What went wrong, in a line: an OSError's own words ("No such file or directory") without
    its errno and the path the caller already names."""
    return getattr(error, "strerror", None) or str(error)


def percent(value: float | None) -> str:
    return "      —" if value is None else f"{value * 100:6.2f}%"


class ProgressLine:
    """An event dict from the queue, read the way :func:`epoch_line` reads a TrainEvent."""

    def __init__(self, data: dict):
        self.__dict__.update(data)


def print_wait(run) -> None:
    print(f"queued: run {run.id} ({run.name}) is number {run.position} in the queue; waiting for a free slot "
          "(Ctrl-C to give up)", file=sys.stderr, flush=True)


def print_card(args: argparse.Namespace, name: str, card: dict) -> None:
    test = card["test"]
    summary = {"name": name, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
               "epochs_run": card["epochs_run"], "train_seconds": card["train_seconds"],
               "parameters": card["parameters"]}
    emit(args, summary, f"saved {name}: test accuracy {test['accuracy'] * 100:.2f} %, "
          f"loss {test['loss']:.4f}, {card['epochs_run']} epochs in {format_seconds(card['train_seconds'])}")


def emit(args: argparse.Namespace, payload: object, text: str) -> None:
    print(json.dumps(payload, indent=1) if args.json else text)
