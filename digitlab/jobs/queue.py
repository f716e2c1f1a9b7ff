"""The training queue: every run the page, the CLI or a sweep asks for, persisted in SQLite.

One file, ``<store>/queue.sqlite`` (WAL mode), beside the models it produces, so every web server
and terminal working on that store sees the same queue: the runs waiting (with their position),
the runs going (with their progress, written by whichever process supervises them) and the runs
finished (with their outcome). Each write is one transaction; claiming the next run is a
``BEGIN IMMEDIATE`` transaction, so two executors never take the same run and never run more
than their capacity between them.

A run belongs to its owner (a browser session's token or ``cli:user@host``): anyone can watch it,
only the owner or an operator can stop it. A run whose supervising process died is marked
``interrupted`` by the next process that looks (:meth:`RunQueue.recover`), never left running.

What is stored about each run is in :mod:`digitlab.jobs.run_records`. Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from digitlab.jobs.run_records import ACTIVE, FINISHED, QueuedRun, RunRequest
from digitlab.sqlite_tx import transaction, when_free

QUEUE_FILE = "queue.sqlite"
QUEUE_FILES = (QUEUE_FILE, f"{QUEUE_FILE}-wal", f"{QUEUE_FILE}-shm", f"{QUEUE_FILE}-journal")
STALE_SECONDS = 30.0  # a supervisor heartbeats every loop (≤ 1 s); 30 s of silence means it is gone
BUSY_TIMEOUT_SECONDS = 15.0
# Executors whose runs share this machine's cores: their runs count against one capacity.
MACHINE_KINDS = ("local", "inline")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    owner TEXT NOT NULL,
    owner_label TEXT NOT NULL,
    executor TEXT NOT NULL,
    sweep TEXT,
    status TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    worker TEXT,
    heartbeat_at REAL,
    stop_requested TEXT,
    epochs TEXT NOT NULL DEFAULT '[]',
    last_batch TEXT,
    card TEXT,
    error TEXT,
    runner TEXT,
    watch TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS pending_name ON runs(name)
    WHERE status IN ('queued', 'starting', 'running', 'stopping');
CREATE INDEX IF NOT EXISTS by_status ON runs(status, id);
"""


class NotOwnerError(PermissionError):
    """Someone who neither owns a run nor operates the server asked to stop it."""


def is_queue_file(name: str) -> bool:
    """Whether a file name in a store folder is the queue's (not a model or a card)."""
    return name in QUEUE_FILES


def this_worker() -> str:
    """``host:pid`` of this process: who supervises the runs it claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def cli_owner() -> str:
    """The owner of runs started from a terminal: ``cli:user@host``."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or str(os.getuid())
    return f"cli:{user}@{socket.gethostname()}"


class RunQueue:
    """The persisted queue of one model store.

    Args:
        models_dir: the model store's folder; the queue is ``<models_dir>/queue.sqlite``.
    """

    def __init__(self, models_dir: str | os.PathLike):
        self.models_dir = Path(models_dir)
        self.path = self.models_dir / QUEUE_FILE
        self._ready = False

    # -- connection -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        connection = self._connect()
        try:
            with transaction(connection, immediate=immediate):
                yield connection
        finally:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.models_dir.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        connection.row_factory = sqlite3.Row
        if not self._ready:
            when_free(lambda: self._prepare(connection), BUSY_TIMEOUT_SECONDS)
            self._ready = True
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a crash of the process
        return connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """WAL mode, the tables and any missing columns (once per object)."""
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(SCHEMA)
        _migrate(connection)

    # -- submitting -------------------------------------------------------------------------
    def submit(self, requests: Sequence[RunRequest], owner: str, *, data_size: int, executor: str = "local",
               owner_label: str | None = None, sweep: str | None = None,
               worker: str | None = None, overwrite: bool = False,
               allow_shipped: bool = False) -> list[QueuedRun]:
        """Check every request, then queue them all in one transaction (all or none).

        The queue keeps each config resolved (the recipe's values filled in), so every page shows
        the settings the run trains with.

        Args:
            requests: the runs; names must be new to the store and to the queue.
            owner: who may stop them.
            data_size: the training-set size the settings are checked against.
            executor: ``local`` (a server's child processes), ``ray`` or ``inline`` (the
                submitting CLI process trains it itself; ``worker`` is then that process).
            owner_label: what others see as the owner (default: ``owner``).
            sweep: a label grouping the variants of one sweep.
            worker: the process that will train an ``inline`` run.
            overwrite: the runs may replace models of the same name (``train --overwrite``).
            allow_shipped: a shipped model's name is allowed; the settings are then checked by
                the training itself (as ``train_and_store`` does for ``--ship``).

        Raises:
            ValueError: invalid settings, an illegal, duplicated or taken name.
        """
        from digitlab.store import ModelStore

        store = ModelStore(self.models_dir)
        names = [request.name for request in requests]
        if len(set(names)) != len(names):
            raise ValueError("a sweep's runs need different names")
        for request in requests:
            if not allow_shipped:
                request.check(data_size, store, overwrite=overwrite)
        now = time.time()
        with self._transaction(immediate=True) as db:
            for request in requests:
                taken = db.execute("SELECT 1 FROM runs WHERE name = ? AND status IN (?, ?, ?, ?)",
                                   (request.name, "queued", *ACTIVE)).fetchone()
                if taken:
                    raise ValueError(f"a run named {request.name!r} is already queued or going; pick another name")
            ids = [db.execute(
                "INSERT INTO runs (name, config, owner, owner_label, executor, sweep, status, submitted_at, "
                "worker, heartbeat_at, runner, watch) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                (request.name, request.stored_config(), owner, owner_label or owner, executor,
                 sweep, now, worker, now if worker else None, request.runner,
                 request.stored_watch())).lastrowid for request in requests]
        runs = {run.id: run for run in self.runs()}
        return [runs[run_id] for run_id in ids]

    # -- reading ----------------------------------------------------------------------------
    def runs(self, limit: int = 200) -> list[QueuedRun]:
        """Waiting runs first (by position), then active ones, then the latest finished ones."""
        with self._transaction() as db:
            marks = _marks(FINISHED)
            rows = db.execute(f"SELECT * FROM runs WHERE status NOT IN ({marks}) ORDER BY id", FINISHED).fetchall()
            done = db.execute(f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY id DESC LIMIT ?",
                              (*FINISHED, limit)).fetchall()
        waiting = [row for row in rows if row["status"] == "queued"]
        positions = {row["id"]: index for index, row in enumerate(waiting, start=1)}
        pending = [QueuedRun.from_row(row, positions.get(row["id"])) for row in rows]
        pending.sort(key=lambda run: (run.position is None, run.position or 0, run.id))
        return pending + [QueuedRun.from_row(row) for row in done]

    def sweep_runs(self, sweep: str) -> list[QueuedRun]:
        """Every run queued under the sweep label ``sweep``, in queue order."""
        with self._transaction() as db:
            rows = db.execute("SELECT * FROM runs WHERE sweep = ? ORDER BY id", (sweep,)).fetchall()
        return [QueuedRun.from_row(row) for row in rows]

    def get(self, run_id: int) -> QueuedRun | None:
        """One run (with its position while it waits), or ``None``."""
        with self._transaction() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            position = None
            if row["status"] == "queued":
                position = db.execute("SELECT COUNT(*) FROM runs WHERE status = 'queued' AND id <= ?",
                                      (run_id,)).fetchone()[0]
        return QueuedRun.from_row(row, position)

    # -- stopping ---------------------------------------------------------------------------
    def request_stop(self, run_id: int, requester: str, *, keep: bool, operator: bool = False) -> QueuedRun:
        """Cancel a waiting run, or ask an active one to end after its current batch.

        Raises:
            NotOwnerError: ``requester`` is not the owner and not an operator.
            ValueError: no such run, or it has already finished.
        """
        with self._transaction(immediate=True) as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise ValueError(f"there is no run {run_id}")
            if not operator and row["owner"] != requester:
                raise NotOwnerError(f"run {run_id} ({row['name']!r}) was started by {row['owner_label']}; "
                                    "only they can stop it")
            if row["status"] == "queued":
                db.execute("UPDATE runs SET status = 'cancelled', finished_at = ?, stop_requested = ? "
                           "WHERE id = ?", (time.time(), "keep" if keep else "discard", run_id))
            elif row["status"] in ACTIVE:
                if row["stop_requested"] is None:
                    db.execute("UPDATE runs SET status = 'stopping', stop_requested = ? WHERE id = ?",
                               ("keep" if keep else "discard", run_id))
            else:
                raise ValueError(f"run {run_id} ({row['name']!r}) has already finished ({row['status']})")
        return self.get(run_id)

    # -- executors' side --------------------------------------------------------------------
    def claim(self, kinds: Sequence[str], worker: str, capacity: int, counted: Sequence[str],
              only: Sequence[int] | None = None) -> QueuedRun | None:
        """Take the first waiting run an executor may start, if fewer than ``capacity`` are going.

        Args:
            kinds: executor kinds this executor runs (``local``, ``ray``, ``inline``).
            worker: the claiming process (:func:`this_worker`).
            capacity: how many runs of the ``counted`` kinds may be active at once.
            counted: the kinds that share the capacity (this machine's cores, or the cluster).
            only: run ids this executor is limited to (a CLI waiting for its own runs).

        The first waiting run among the ``counted`` kinds goes first: an executor does not jump
        the queue past a run another executor will take.
        """
        with self._transaction(immediate=True) as db:
            kinds_sql = _marks(counted)
            going = db.execute(f"SELECT COUNT(*) FROM runs WHERE status IN (?, ?, ?) AND executor IN ({kinds_sql})",
                               (*ACTIVE, *counted)).fetchone()[0]
            if going >= capacity:
                return None
            rows = db.execute(f"SELECT * FROM runs WHERE status = 'queued' AND executor IN ({kinds_sql}) "
                              "ORDER BY id", tuple(counted)).fetchall()
            first = next((row for row in rows if row["executor"] in kinds
                          and (only is None or row["id"] in only)
                          and (row["executor"] != "inline" or row["worker"] == worker)), None)
            if first is None or (rows[0]["id"] != first["id"] and rows[0]["executor"] == "inline"):
                return None  # nothing for us, or a terminal's run is next and its process takes it
            now = time.time()
            db.execute("UPDATE runs SET status = 'starting', started_at = ?, worker = ?, heartbeat_at = ? "
                       "WHERE id = ?", (now, worker, now, first["id"]))
            row = db.execute("SELECT * FROM runs WHERE id = ?", (first["id"],)).fetchone()
        return QueuedRun.from_row(row)

    def record_progress(self, run_id: int, *, epochs: Sequence[dict[str, Any]],
                        last_batch: dict[str, Any] | None) -> None:
        """Store a running run's progress (all finished epochs, the latest batch)."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET epochs = ?, last_batch = ?, heartbeat_at = ?, "
                       "status = CASE status WHEN 'starting' THEN 'running' ELSE status END "
                       "WHERE id = ? AND status IN (?, ?, ?)",
                       (json.dumps(list(epochs)), _dumps(last_batch), time.time(), run_id, *ACTIVE))

    def finish(self, run_id: int, status: str, *, card: dict[str, Any] | None = None,
               error: str | None = None) -> None:
        """Record how a run ended (``status`` is one of :data:`FINISHED`)."""
        if status not in FINISHED:
            raise ValueError(f"{status!r} is not a finished status")
        with self._transaction() as db:
            db.execute("UPDATE runs SET status = ?, card = ?, error = ?, finished_at = ? WHERE id = ?",
                       (status, _dumps(card), error, time.time(), run_id))

    def heartbeat(self, worker: str) -> None:
        """Tell the others that ``worker`` still supervises its runs."""
        with self._transaction() as db:
            db.execute(f"UPDATE runs SET heartbeat_at = ? WHERE worker = ? AND (status IN ({_marks(ACTIVE)}) "
                       "OR (status = 'queued' AND executor = 'inline'))", (time.time(), worker, *ACTIVE))

    def stops_requested(self, worker: str) -> dict[int, str]:
        """``{run id: "keep" | "discard"}`` for ``worker``'s runs someone asked to stop."""
        with self._transaction() as db:
            rows = db.execute("SELECT id, stop_requested FROM runs WHERE worker = ? AND status = 'stopping'",
                              (worker,)).fetchall()
        return {row["id"]: row["stop_requested"] for row in rows}

    def recover(self, now: float | None = None) -> list[int]:
        """Mark ``interrupted`` every run whose supervising process is gone; returns their ids.

        Gone means: on this host with a process id that no longer exists, or silent (no
        heartbeat) for :data:`STALE_SECONDS`. Waiting ``inline`` runs belong to their terminal's
        process, so they are checked too.
        """
        now = time.time() if now is None else now
        host = socket.gethostname()
        with self._transaction(immediate=True) as db:
            rows = db.execute(f"SELECT id, worker, heartbeat_at FROM runs WHERE status IN ({_marks(ACTIVE)}) "
                              "OR (status = 'queued' AND executor = 'inline')", ACTIVE).fetchall()
            gone = [row["id"] for row in rows if _worker_gone(row["worker"], row["heartbeat_at"], host, now)]
            for run_id in gone:
                db.execute("UPDATE runs SET status = 'interrupted', finished_at = ?, error = ? WHERE id = ?",
                           (now, "the process supervising it ended before it finished; nothing was saved",
                            run_id))
        return gone


def _worker_gone(worker: str | None, heartbeat_at: float | None, host: str, now: float) -> bool:
    if heartbeat_at is None or now - heartbeat_at > STALE_SECONDS:
        return True
    worker_host, _, pid = (worker or "").rpartition(":")
    if worker_host != host or not pid.isdigit():
        return False  # another machine's process: only its silence tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _migrate(connection: sqlite3.Connection) -> None:
    """Bring a queue file written by an older version up to this schema (a run's ``runner`` and
    ``watch``)."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
    for column in ("runner", "watch"):
        if column not in columns:
            connection.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
