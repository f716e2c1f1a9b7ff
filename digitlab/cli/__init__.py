"""``python -m digitlab``: every command of the lab from a terminal.

This module builds the parser and runs a command; the commands themselves live beside it, by
what they work on (:mod:`.training`, :mod:`.models`, :mod:`.digits`), and share :mod:`.output`.
Results go to stdout (``--json`` for scripts), progress and errors to stderr; a failure exits
non-zero with one readable line instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from digitlab.cli.digits import DIGITS_DB_HELP, cmd_digits
from digitlab.cli.models import (
    cmd_calibrate,
    cmd_evaluate,
    cmd_export,
    cmd_fit_novelty,
    cmd_list,
    cmd_predict,
    cmd_probe,
    cmd_report,
    test_set,
)
from digitlab.cli.output import EXIT_ERROR
from digitlab.cli.training import cmd_finetune, cmd_queue, cmd_sweep, cmd_train
from digitlab.quiet import filtered_stderr


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
    train.add_argument("--teacher", metavar="NAMES", default=None,
                       help="also learn from these stored models' averaged answers, e.g. cnn,lenet,mlp")
    train.add_argument("--teacher-weight", type=float, default=0.5,
                       help="the share of each target the teachers' answer takes (default 0.5)")
    train.add_argument("--weight-average", type=float, default=0.0, metavar="MOMENTUM",
                       help="validate and keep a moving average of the weights, e.g. 0.999 (default 0: off); "
                            "it spans about 1/(1-MOMENTUM) batches, so a shorter run keeps early weights in it")
    train.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    train.add_argument("--ship", action="store_true", help="allow writing a shipped model's name")
    train.add_argument("--distribute", action="store_true",
                       help="train on all of this host's GPUs (tf.distribute.MirroredStrategy)")
    train.add_argument("--queue-timeout", type=float, default=None, metavar="SECONDS",
                       help="give up if the run has not started after this long in the queue (default: wait)")
    train.add_argument("--ray", metavar="ADDRESS", default=os.environ.get("DIGITLAB_RAY_ADDRESS") or None,
                       help="train on the Ray cluster at ADDRESS (default: $DIGITLAB_RAY_ADDRESS; unset: here)")
    train.add_argument("--watch", action="append", metavar="PICTURE[:DIGIT]",
                       help="a picture to read after every epoch (up to 4; DIGIT: what it is), "
                            "e.g. --watch my7.png:7")
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
    evaluate.add_argument("name", help="a stored model, or several joined by + (e.g. cnn+lenet+mlp) to score "
                                       "their calibrated answers averaged")
    evaluate.add_argument("--on", type=test_set, default="mnist",
                          help="test set: MNIST's 10,000 test digits, the 1,797 UCI digits (other writers, via "
                               "scikit-learn), the 1,080 hard-styles pad pictures (36 drawn styles MNIST lacks, "
                               "generated: styles), the same styles drawn small with a 26–36 px pen (heavy), those "
                               "drawings as the Draw page reads them, redrawn from their strokes (heavy-pad), "
                               "photos of MNIST test digits on paper under shadows, on ruled "
                               "paper, from close up, on a desk (photos), or writer:NAME (that writer's labelled "
                               "digits)")
    evaluate.add_argument("--digits-db", type=Path, default=None, help=DIGITS_DB_HELP)
    evaluate.set_defaults(handler=cmd_evaluate)

    calibrate = commands.add_parser("calibrate", parents=[common],
                                    help="fit stored models' temperatures on their validation splits")
    calibrate.add_argument("names", nargs="+", metavar="NAME")
    calibrate.set_defaults(handler=cmd_calibrate)

    novelty = commands.add_parser("fit-novelty", parents=[common],
                                  help="fit and measure the 'not a digit' detectors: the store's "
                                       "novelty.npz and each model's own <weights>.features.npz")
    novelty.add_argument("--nondigits", type=int, default=1000, help="generated non-digits to measure on")
    novelty.add_argument("--seed", type=int, default=1, help="seed of the generated non-digits")
    novelty.add_argument("--model", action="append",
                         help="fit this model's own test (repeatable; default: every usable model in the store)")
    novelty.set_defaults(handler=cmd_fit_novelty)

    probing = commands.add_parser("probe", parents=[common],
                                  help="shift, turn, resize, thicken and erase a digit; each model's probability")
    probing.add_argument("image", help="a PNG or JPEG of one digit")
    probing.add_argument("--model", action="append", help="a model to probe (repeatable; default: every usable one)")
    probing.add_argument("--digit", type=int, help="the digit to follow (default: each model's own answer)")
    probing.set_defaults(handler=cmd_probe)

    predict = commands.add_parser("predict", parents=[common], help="predict digits in PNG/JPEG files")
    predict.add_argument("images", nargs="+")
    predict.add_argument("--model", default="cnn",
                         help="a stored model, or several joined by + (e.g. cnn+lenet+mlp) for their "
                              "calibrated answers averaged")
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
