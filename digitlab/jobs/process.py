"""One training run in a child process, watched and stopped by the executor that started it.

A :class:`TrainingJob` starts ``python -m digitlab.jobs.child``: a fresh interpreter that calls
:func:`digitlab.runs.train_and_store` — the CLI's own path — and writes one JSON line per
progress event and a final result to its stdout; the parent sends a stop command on stdin.
Training therefore never shares the web process's interpreter: a rerun, a page switch, the
web process's garbage collection or a second visitor cannot stop or slow it, and a crash in
TensorFlow cannot take the server down.

Why not ``multiprocessing`` with "spawn": a spawned child re-runs ``sys.modules["__main__"]``,
and inside ``streamlit run`` that is the app script, so the child would execute the whole app
(measured). A plain subprocess starts clean wherever it is launched from.

Which runs start, and when, is the queue's business (:mod:`digitlab.jobs.queue`); an executor
(:mod:`digitlab.jobs.executor`) starts one :class:`TrainingJob` per run it claims and copies its
:class:`JobSnapshot` into the queue. When the supervising process goes away the child's stdin
closes, and the run stops after the current batch and is discarded: nothing half-written.

Nothing here imports TensorFlow (progress events stay plain dicts), so a Ray actor can hold a
job without loading it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from digitlab.jobs.child import EVENT_FIELDS, epoch_history

if TYPE_CHECKING:
    from digitlab.config import TrainConfig

DEFAULT_RUNNER = "digitlab.jobs.child:run_train_and_store"
ACTIVE = ("starting", "running", "stopping")
# The last line of a Python traceback: "SomeError: what went wrong".
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Exit|Interrupt): .+$")
LOG = logging.getLogger("digitlab.jobs")


@dataclass(frozen=True)
class JobSnapshot:
    """What a page shows about a run, copied under the job's lock so it is consistent.

    ``status`` is one of ``starting``, ``running``, ``stopping`` (active) or ``done``,
    ``stopped-kept``, ``stopped-discarded``, ``failed`` (finished).
    """

    name: str
    config: dict[str, Any]
    status: str
    started_at: float
    finished_at: float | None = None
    epochs: tuple[dict[str, Any], ...] = ()  # one "epoch" event (EVENT_FIELDS) per finished epoch
    last_batch: dict[str, Any] | None = None
    card: dict[str, Any] | None = None  # summary of the stored run card (done / stopped-kept)
    error: str | None = None  # why it failed, or a note on a stop
    stop_requested: str | None = None  # "keep" or "discard"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def history(self) -> list[dict[str, float]]:
        """Per-epoch metrics, e.g. ``{"epoch": 1, "loss": …, "val_accuracy": …}``."""
        return epoch_history(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (a Ray actor hands snapshots to the server this way)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSnapshot:
        return cls(**{**data, "epochs": tuple(data.get("epochs", ()))})


class TrainingJob:
    """One training run in a child process; thread-safe to watch and stop.

    Args:
        config: the run's settings, a :class:`TrainConfig` or its fields (validated by the
            caller, again by ``train_and_store``).
        name: the model name to store the result under.
        models_dir: the model store's folder.
        data_path: MNIST file or folder for ``load_mnist``; ``None`` uses its usual search.
        runner: ``"module:function"`` the child calls, with the signature of
            :func:`digitlab.jobs.child.run_train_and_store` (tests substitute fakes; the child can
            import whatever this process can).
        import_path: more folders the child imports from (a Ray actor passes the submitting
            server's, so the runner resolves there as it would locally).
        watch: pictures the run reads after every epoch (:meth:`digitlab.watch.Pin.to_dict`).
    """

    def __init__(self, config: TrainConfig | dict[str, Any], name: str, models_dir: str | os.PathLike, *,
                 data_path: str | os.PathLike | None = None,
                 runner: str = DEFAULT_RUNNER, import_path: Sequence[str] = (),
                 watch: Sequence[dict[str, Any]] | None = None):
        self.config = dict(config) if isinstance(config, dict) else asdict(config)
        self.watch = list(watch) if watch else None
        self.name = name
        self.models_dir = Path(models_dir)
        self.data_path = None if data_path is None else str(data_path)
        self.runner = runner
        self.import_path = list(import_path)
        self._lock = threading.Lock()
        self._snapshot = JobSnapshot(name, self.config, "starting", time.time())
        self._done = threading.Event()
        self._process: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None

    # -- control ---------------------------------------------------------------------------
    def start(self) -> None:
        """Launch the child and a thread that follows its messages."""
        spec = {"config": self.config, "name": self.name, "models_dir": str(self.models_dir),
                "data_path": self.data_path, "runner": self.runner, "watch": self.watch,
                "sys_path": [entry or os.getcwd() for entry in [*sys.path, *self.import_path]]}
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by _follow when the child ends
        project_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
               "PYTHONPATH": os.pathsep.join(filter(None, [project_root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "digitlab.jobs.child"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            env=env, text=True, start_new_session=True,  # Ctrl-C on the server is not sent here
        )
        self._send({"command": "spec", **spec})
        threading.Thread(target=self._follow, name=f"follow-{self.name}", daemon=True).start()

    def stop(self, keep: bool) -> None:
        """Ask the run to end after the current batch; ``keep`` stores its best finished epoch."""
        with self._lock:
            if not self._snapshot.active or self._snapshot.stop_requested:
                return
            self._snapshot = replace(self._snapshot, status="stopping",
                                     stop_requested="keep" if keep else "discard")
        self._send({"command": "stop", "keep": keep})

    # -- watching --------------------------------------------------------------------------
    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return self._snapshot

    @property
    def active(self) -> bool:
        return self.snapshot().active

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the run has finished (or ``timeout`` passed); returns the snapshot."""
        self._done.wait(timeout)
        return self.snapshot()

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the child is gone; _follow reports how it ended

    def _follow(self) -> None:
        """Apply the child's messages until it exits, then make sure the job is finished."""
        for line in self._process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            self._apply(message)
        code = self._process.wait()
        for pipe in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError, ValueError):
                pipe.close()
        stderr = self._stderr_text()
        died = end_of_child(code, stderr)
        if self.snapshot().active:
            LOG.warning("training run %r: %s; its stderr ends: %s", self.name, died, stderr[-2000:])
        with self._lock:
            if self._snapshot.active:
                self._snapshot = replace(self._snapshot, status="failed", finished_at=time.time(), error=died)
        self._stderr.close()
        self._done.set()

    def _apply(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        with self._lock:
            snap = self._snapshot
            if kind == "event":
                event = _event_from_dict(message["event"])
                status = "running" if snap.status == "starting" else snap.status
                if event["kind"] == "epoch":
                    snap = replace(snap, status=status, epochs=(*snap.epochs, event))
                elif event["kind"] in ("batch", "start"):
                    snap = replace(snap, status=status, last_batch=event)
            elif kind == "result":
                snap = replace(snap, status=message["status"], card=message.get("card"),
                               error=message.get("error"), finished_at=time.time())
            self._snapshot = snap

    def _stderr_text(self) -> str:
        try:
            self._stderr.seek(0)
            return self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""


def end_of_child(code: int, stderr: str) -> str:
    """Why a training child ended without a result, for a person: the signal that killed it, or
    the error it raised, never its log (TensorFlow's start-up chatter fills that)."""
    if code < 0:
        try:
            name = f", {signal.Signals(-code).name}"
        except ValueError:
            name = ""
        return f"the training process was killed (signal {-code}{name})"
    errors = [line.strip() for line in stderr.splitlines() if EXCEPTION_LINE.match(line.strip())]
    if errors:
        return f"the training process failed: {errors[-1][:300]}"
    return f"the training process ended unexpectedly (exit code {code})"


def _event_from_dict(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data.get(key) for key in EVENT_FIELDS}

