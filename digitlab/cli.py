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

from digitlab.store import ModelStore

EXIT_ERROR = 1


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


def cmd_train(args: argparse.Namespace) -> int:
    from digitlab.data import load_mnist
    from digitlab.jobs.locking import training_lock
    from digitlab.runs import check_run, train_and_store
    from digitlab.store import validate_name
    from digitlab.training import TrainConfig, strategy_from_environment

    config = TrainConfig(
        architecture=args.arch, epochs=args.epochs, batch_size=args.batch_size,
        optimizer=args.optimizer, learning_rate=args.learning_rate, schedule=args.schedule,
        augment=args.augment, validation_fraction=args.validation_fraction,
        train_size=args.train_size, seed=args.seed,
    )
    name = args.name or args.arch
    validate_name(name, allow_shipped=args.ship)
    data = load_mnist(args.data)
    store = ModelStore(args.models)
    if not args.ship:
        check_run(config, len(data.x_train), store, name, overwrite=args.overwrite)  # before the lock file
    strategy = strategy_from_environment() if args.distribute else None
    holder = {"pid": os.getpid(), "name": name, "architecture": args.arch, "source": "command line"}
    # One run per machine: the page's Train button takes the same lock.
    with training_lock(store.root, holder), _interrupt_as_stop() as stop:
        card = train_and_store(config, data, store, name, on_event=_print_progress,
                               stop=stop, overwrite=args.overwrite, allow_shipped=args.ship, strategy=strategy)
    test = card["test"]
    summary = {"name": name, "test_accuracy": test["accuracy"], "test_loss": test["loss"],
               "epochs_run": card["epochs_run"], "train_seconds": card["train_seconds"],
               "parameters": card["parameters"]}
    _emit(args, summary, f"saved {name}: test accuracy {test['accuracy'] * 100:.2f} %, "
          f"loss {test['loss']:.4f}, {card['epochs_run']} epochs in {_format_seconds(card['train_seconds'])}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from digitlab.evaluation import evaluate
    from digitlab.inference import Predictor

    predictor = Predictor(ModelStore(args.models).load(args.name))
    if args.on == "uci":
        from digitlab.other_handwriting import load_uci_digits, squashed_inputs

        digits = load_uci_digits()
        result = evaluate(predictor, digits.images, digits.labels)
        naive = evaluate(predictor, squashed_inputs(digits), digits.labels)
        title = f"{args.name} on {digits.name}, {len(digits.labels):,} digits by other writers"
        extra = {"dataset": "uci", "squashed_accuracy": naive.accuracy}
        footer = [f"squashed to 28×28 without the preprocessing: {naive.accuracy * 100:.2f} %"]
    elif args.on == "styles":
        from dataclasses import asdict

        from digitlab.hard_styles import load_hard_styles, misreads_by_style

        digits = load_hard_styles()
        result = evaluate(predictor, digits.images, digits.labels)
        title = f"{args.name} on {digits.name}, {len(digits.labels):,} pictures"
        misreads = misreads_by_style(result)
        extra = {"dataset": "styles", "misreads_by_style": [asdict(item) for item in misreads]}
        footer = ["most misread styles:" if misreads else "no style misread"]
        footer += [f"  {item.style} → {item.read_as}: {item.count} of {item.of}" for item in misreads[:8]]
    else:
        from digitlab.data import load_mnist

        data = load_mnist(args.data)
        result = evaluate(predictor, data.x_test, data.y_test)
        title, extra, footer = f"{args.name} on the MNIST test set", {"dataset": "mnist"}, []
    payload = {**{key: value for key, value in result.to_dict().items() if key != "mistakes"}, **extra}
    lines = [title, f"accuracy {result.accuracy * 100:.2f} %  loss {result.loss:.4f}  "
                    f"correct {result.correct}  incorrect {result.incorrect}", "digit  precision  recall"]
    rows = zip(result.precision, result.recall, strict=True)
    lines += [f"  {digit}     {precision:.4f}    {recall:.4f}" for digit, (precision, recall) in enumerate(rows)]
    _emit(args, payload, "\n".join(lines + footer))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from digitlab.inference import Predictor
    from digitlab.preprocess import preprocess

    predictor = Predictor(ModelStore(args.models).load(args.model))
    results, lines, failed = [], [], False
    for path in args.images:
        try:
            prepared = preprocess(Path(path).read_bytes())
        except (OSError, ValueError) as error:
            results.append({"image": path, "error": str(error)})
            lines.append(f"{path}: error: {error}")
            failed = True
            continue
        if prepared.image is None:
            results.append({"image": path, "digit": None, "message": prepared.message})
            lines.append(f"{path}: no digit ({prepared.message})")
            continue
        digit, probabilities = predictor.predict_one(prepared.image)
        results.append({"image": path, "digit": digit, "probabilities": [round(float(p), 4) for p in probabilities]})
        lines.append(f"{path}: {digit}  ({probabilities[digit] * 100:.1f} %)  "
                     + " ".join(f"{d}:{p:.2f}" for d, p in enumerate(probabilities)))
    _emit(args, results, "\n".join(lines))
    return EXIT_ERROR if failed else 0


def cmd_list(args: argparse.Namespace) -> int:
    entries = ModelStore(args.models).list()
    payload = [{"name": e.name, "usable": e.usable, "error": e.error, "shipped": e.shipped,
                "architecture": (e.card or {}).get("architecture"),
                "test_accuracy": (e.card or {}).get("test", {}).get("accuracy"),
                "parameters": (e.card or {}).get("parameters")} for e in entries]
    text = "\n".join(e.headline for e in entries) or "the store is empty"
    _emit(args, payload, text)
    return 0


def _emit(args: argparse.Namespace, payload: object, text: str) -> None:
    print(json.dumps(payload, indent=1) if args.json else text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per action."""
    from digitlab.architectures import ARCHITECTURES
    from digitlab.training import OPTIMIZERS, SCHEDULES

    parser = argparse.ArgumentParser(prog="digitlab", description="Handwritten-digit lab on MNIST.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--models", type=Path, default=None,
                        help="model store folder (default: models/ or $DIGITLAB_MODELS)")
    common.add_argument("--data", default=None, help="MNIST .npz or IDX folder (default: $DIGITLAB_MNIST, Keras cache)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", parents=[common], help="train a model and store it")
    train.add_argument("--arch", choices=sorted(ARCHITECTURES), default="cnn")
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
                       help="train under tf.distribute: multi-worker if TF_CONFIG is set, else all local GPUs")
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser("evaluate", parents=[common], help="test-set metrics of a stored model")
    evaluate.add_argument("name")
    evaluate.add_argument("--on", choices=("mnist", "uci", "styles"), default="mnist",
                          help="test set: MNIST's 10,000 test digits, the 1,797 UCI digits "
                               "(other writers, via scikit-learn), or the 1,080 hard-styles pad "
                               "pictures (36 drawn styles MNIST lacks, generated)")
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = commands.add_parser("predict", parents=[common], help="predict digits in PNG/JPEG files")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--model", default="cnn")
    predict.set_defaults(handler=cmd_predict)

    listing = commands.add_parser("list", parents=[common], help="the models in the store")
    listing.set_defaults(handler=cmd_list)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from digitlab.data import DataNotFoundError
    from digitlab.store import StoreError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, DataNotFoundError, StoreError, OSError) as error:
        print(f"digitlab {args.command}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except RuntimeError as error:  # TrainingError and TensorFlow runtime failures
        print(f"digitlab {args.command}: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"digitlab {args.command}: interrupted; nothing was saved", file=sys.stderr)
        return 130
