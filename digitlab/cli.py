"""``python -m digitlab``: train, evaluate, predict, list from a terminal.

Results go to stdout (``--json`` for scripts), progress and errors to stderr; a failure exits
non-zero with one readable line instead of a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from digitlab.quiet import filtered_stderr
from digitlab.store import ModelStore

if TYPE_CHECKING:
    from digitlab.config import TrainConfig

EXIT_ERROR = 1
WRITER_PREFIX = "writer:"


def _format_seconds(seconds: float | None) -> str:
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
    parts.append(f"elapsed {_format_seconds(event.elapsed)}")
    parts.append(f"ETA {_format_seconds(event.eta)}")
    return "  ".join(parts)


def _print_progress(event) -> None:
    if event.kind == "epoch":
        print(epoch_line(event), file=sys.stderr, flush=True)
    elif event.kind == "batch" and sys.stderr.isatty() and event.batch % 20 == 0:
        print(f"\r  batch {event.batch}/{event.batches}  loss {event.logs.get('loss', 0):.4f}",
              end="", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _interrupt_as_stop() -> Iterator[threading.Event]:
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


def train_config(args: argparse.Namespace, **changes) -> TrainConfig:
    """The run's settings from the ``train``/``sweep`` options (``changes`` override them)."""
    from digitlab.config import TrainConfig

    fields = {"architecture": args.arch, "epochs": args.epochs, "batch_size": args.batch_size,
              "optimizer": getattr(args, "optimizer", None), "learning_rate": getattr(args, "learning_rate", None),
              "schedule": args.schedule, "augment": args.augment, "validation_fraction": args.validation_fraction,
              "train_size": args.train_size, "seed": args.seed}
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
    if args.ray:
        return _train_on_ray(args, config, name)
    data = load_mnist(args.data)
    store = ModelStore(args.models)
    strategy = strategy_from_environment() if args.distribute else None
    capacity = local_capacity()

    def train(**controls):
        return train_and_store(config, data, store, name, overwrite=args.overwrite, allow_shipped=args.ship,
                               strategy=strategy, **controls)

    with _interrupt_as_stop() as stop:
        card = run_inline(RunQueue(store.root), RunRequest(config, name), cli_owner(), train,
                          data_size=len(data.x_train), capacity=capacity, interrupt=stop,
                          on_event=_print_progress, on_wait=_print_wait, wait_timeout=args.queue_timeout,
                          overwrite=args.overwrite, allow_shipped=args.ship)
    if card is None:
        print(f"digitlab train: {name} was stopped and discarded; nothing was saved", file=sys.stderr)
        return EXIT_ERROR
    _print_card(args, name, card)
    return 0


def _train_on_ray(args: argparse.Namespace, config: TrainConfig, name: str) -> int:
    """``train --ray ADDRESS``: queue the run for the cluster and follow it to its end."""
    from digitlab.jobs.queue import RunRequest

    if args.ship or args.overwrite or args.distribute:
        raise ValueError("--ray trains new models only: without --ship, --overwrite or --distribute")
    [run] = _submit_and_follow(args, [RunRequest(config, name)], sweep=None)
    if run.status not in ("done", "stopped-kept"):
        raise RuntimeError(f"run {run.id} ({run.name!r}) ended {run.status}: {run.error or 'nothing was saved'}")
    _print_card(args, name, ModelStore(args.models).read_card(name))
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
    lines += [f"{row['rank']:>4}  {row['id']:>4}  {row['name']:<30}  {_percent(row['val_accuracy'])}  "
              f"{_percent(row['test_accuracy'])}  {row['status']}" for row in payload]
    _emit(args, payload, "\n".join(lines))
    return 0 if all(run.status == "done" for run in runs) else EXIT_ERROR


def _percent(value: float | None) -> str:
    return "      —" if value is None else f"{value * 100:6.2f}%"


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
    with _interrupt_as_stop() as stop:
        return follow(executor, ids, interrupt=stop,
                      on_epoch=lambda run, event: print(f"{run.name}: {epoch_line(_Event(event))}",
                                                        file=sys.stderr, flush=True))


class _Event:
    """An event dict from the queue, read the way :func:`epoch_line` reads a TrainEvent."""

    def __init__(self, data: dict):
        self.__dict__.update(data)


def cmd_queue(args: argparse.Namespace) -> int:
    from digitlab.jobs.queue import RunQueue, cli_owner

    queue = RunQueue(ModelStore(args.models).root)
    if args.action == "stop":
        if args.run is None:
            raise ValueError("queue stop needs a run id (see `digitlab queue`)")
        run = queue.request_stop(args.run, cli_owner(), keep=args.keep, operator=True)
        _emit(args, {"id": run.id, "status": run.status}, f"run {run.id} ({run.name}): {run.status}")
        return 0
    runs = queue.runs(limit=args.limit)
    payload = [{"id": run.id, "name": run.name, "architecture": run.config["architecture"], "status": run.status,
                "position": run.position, "owner": run.owner_label, "executor": run.executor, "sweep": run.sweep,
                "submitted_at": run.submitted_at, "started_at": run.started_at, "finished_at": run.finished_at,
                "val_accuracy": run.val_accuracy, "error": run.error} for run in runs]
    lines = [f"{run.id:>4}  {run.name:<30} {run.status:<18} "
             f"{'#' + str(run.position) if run.position else '':<4} {run.owner_label}" for run in runs]
    _emit(args, payload, "\n".join(lines) or "the queue is empty")
    return 0


def _print_wait(run) -> None:
    print(f"queued: run {run.id} ({run.name}) is number {run.position} in the queue; waiting for a free slot "
          "(Ctrl-C to give up)", file=sys.stderr, flush=True)


def _print_card(args: argparse.Namespace, name: str, card: dict) -> None:
    test = card["test"]
    summary = {"name": name, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
               "epochs_run": card["epochs_run"], "train_seconds": card["train_seconds"],
               "parameters": card["parameters"]}
    _emit(args, summary, f"saved {name}: test accuracy {test['accuracy'] * 100:.2f} %, "
          f"loss {test['loss']:.4f}, {card['epochs_run']} epochs in {_format_seconds(card['train_seconds'])}")


def cmd_finetune(args: argparse.Namespace) -> int:
    """``finetune --base cnn --writer me --name cnn-me``: the base model fine-tuned on a writer's digits."""
    from digitlab.data import load_mnist
    from digitlab.finetune import finetune_and_store
    from digitlab.finetune_config import FinetuneConfig, ForgettingMeter, check_finetune
    from digitlab.jobs.executor import local_capacity
    from digitlab.jobs.inline import run_inline
    from digitlab.jobs.queue import RunQueue, RunRequest, cli_owner
    from digitlab.writer_scores import load_writer_digits

    db = _digits_db(args)
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
    with _interrupt_as_stop() as stop:
        card = run_inline(RunQueue(store.root), RunRequest(config, args.name), cli_owner(), tune,
                          data_size=len(data.x_train), capacity=local_capacity(), interrupt=stop,
                          on_event=_print_progress, on_wait=_print_wait, overwrite=args.overwrite)
    if card is None:
        print(f"digitlab finetune: {args.name} was stopped and discarded; nothing was saved", file=sys.stderr)
        return EXIT_ERROR
    tuned = card["finetune"]
    meter = ForgettingMeter.from_dict(tuned["meter"])
    summary = {"name": args.name, "base": args.base, "writer": tuned["writer"], "meter": meter.to_dict(),
               "finetune_digits": tuned["finetune_digits"], "heldout_digits": meter.heldout_digits,
               "note": tuned["note"], "train_seconds": card["train_seconds"], "epochs_run": card["epochs_run"]}
    lines = [f"saved {args.name}: {args.base} fine-tuned on {tuned['finetune_digits']} of {tuned['writer']!r}'s "
             f"digits, {card['epochs_run']} epochs in {_format_seconds(card['train_seconds'])}", *meter.lines()]
    _emit(args, summary, "\n".join(lines + ([f"note: {tuned['note']}"] if tuned["note"] else [])))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from digitlab.evaluation import evaluate, evaluate_probabilities
    from digitlab.inference import Predictor

    store = ModelStore(args.models)
    predictor = Predictor(store.load(args.name))
    if args.on.startswith(WRITER_PREFIX):
        return _evaluate_on_writer(args, predictor)
    if args.on == "uci":
        from digitlab.other_handwriting import load_uci_digits, squashed_inputs

        digits = load_uci_digits()
        images, labels = digits.images, digits.labels
        naive = evaluate(predictor, squashed_inputs(digits), digits.labels)
        title = f"{args.name} on {digits.name}, {len(digits.labels):,} digits by other writers"
        extra = {"dataset": "uci", "squashed_accuracy": naive.accuracy}
        footer = [f"squashed to 28×28 without the preprocessing: {naive.accuracy * 100:.2f} %"]
    elif args.on == "styles":
        from dataclasses import asdict

        from digitlab.hard_styles import load_hard_styles, misreads_by_style

        digits = load_hard_styles()
        images, labels = digits.images, digits.labels
        title = f"{args.name} on {digits.name}, {len(digits.labels):,} pictures"
        misreads = misreads_by_style(evaluate(predictor, images, labels))
        extra = {"dataset": "styles", "misreads_by_style": [asdict(item) for item in misreads]}
        footer = ["most misread styles:" if misreads else "no style misread"]
        footer += [f"  {item.style} → {item.read_as}: {item.count} of {item.of}" for item in misreads[:8]]
    else:
        from digitlab.data import load_mnist

        data = load_mnist(args.data)
        images, labels = data.x_test, data.y_test
        title, extra, footer = f"{args.name} on the MNIST test set", {"dataset": "mnist"}, []
    probabilities = predictor.probabilities(images)
    result = evaluate_probabilities(probabilities, labels)
    calibration = _calibration_fields(store.read_card(args.name), probabilities, labels)
    payload = {**{key: value for key, value in result.to_dict().items() if key != "mistakes"}, **extra,
               **calibration}
    lines = [title, f"accuracy {result.accuracy * 100:.2f} %  loss {result.loss:.4f}  "
                    f"correct {result.correct}  incorrect {result.incorrect}",
             _calibration_line(calibration), "digit  precision  recall"]
    rows = zip(result.precision, result.recall, strict=True)
    lines += [f"  {digit}     {precision:.4f}    {recall:.4f}" for digit, (precision, recall) in enumerate(rows)]
    _emit(args, payload, "\n".join(lines + footer))
    return 0


def _evaluate_on_writer(args: argparse.Namespace, predictor) -> int:
    """``evaluate NAME --on writer:WRITER``: the model on one writer's labelled digits."""
    from digitlab.writer_scores import load_writer_digits, score_writer

    digits = load_writer_digits(_digits_db(args), args.on[len(WRITER_PREFIX):])
    scores = score_writer({args.name: predictor}, digits)
    result = scores.evaluations[args.name]
    payload = {"dataset": args.on, "writer": digits.writer, "digits": len(digits),
               "accuracy": result.accuracy, "loss": result.loss, "correct": result.correct,
               "incorrect": result.incorrect, "per_digit": scores.per_digit[args.name], "counts": scores.counts,
               "misread": [{"id": item.digit.id, "label": item.digit.label, "said": item.said[args.name]}
                           for item in scores.misread]}
    lines = [f"{args.name} on {digits.writer!r}'s {len(digits)} labelled digits",
             f"accuracy {result.accuracy * 100:.2f} %  correct {result.correct}  incorrect {result.incorrect}",
             "digit  count  accuracy"]
    for label, (count, accuracy) in enumerate(zip(scores.counts, scores.per_digit[args.name], strict=True)):
        lines.append(f"  {label}    {count:4d}   " + ("—" if accuracy is None else f"{accuracy * 100:6.2f} %"))
    lines += [f"misread: #{item.digit.id} a {item.digit.label} read as {item.said[args.name]}"
              for item in scores.misread]
    _emit(args, payload, "\n".join(lines))
    return 0


def _digits_db(args: argparse.Namespace):
    """The digits database: ``--digits-db``, else ``$DIGITLAB_DIGITS_DB``, else beside the store."""
    from digitlab.digits_db import DigitsDb, default_db_path

    return DigitsDb(args.digits_db or default_db_path(ModelStore(args.models).root))


def cmd_digits(args: argparse.Namespace) -> int:
    """``digits list | import | export``: the labelled digits in the database."""
    from digitlab.digit_files import export_digits, import_digits

    db = _digits_db(args)
    if args.action == "import":
        count = import_digits(db, args.file, args.writer)
        _emit(args, {"imported": count, "writer": args.writer.strip(), "database": str(db.path)},
              f"imported {count} digits for {args.writer.strip()!r} into {db.path}")
    elif args.action == "export":
        count = export_digits(db, args.writer, args.file)
        _emit(args, {"exported": count, "writer": args.writer.strip(), "file": str(args.file)},
              f"exported {count} digits of {args.writer.strip()!r} to {args.file}")
    else:
        counts = db.counts()
        payload = [{"writer": writer, "digits": sum(row), "per_digit": row} for writer, row in counts.items()]
        width = max([len("writer"), *map(len, counts)])
        header = f"{'writer':<{width}}" + "".join(f"{digit:>5}" for digit in range(10)) + "  total"
        rows = [f"{writer:<{width}}" + "".join(f"{count:>5}" for count in row) + f"  {sum(row):>5}"
                for writer, row in counts.items()]
        _emit(args, payload, "\n".join([header, *rows]) if counts else f"no labelled digits in {db.path} yet")
    return 0


EXPORT_CHECK_DIGITS = 1000  # MNIST test digits a TFLite file must answer like the model


def cmd_export(args: argparse.Namespace) -> int:
    """``export NAME --format keras|tflite --output FILE``; a TFLite file is checked on test digits first."""
    from digitlab.export import export_model

    images, source = (None, None) if args.format == "keras" else _export_check_digits(args)
    report = export_model(ModelStore(args.models), args.name, args.format, args.output, images)
    checked = (f"; checked on {report.checked:,} {source}: {report.agreeing:,} same answers as the Keras model, "
               f"largest probability difference {report.max_difference:.1e}") if report.checked else ""
    _emit(args, {**report.__dict__, "checked_on": source},
          f"wrote {report.path} ({report.bytes / 2**20:.1f} MB, {report.format}){checked}")
    return 0


def _export_check_digits(args: argparse.Namespace):
    """The first MNIST test digits when MNIST is found, else the UCI digits."""
    from digitlab.data import DataNotFoundError, load_mnist, to_float

    try:
        data = load_mnist(args.data, allow_download=False)
        return to_float(data.x_test[:EXPORT_CHECK_DIGITS]), "MNIST test digits"
    except DataNotFoundError:
        from digitlab.other_handwriting import load_uci_digits

        return load_uci_digits().images, "UCI digits"


def _calibration_fields(card: dict, probabilities, labels) -> dict:
    """ECE of these answers raw and with the card's temperature (1 when it has none)."""
    from digitlab.calibration import apply_temperature, calibration_of, expected_calibration_error

    calibration = calibration_of(card)
    temperature = calibration.temperature if calibration else 1.0
    return {"temperature": temperature, "temperature_fitted": calibration is not None,
            "ece": round(expected_calibration_error(probabilities, labels), 6),
            "ece_calibrated": round(expected_calibration_error(apply_temperature(probabilities, temperature),
                                                               labels), 6)}


def _calibration_line(fields: dict) -> str:
    if not fields["temperature_fitted"]:
        return (f"ECE {fields['ece'] * 100:.2f} % (no temperature fitted yet: "
                "run `digitlab calibrate NAME`)")
    return (f"ECE {fields['ece'] * 100:.2f} % raw, {fields['ece_calibrated'] * 100:.2f} % at temperature "
            f"{fields['temperature']:.3f}")


def cmd_calibrate(args: argparse.Namespace) -> int:
    from digitlab.data import load_mnist
    from digitlab.runs import calibrate_stored

    store = ModelStore(args.models)
    data = load_mnist(args.data)
    summaries, lines = [], []
    for name in args.names:
        calibration = calibrate_stored(store, name, data)["calibration"]
        sets = {key: {"ece_before": item["ece_before"], "ece_after": item["ece_after"]}
                for key, item in calibration["sets"].items()}
        summaries.append({"name": name, "temperature": calibration["temperature"],
                          "not_sure_below": calibration["not_sure_below"], **sets})
        lines.append(f"{name}: temperature {calibration['temperature']:.3f}, validation NLL "
                     f"{calibration['validation_nll_before']:.4f} → {calibration['validation_nll_after']:.4f}; "
                     + "; ".join(f"ECE on {key} {item['ece_before'] * 100:.2f} % → {item['ece_after'] * 100:.2f} %"
                                 for key, item in sets.items())
                     + f"; not sure at or under {calibration['not_sure_below'] * 100:.1f} %")
    _emit(args, summaries, "\n".join(lines))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from digitlab.calibration import calibration_of
    from digitlab.inference import Predictor
    from digitlab.reading import read_picture

    store = ModelStore(args.models)
    predictors = {args.model: Predictor(store.load(args.model))}
    options = {"novelty": _novelty_or_none(store),
               "calibrations": {args.model: calibration_of(store.read_card(args.model))}}
    results, lines, failed = [], [], False
    for path in args.images:
        try:
            read = read_picture(Path(path).read_bytes(), predictors, **options)
        except (OSError, ValueError) as error:
            results.append({"image": path, "error": str(error)})
            lines.append(f"{path}: error: {error}")
            failed = True
            continue
        if read.model_input is None:
            results.append({"image": path, "digit": None, "message": read.message})
            lines.append(f"{path}: no digit ({read.message})")
            continue
        reading = read.readings[args.model]
        probabilities = reading.probabilities
        if reading.digit is None:
            results.append({"image": path, "digit": None, "reason": reading.reason,
                            "closest_digit": reading.top_digit, "confidence": round(reading.confidence, 4),
                            "probabilities": [round(float(p), 4) for p in probabilities]})
            lines.append(f"{path}: not a digit ({reading.reason}); closest {reading.top_digit}")
            continue
        results.append({"image": path, "digit": reading.digit, "confidence": round(reading.confidence, 4),
                        "sure": reading.sure, "probabilities": [round(float(p), 4) for p in probabilities]})
        lines.append(f"{path}: {reading.digit}  ({reading.confidence * 100:.1f} %"
                     + ("" if reading.sure else ", not sure") + ")  "
                     + " ".join(f"{d}:{p:.2f}" for d, p in enumerate(probabilities)))
    _emit(args, results, "\n".join(lines))
    return EXIT_ERROR if failed else 0


def _novelty_or_none(store: ModelStore):
    """The store's "not a digit" detector, or None when it has none (every input is then read)."""
    from digitlab.novelty import default_path, load_detector

    try:
        return load_detector(default_path(store.root))
    except FileNotFoundError:
        return None


def cmd_fit_novelty(args: argparse.Namespace) -> int:
    from digitlab.data import load_mnist
    from digitlab.novelty import default_path, fit_and_measure
    from digitlab.other_handwriting import load_uci_digits

    detector, report = fit_and_measure(load_mnist(args.data), load_uci_digits(), args.nondigits, args.seed)
    path = detector.save(default_path(ModelStore(args.models).root))
    alarms = ", ".join(f"{name} {share * 100:.2f} %" for name, share in report.false_alarms.items())
    kinds = ", ".join(f"{kind} {share * 100:.1f} %" for kind, share in report.detection_by_kind.items())
    _emit(args, {**report.to_dict(), "path": str(path)},
          f"saved {path}\nfalse alarms on real digits: {alarms}\n"
          f"non-digits caught: {report.detection * 100:.1f} % of {report.nondigits} ({kinds})")
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    from digitlab.inference import Predictor
    from digitlab.preprocess import preprocess
    from digitlab.probe import probe

    store = ModelStore(args.models)
    names = args.model or [entry.name for entry in store.list() if entry.usable]
    if not names:
        raise ValueError(f"no usable model in {store.root}")
    prepared = preprocess(Path(args.image).read_bytes())
    if prepared.image is None:
        raise ValueError(f"{args.image}: no digit to probe ({prepared.message})")
    results = probe(prepared.image, {name: Predictor(store.load(name)) for name in names}, args.digit)
    lines = []
    for result in results:
        lines.append(f"{result.name} ({result.unit}): " + "  ".join(f"{value:g}" for value in result.values))
        lines += [f"  {name} P({result.digit[name]}): " + "  ".join(f"{p:.2f}" for p in result.probability[name])
                  for name in names]
    _emit(args, {"image": args.image, "sweeps": [result.to_dict() for result in results]}, "\n".join(lines))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from digitlab.card import RunCard
    from digitlab.data import DataNotFoundError, load_mnist
    from digitlab.report_sheet import write_sheet

    card = RunCard.from_dict(ModelStore(args.models).read_card(args.name))
    try:
        test_images = load_mnist(args.data, allow_download=False).x_test
    except DataNotFoundError:
        test_images = None
        print("digitlab report: MNIST not found, so the sheet shows no misread pictures "
              "(set DIGITLAB_MNIST or pass --data)", file=sys.stderr)
    path = write_sheet(card, args.output, test_images)
    _emit(args, {"name": args.name, "output": str(path)}, f"wrote {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from digitlab.store import StoreError

    store = ModelStore(args.models)
    if not store.root.is_dir():  # a file or a typo is not an empty store
        what = "is a file, not a folder" if store.root.exists() else "does not exist"
        raise StoreError(f"the model store {store.root} {what}; point --models or $DIGITLAB_MODELS at a folder")
    entries = store.list()
    payload = [{"name": e.name, "usable": e.usable, "error": e.error, "shipped": e.shipped,
                "architecture": e.run.architecture if e.card else None, "test_accuracy": e.run.test_accuracy,
                "parameters": e.run.parameters} for e in entries]
    text = "\n".join(e.headline for e in entries) or "the store is empty"
    _emit(args, payload, text)
    return 0


def _emit(args: argparse.Namespace, payload: object, text: str) -> None:
    print(json.dumps(payload, indent=1) if args.json else text)


DIGITS_DB_HELP = "labelled-digits database (default: $DIGITLAB_DIGITS_DB or digits.sqlite in the store)"


def _test_set(text: str) -> str:
    """``mnist``, ``uci``, ``styles`` or ``writer:NAME`` (argparse type of ``evaluate --on``)."""
    if text in ("mnist", "uci", "styles") or (text.startswith(WRITER_PREFIX) and text[len(WRITER_PREFIX):].strip()):
        return text
    raise argparse.ArgumentTypeError(f"unknown test set {text!r}: use mnist, uci, styles or writer:NAME")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per action."""
    from digitlab.config import OPTIMIZERS, SCHEDULES, SPECS
    from digitlab.finetune_config import FINETUNE_DEFAULTS

    parser = argparse.ArgumentParser(prog="digitlab", description="Handwritten-digit lab on MNIST.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models", type=Path, default=None,
                        help="model store folder (default: models/ or $DIGITLAB_MODELS)")
    common.add_argument("--data", default=None, help="MNIST .npz or IDX folder (default: $DIGITLAB_MNIST, Keras cache)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--verbose", action="store_true", help="also show TensorFlow's own log lines")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", parents=[common], help="train a model and store it")
    train.add_argument("--arch", choices=sorted(SPECS), default="cnn")
    train.add_argument("--name", help="model name in the store (default: the architecture)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--learning-rate", "--lr", type=float)
    train.add_argument("--schedule", choices=SCHEDULES)
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    train.add_argument("--validation-fraction", type=float)
    train.add_argument("--train-size", type=int, help="use only the first N training images")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    train.add_argument("--ship", action="store_true", help="allow writing a shipped model's name")
    train.add_argument("--distribute", action="store_true",
                       help="train on all of this host's GPUs (tf.distribute.MirroredStrategy)")
    train.add_argument("--queue-timeout", type=float, default=None, metavar="SECONDS",
                       help="give up if the run has not started after this long in the queue (default: wait)")
    train.add_argument("--ray", metavar="ADDRESS", default=os.environ.get("DIGITLAB_RAY_ADDRESS") or None,
                       help="train on the Ray cluster at ADDRESS (default: $DIGITLAB_RAY_ADDRESS; unset: here)")
    train.set_defaults(handler=cmd_train)

    sweep = commands.add_parser("sweep", parents=[common], help="train every combination of some settings")
    sweep.add_argument("--arch", choices=sorted(SPECS), default="cnn")
    sweep.add_argument("--name", help="prefix of the runs' model names (default: the architecture)")
    sweep.add_argument("--learning-rate", "--lr", help="comma-separated, e.g. 1e-3,3e-3")
    sweep.add_argument("--optimizer", help=f"comma-separated, from {', '.join(OPTIMIZERS)}")
    for option, kind in (("--epochs", int), ("--batch-size", int), ("--validation-fraction", float),
                         ("--train-size", int)):
        sweep.add_argument(option, type=kind)
    sweep.add_argument("--schedule", choices=SCHEDULES)
    sweep.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None)
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--ray", metavar="ADDRESS", default=os.environ.get("DIGITLAB_RAY_ADDRESS") or None,
                       help="run the variants in parallel on the Ray cluster at ADDRESS")
    sweep.set_defaults(handler=cmd_sweep)

    queue = commands.add_parser("queue", parents=[common], help="the training queue: list, or stop a run")
    queue.add_argument("action", nargs="?", choices=("list", "stop"), default="list")
    queue.add_argument("run", nargs="?", type=int, help="the run to stop (its id in the list)")
    queue.add_argument("--keep", action="store_true", help="stop: keep the best finished epoch")
    queue.add_argument("--limit", type=int, default=50, help="list: how many finished runs to show")
    queue.set_defaults(handler=cmd_queue)

    evaluate = commands.add_parser("evaluate", parents=[common], help="test-set metrics of a stored model")
    evaluate.add_argument("name")
    evaluate.add_argument("--on", type=_test_set, default="mnist",
                          help="test set: MNIST's 10,000 test digits, the 1,797 UCI digits (other writers, via "
                               "scikit-learn), the 1,080 hard-styles pad pictures (36 drawn styles MNIST lacks, "
                               "generated: styles), or writer:NAME (that writer's labelled digits)")
    evaluate.add_argument("--digits-db", type=Path, default=None, help=DIGITS_DB_HELP)
    evaluate.set_defaults(handler=cmd_evaluate)

    calibrate = commands.add_parser("calibrate", parents=[common],
                                    help="fit stored models' temperatures on their validation splits")
    calibrate.add_argument("names", nargs="+", metavar="NAME")
    calibrate.set_defaults(handler=cmd_calibrate)

    novelty = commands.add_parser("fit-novelty", parents=[common],
                                  help="fit and measure the 'not a digit' detector; writes novelty.npz to the store")
    novelty.add_argument("--nondigits", type=int, default=1000, help="generated non-digits to measure on")
    novelty.add_argument("--seed", type=int, default=1, help="seed of the generated non-digits")
    novelty.set_defaults(handler=cmd_fit_novelty)

    probing = commands.add_parser("probe", parents=[common],
                                  help="shift, turn, resize, thicken and erase a digit; each model's probability")
    probing.add_argument("image", help="a PNG or JPEG of one digit")
    probing.add_argument("--model", action="append", help="a model to probe (repeatable; default: every usable one)")
    probing.add_argument("--digit", type=int, help="the digit to follow (default: each model's own answer)")
    probing.set_defaults(handler=cmd_probe)

    predict = commands.add_parser("predict", parents=[common], help="predict digits in PNG/JPEG files")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--model", default="cnn")
    predict.set_defaults(handler=cmd_predict)

    tune = commands.add_parser("finetune", parents=[common], help="fine-tune a model on a writer's digits")
    tune.add_argument("--base", default="cnn", help="the model to start from (default: cnn)")
    tune.add_argument("--writer", default="me", help="whose digits (default: me)")
    tune.add_argument("--name", required=True, help="the new model's name in the store")
    tune.add_argument("--epochs", type=int, default=FINETUNE_DEFAULTS.epochs)
    tune.add_argument("--learning-rate", "--lr", type=float, default=FINETUNE_DEFAULTS.learning_rate)
    tune.add_argument("--holdout-fraction", type=float, default=FINETUNE_DEFAULTS.holdout_fraction,
                      help="of each digit's drawings, held out to measure the effect")
    tune.add_argument("--copies", type=int, default=FINETUNE_DEFAULTS.copies,
                      help="distorted copies of each drawing per epoch")
    tune.add_argument("--replay-ratio", type=float, default=FINETUNE_DEFAULTS.replay_ratio,
                      help="MNIST training images mixed in per writer image")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    tune.add_argument("--digits-db", type=Path, default=None, help=DIGITS_DB_HELP)
    tune.set_defaults(handler=cmd_finetune)

    model_export = commands.add_parser("export", parents=[common], help="write a model as .keras or .tflite")
    model_export.add_argument("name")
    model_export.add_argument("--format", choices=("keras", "tflite"), default="keras")
    model_export.add_argument("--output", type=Path, required=True, help="the file to write (.keras or .tflite)")
    model_export.set_defaults(handler=cmd_export)

    digits = commands.add_parser("digits", help="your labelled digits: list, import, export")
    actions = digits.add_subparsers(dest="action", required=True)
    digits_common = argparse.ArgumentParser(add_help=False, parents=[common])
    digits_common.add_argument("--digits-db", type=Path, default=None, help=DIGITS_DB_HELP)
    actions.add_parser("list", parents=[digits_common], help="counts per writer and digit")
    importing = actions.add_parser("import", parents=[digits_common], help="add a .npz of labelled digits")
    importing.add_argument("file", type=Path, help=".npz with 'images' (N×H×W uint8, white on black) and 'labels'")
    importing.add_argument("--writer", required=True, help="whose digits they are")
    exporting = actions.add_parser("export", parents=[digits_common], help="write a writer's digits to a .npz")
    exporting.add_argument("file", type=Path, help="the .npz to write (replaced atomically)")
    exporting.add_argument("--writer", default="me", help="whose digits (default: me)")
    digits.set_defaults(handler=cmd_digits)

    report = commands.add_parser("report", parents=[common],
                                 help="one sheet of a model's curves, confusion matrix and misread digits")
    report.add_argument("name")
    report.add_argument("--output", type=Path, required=True, help="a .png, .svg or .pdf file to write")
    report.set_defaults(handler=cmd_report)

    listing = commands.add_parser("list", parents=[common], help="the models in the store")
    listing.set_defaults(handler=cmd_list)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        return _run(args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's Python-side warnings
    with filtered_stderr():  # and its C++ start-up lines, which no variable silences
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the chosen sub-command; an expected failure becomes one line on stderr and exit code 1."""
    from digitlab.data import DataNotFoundError
    from digitlab.digits_db import DigitsDbError
    from digitlab.store import StoreError

    try:
        return args.handler(args)
    except (ValueError, DataNotFoundError, StoreError, DigitsDbError, OSError) as error:
        print(f"digitlab {args.command}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except RuntimeError as error:  # TrainingError and TensorFlow runtime failures
        print(f"digitlab {args.command}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"digitlab {args.command}: interrupted; nothing was saved", file=sys.stderr)
        return 130
