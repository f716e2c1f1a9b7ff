"""Sweeps: one request, several variants of a run (every combination of the values given).

``digitlab sweep --arch lenet --learning-rate 1e-3,3e-3 --optimizer adam,sgd`` and the Train
page both turn a base config and lists of values into :class:`~digitlab.jobs.queue.RunRequest`
objects, queued together under one sweep label; on Ray they run in parallel, locally one after
another. :func:`ranked` orders the finished variants by their best validation accuracy.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from digitlab.jobs.queue import QueuedRun, RunRequest

if TYPE_CHECKING:
    from digitlab.training import TrainConfig
    from digitlab.watch import Pin

MAX_VARIANTS = 24  # a sweep bigger than this is more likely a typo than a plan


def rate_label(rate: float) -> str:
    """A learning rate as a name part: ``1e-3``, ``3e-4``, ``2_5e-3``."""
    mantissa, exponent = f"{rate:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".").replace(".", "_")
    return f"{mantissa}e{int(exponent)}"


def parse_values(text: str, kind: type, what: str) -> list:
    """``"1e-3,3e-3"`` → ``[0.001, 0.003]``; raises ``ValueError`` naming the bad value."""
    values = []
    for part in (piece.strip() for piece in text.split(",")):
        try:
            values.append(kind(part))
        except ValueError:
            raise ValueError(f"{what} {part!r} is not a {kind.__name__}; write e.g. {what} values "
                             "separated by commas") from None
    if not values:
        raise ValueError(f"give at least one {what}")
    return values


def sweep_requests(base: TrainConfig, prefix: str, *, learning_rates: Sequence[float] = (),
                   optimizers: Sequence[str] = (), watch: Sequence[Pin] = ()) -> list[RunRequest]:
    """Every combination of the given optimizers and learning rates, named after what varies;
    each variant watches the same ``watch`` pictures, so their charts compare.

    Raises:
        ValueError: more than :data:`MAX_VARIANTS` variants, or a value given twice.
    """
    for values, what in ((learning_rates, "learning rate"), (optimizers, "optimizer")):
        if len(set(values)) != len(values):
            raise ValueError(f"a {what} is given twice")
    combinations = list(itertools.product(optimizers or [base.optimizer], learning_rates or [base.learning_rate]))
    if len(combinations) > MAX_VARIANTS:
        raise ValueError(f"a sweep trains at most {MAX_VARIANTS} variants, this one asks for {len(combinations)}")
    requests = []
    for optimizer, rate in combinations:
        parts = [prefix]
        if optimizers:
            parts.append(optimizer)
        if learning_rates:
            parts.append(f"lr{rate_label(rate)}")
        requests.append(RunRequest(replace(base, optimizer=optimizer, learning_rate=rate), "-".join(parts),
                                   watch=tuple(watch)))
    return requests


def rank_key(run: QueuedRun) -> tuple[bool, float, int]:
    """Sort key: runs with a validation accuracy first, best first, then in queue order."""
    return run.val_accuracy is None, -(run.val_accuracy or 0.0), run.id


def ranked(runs: Sequence[QueuedRun]) -> list[QueuedRun]:
    """The runs best first by validation accuracy (runs without one last, in queue order)."""
    return sorted(runs, key=rank_key)
