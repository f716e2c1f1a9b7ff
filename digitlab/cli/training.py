"""The commands that train: ``train``, ``sweep``, ``queue`` and ``finetune``, all through the queue."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from digitlab.cli.digits import digits_db
from digitlab.cli.output import (
    EXIT_ERROR,
    ProgressLine,
    emit,
    epoch_line,
    format_seconds,
    interrupt_as_stop,
    percent,
    print_card,
    print_progress,
    print_wait,
    reason,
)
from digitlab.store import ModelStore

if TYPE_CHECKING:
    from digitlab.config import TrainConfig
    from digitlab.progress import TrainEvent
    from digitlab.watch import Pin


def train_config(args: argparse.Namespace, **changes) -> TrainConfig:
    """The run's settings from the ``train``/``sweep`` options (``changes`` override them)."""
    from digitlab.config import TrainConfig

    fields = {"architecture": args.arch, "epochs": args.epochs, "batch_size": args.batch_size,
              "optimizer": getattr(args, "optimizer", None), "learning_rate": getattr(args, "learning_rate", None),
              "schedule": args.schedule, "augment": args.augment, "validation_fraction": args.validation_fraction,
              "train_size": args.train_size, "seed": args.seed}
    teachers = getattr(args, "teacher", None)
    if teachers:
        fields["teachers"] = [name.strip() for name in teachers.split(",") if name.strip()]
        fields["teacher_weight"] = args.teacher_weight
    if getattr(args, "weight_average", 0.0):
        fields["weight_average"] = args.weight_average
    return TrainConfig(**{**fields, **changes})


def cmd_train(args: argparse.Namespace) -> int:
    from digitlab.data import load_mnist
    from digitlab.jobs.executor import local_capacity
    from digitlab.jobs.inline import run_inline
    from digitlab.jobs.queue import RunQueue, RunRequest, cli_owner
    from digitlab.runs import train_and_store
    from digitlab.store import validate_name
    from digitlab.training import strategy_from_environment

    config = train_config(args)
    name = args.name or args.arch
    validate_name(name, allow_shipped=args.ship)
    pins = watch_pins(args.watch or [])
    if args.ray:
        return _train_on_ray(args, config, name, pins)
    data = load_mnist(args.data)
    store = ModelStore(args.models)
    strategy = strategy_from_environment() if args.distribute else None
    capacity = local_capacity()

    def train(**controls):
        return train_and_store(config, data, store, name, overwrite=args.overwrite, allow_shipped=args.ship,
                               strategy=strategy, watch=pins, **controls)

    def progress(event: TrainEvent) -> None:
        print_progress(event)
        for line in watch_lines(event, pins):
            print(line, file=sys.stderr, flush=True)

    with interrupt_as_stop() as stop:
        card = run_inline(RunQueue(store.root), RunRequest(config, name, watch=pins), cli_owner(), train,
                          data_size=len(data.x_train), capacity=capacity, interrupt=stop,
                          on_event=progress, on_wait=print_wait, wait_timeout=args.queue_timeout,
                          overwrite=args.overwrite, allow_shipped=args.ship)
    if card is None:
        print(f"digitlab train: {name} was stopped and discarded; nothing was saved", file=sys.stderr)
        return EXIT_ERROR
    print_card(args, name, card)
    return 0


def watch_pins(options: list[str]) -> tuple[Pin, ...]:
    """``--watch PICTURE[:DIGIT]`` options as pins, each picture read as ``predict`` reads it.

    Raises:
        ValueError: more than four, an unreadable picture, or one with no digit in it.
    """
    from pathlib import Path

    from digitlab.reading import read_picture
    from digitlab.watch import check_pins, make_pin

    pins = []
    for option in options:
        path, digit = _picture_and_digit(option)
        try:
            read = read_picture(Path(path).read_bytes(), {})
        except (OSError, ValueError) as error:
            raise ValueError(f"--watch {path}: {reason(error)}") from None
        if read.model_input is None:
            raise ValueError(f"--watch {path}: nothing to watch ({read.message})")
        pins.append(make_pin(Path(path).name, read.model_input, digit))
    return check_pins(pins)


def _picture_and_digit(option: str) -> tuple[str, int | None]:
    """``my7.png:7`` → (``my7.png``, 7); without a final ``:DIGIT`` the digit is unknown."""
    path, colon, digit = option.rpartition(":")
    return (path, int(digit)) if colon and len(digit) == 1 and digit.isdigit() else (option, None)


def watch_lines(event: TrainEvent, pins: tuple[Pin, ...]) -> list[str]:
    """After an epoch, one line per watched picture: the probability of its digit and the answer."""
    from digitlab.watch import watch_points

    if event.kind != "epoch" or not event.watched:
        return []
    lines = []
    for point in watch_points([{"epoch": event.epoch, "watched": event.watched}], pins):
        pin = pins[point.pin]
        if pin.digit is None:
            lines.append(f"  watch {pin.title}: reads {point.answer} ({point.probability:.1%})")
        else:
            lines.append(f"  watch {pin.title} (a {pin.digit}): {point.probability:.1%} → reads {point.answer}")
    return lines


def _train_on_ray(args: argparse.Namespace, config: TrainConfig, name: str, pins: tuple[Pin, ...]) -> int:
    """``train --ray ADDRESS``: queue the run for the cluster and follow it to its end."""
    from digitlab.jobs.queue import RunRequest

    if args.ship or args.overwrite or args.distribute:
        raise ValueError("--ray trains new models only: without --ship, --overwrite or --distribute")
    [run] = _submit_and_follow(args, [RunRequest(config, name, watch=pins)], sweep=None)
    if run.status not in ("done", "stopped-kept"):
        raise RuntimeError(f"run {run.id} ({run.name!r}) ended {run.status}: {run.error or 'nothing was saved'}")
    print_card(args, name, ModelStore(args.models).read_card(name))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from digitlab.jobs.sweep import parse_values, ranked, sweep_requests

    rates = parse_values(args.learning_rate, float, "learning rate") if args.learning_rate else []
    optimizers = parse_values(args.optimizer, str, "optimizer") if args.optimizer else []
    requests = sweep_requests(train_config(args), args.name or args.arch, learning_rates=rates,
                              optimizers=optimizers)
    runs = ranked(_submit_and_follow(args, requests, sweep=args.name or args.arch))
    payload = [{"rank": rank, "id": run.id, "name": run.name, "optimizer": run.config["optimizer"],
                "learning_rate": run.config["learning_rate"], "status": run.status,
                "val_accuracy": run.val_accuracy, "test_accuracy": (run.card or {}).get("test_accuracy"),
                "error": run.error} for rank, run in enumerate(runs, start=1)]
    lines = ["rank  run   model                           val_acc  test_acc  status"]
    lines += [f"{row['rank']:>4}  {row['id']:>4}  {row['name']:<30}  {percent(row['val_accuracy'])}  "
              f"{percent(row['test_accuracy'])}  {row['status']}" for row in payload]
    emit(args, payload, "\n".join(lines))
    return 0 if all(run.status == "done" for run in runs) else EXIT_ERROR


def _submit_and_follow(args: argparse.Namespace, requests: list, *, sweep: str | None) -> list:
    """Queue ``requests`` for this store, then run them here (Ray or child processes) to the end."""
    from digitlab.data import load_mnist
    from digitlab.jobs.executor import LocalExecutor, follow, local_capacity
    from digitlab.jobs.queue import RunQueue, cli_owner

    data_size = len(load_mnist(args.data).y_train)
    queue = RunQueue(ModelStore(args.models).root)
    kind = "ray" if args.ray else "local"
    runs = queue.submit(requests, cli_owner(), data_size=data_size, executor=kind, sweep=sweep)
    ids = [run.id for run in runs]
    print(f"queued {len(ids)} run(s): {', '.join(f'{run.id} ({run.name})' for run in runs)}",
          file=sys.stderr, flush=True)
    data_path = args.data or os.environ.get("DIGITLAB_MNIST") or None
    if args.ray:
        from digitlab.jobs.ray_executor import RayExecutor

        executor = RayExecutor(queue, address=args.ray, data_path=data_path, only=ids)
    else:
        executor = LocalExecutor(queue, capacity=local_capacity(), data_path=data_path, only=ids)
    with interrupt_as_stop() as stop:
        return follow(executor, ids, interrupt=stop,
                      on_epoch=lambda run, event: print(f"{run.name}: {epoch_line(ProgressLine(event))}",
                                                        file=sys.stderr, flush=True))


def cmd_queue(args: argparse.Namespace) -> int:
    from digitlab.jobs.queue import RunQueue, cli_owner

    queue = RunQueue(ModelStore(args.models).root)
    if args.action == "stop":
        if args.run is None:
            raise ValueError("queue stop needs a run id (see `digitlab queue`)")
        run = queue.request_stop(args.run, cli_owner(), keep=args.keep, operator=True)
        emit(args, {"id": run.id, "status": run.status}, f"run {run.id} ({run.name}): {run.status}")
        return 0
    runs = queue.runs(limit=args.limit)
    payload = [{"id": run.id, "name": run.name, "architecture": run.config["architecture"], "status": run.status,
                "position": run.position, "owner": run.owner_label, "executor": run.executor, "sweep": run.sweep,
                "submitted_at": run.submitted_at, "started_at": run.started_at, "finished_at": run.finished_at,
                "val_accuracy": run.val_accuracy, "error": run.error} for run in runs]
    lines = [f"{run.id:>4}  {run.name:<30} {run.status:<18} "
             f"{'#' + str(run.position) if run.position else '':<4} {run.owner_label}" for run in runs]
    emit(args, payload, "\n".join(lines) or "the queue is empty")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    """``finetune --base cnn --writer me --name cnn-me``: the base model fine-tuned on a writer's digits."""
    from digitlab.data import load_mnist
    from digitlab.finetune import finetune_and_store
    from digitlab.finetune_config import FinetuneConfig, ForgettingMeter, check_finetune
    from digitlab.jobs.executor import local_capacity
    from digitlab.jobs.inline import run_inline
    from digitlab.jobs.queue import RunQueue, RunRequest, cli_owner
    from digitlab.writer_scores import load_writer_digits

    db = digits_db(args)
    config = FinetuneConfig(base=args.base, writer=args.writer, epochs=args.epochs, learning_rate=args.learning_rate,
                            holdout_fraction=args.holdout_fraction, copies=args.copies,
                            replay_ratio=args.replay_ratio, seed=args.seed, digits_db=str(db.path))
    store = ModelStore(args.models)
    check_finetune(config, store, args.name, overwrite=args.overwrite)
    digits = load_writer_digits(db, args.writer)
    data = load_mnist(args.data)

    def tune(**controls):
        return finetune_and_store(config, digits, data, store, args.name, overwrite=args.overwrite, **controls)

    # The same queue as training: a fine-tune waits for a running training instead of sharing its cores.
    with interrupt_as_stop() as stop:
        card = run_inline(RunQueue(store.root), RunRequest(config, args.name), cli_owner(), tune,
                          data_size=len(data.x_train), capacity=local_capacity(), interrupt=stop,
                          on_event=print_progress, on_wait=print_wait, overwrite=args.overwrite)
    if card is None:
        print(f"digitlab finetune: {args.name} was stopped and discarded; nothing was saved", file=sys.stderr)
        return EXIT_ERROR
    tuned = card["finetune"]
    meter = ForgettingMeter.from_dict(tuned["meter"])
    summary = {"name": args.name, "base": args.base, "writer": tuned["writer"], "meter": meter.to_dict(),
               "finetune_digits": tuned["finetune_digits"], "heldout_digits": meter.heldout_digits,
               "note": tuned["note"], "train_seconds": card["train_seconds"], "epochs_run": card["epochs_run"]}
    lines = [f"saved {args.name}: {args.base} fine-tuned on {tuned['finetune_digits']} of {tuned['writer']}'s "
             f"digits, {card['epochs_run']} epochs in {format_seconds(card['train_seconds'])}", *meter.lines()]
    emit(args, summary, "\n".join(lines + ([f"note: {tuned['note']}"] if tuned["note"] else [])))
    return 0
