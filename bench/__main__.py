"""``python -m bench``: accuracy, speed and memory of digitlab, measured on this machine."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's options; the parts themselves are described in :mod:`bench.run`."""
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description="Measure digitlab's accuracy, speed and memory.")
    parser.add_argument("--models", type=Path, default=None,
                        help="model store folder (default: models/ or $DIGITLAB_MODELS)")
    parser.add_argument("--data", default=None, help="MNIST .npz or IDX folder (default: $DIGITLAB_MNIST, Keras cache)")
    parser.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    parser.add_argument("--parts", default="training,inference",
                        help="comma-separated: training,inference,app,browser,load,queue,capacity,labelling,"
                             "finetune,inside (default: %(default)s)")
    parser.add_argument("--families", default="mlp,lenet,cnn,cnn_fast",
                        help="training part: the model families to compare (default: %(default)s)")
    parser.add_argument("--load", action="store_true",
                        help="also run the load test: browser sessions drawing while a model trains")
    parser.add_argument("--load-think", type=float, default=None, metavar="SECONDS",
                        help="load test: how long each session reads an answer before the next digit "
                             "(default 1; 0 draws back to back)")
    parser.add_argument("--load-browser-nice", type=int, default=0, metavar="N",
                        help="load test: lower the browsers' CPU priority to this nice value (1-19), as if "
                             "they ran on the visitors' own machines (default 0: the server's priority)")
    parser.add_argument("--output", type=Path, default=Path("bench.json"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (1 when a part could not run or an option is wrong)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    from bench.run import run_bench

    try:
        return run_bench(args)
    except ValueError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
