"""What the queue holds about a run: the request a submitter makes, and the row every page shows.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from digitlab.jobs.child import epoch_history

if TYPE_CHECKING:
    from digitlab.config import TrainConfig
    from digitlab.finetune_config import FinetuneConfig
    from digitlab.progress import TrainEvent
    from digitlab.store import ModelStore
    from digitlab.watch import Pin

ACTIVE = ("starting", "running", "stopping")
FINISHED = ("done", "stopped-kept", "stopped-discarded", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class QueuedRun:
    """One row of the queue, as every page and the CLI show it.

    ``status``: ``queued``; ``starting``, ``running``, ``stopping`` (active); ``done``,
    ``stopped-kept``, ``stopped-discarded``, ``failed``, ``cancelled``, ``interrupted`` (finished).
    ``epochs`` holds one progress event (a dict of :data:`~digitlab.jobs.child.EVENT_FIELDS`) per
    finished epoch, ``last_batch`` the latest batch event; ``position`` is 1 for the next run to
    start, ``None`` when the run is not waiting.
    """

    id: int
    name: str
    config: dict[str, Any]
    owner: str
    owner_label: str
    executor: str
    sweep: str | None
    status: str
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    stop_requested: str | None = None
    epochs: tuple[dict[str, Any], ...] = ()
    last_batch: dict[str, Any] | None = None
    card: dict[str, Any] | None = None
    error: str | None = None
    position: int | None = None
    runner: str | None = None  # ``module:function`` of a run that is not a training (a fine-tune)
    watch: tuple[dict[str, Any], ...] = ()  # pictures read after every epoch (``Pin.to_dict``)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def history(self) -> list[dict[str, float]]:
        """Per-epoch metrics, e.g. ``{"epoch": 1, "loss": …, "val_accuracy": …}``."""
        return epoch_history(self.epochs)

    @property
    def pins(self) -> tuple[Pin, ...]:
        """The pictures this run watches."""
        from digitlab.watch import pins_from_json

        return pins_from_json(self.watch)

    @property
    def val_accuracy(self) -> float | None:
        """The best validation accuracy of its finished epochs (what sweeps are ranked by)."""
        values = [row["val_accuracy"] for row in self.history if "val_accuracy" in row]
        return max(values) if values else None

    def latest(self) -> TrainEvent | None:
        """The most recent progress event (batch or epoch), for the progress bar."""
        from digitlab.progress import TrainEvent

        candidates = [e for e in (self.last_batch, self.epochs[-1] if self.epochs else None) if e]
        latest = max(candidates, key=lambda event: event["elapsed"], default=None)
        return None if latest is None else TrainEvent(**latest)

    def can_stop(self, requester: str, *, operator: bool = False) -> bool:
        """Whether ``requester`` may stop (or cancel) this run now."""
        return (operator or requester == self.owner) and (self.active or self.status == "queued") \
            and self.stop_requested is None

    @classmethod
    def from_row(cls, row: sqlite3.Row, position: int | None = None) -> QueuedRun:
        return cls(id=row["id"], name=row["name"], config=json.loads(row["config"]), owner=row["owner"],
                   owner_label=row["owner_label"], executor=row["executor"], sweep=row["sweep"],
                   status=row["status"], submitted_at=row["submitted_at"], started_at=row["started_at"],
                   finished_at=row["finished_at"], worker=row["worker"], stop_requested=row["stop_requested"],
                   epochs=tuple(json.loads(row["epochs"])), last_batch=loads(row["last_batch"]),
                   card=loads(row["card"]), error=row["error"], position=position,
                   runner=row["runner"], watch=tuple(loads(row["watch"]) or ()))


FINETUNE_RUNNER = "digitlab.jobs.child:run_finetune_and_store"


@dataclass(frozen=True)
class RunRequest:
    """What a submitter asks for: a config and a model name (a sweep asks for several).

    A :class:`~digitlab.config.TrainConfig` trains a model from scratch; a
    :class:`~digitlab.finetune_config.FinetuneConfig` fine-tunes a stored one on a writer's digits.
    Both wait in the same queue and train in the same kind of child process.
    """

    config: TrainConfig | FinetuneConfig
    name: str
    watch: tuple[Pin, ...] = ()  # pictures a training reads after every epoch

    @property
    def runner(self) -> str | None:
        """The child's ``module:function`` when it is not the executor's training runner."""
        from digitlab.config import TrainConfig

        return None if isinstance(self.config, TrainConfig) else FINETUNE_RUNNER

    def check(self, data_size: int, store: ModelStore, *, overwrite: bool = False) -> None:
        """Raise ``ValueError`` for settings or a name that would make the run fail."""
        from digitlab.finetune_config import check_finetune
        from digitlab.runs import check_run

        if self.runner is None:
            check_run(self.config, data_size, store, self.name, overwrite=overwrite)
        else:
            check_finetune(self.config, store, self.name, overwrite=overwrite)

    def stored_watch(self) -> str | None:
        """The pins as the queue keeps them (JSON), or None for a run without any."""
        from digitlab.watch import pins_to_json

        return json.dumps(pins_to_json(self.watch)) if self.watch else None

    def stored_config(self) -> str:
        """The settings as the queue keeps them: a training's resolved (its recipe filled in)."""
        return json.dumps(asdict(self.config.resolved() if self.runner is None else self.config))


def loads(text: str | None) -> Any:
    """A stored JSON column, None for NULL."""
    return None if text is None else json.loads(text)
