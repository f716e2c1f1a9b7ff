"""One training run per machine: an ``flock`` on ``<store>/.train.lock``.

The web page's training child and the CLI's ``train`` both take it, so a second server, a second
terminal or a page reload can see that a run is going (and who runs it) instead of starting
another one on the same cores. The lock is the kernel's, so it is released even when its holder
is killed; the file only carries a description of the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOCK_FILE = ".train.lock"
LOCK_WAIT_SECONDS = 2.0  # a peek by lock_holder() can hold the lock for a moment


class JobBusyError(RuntimeError):
    """A training run is already going; ``job`` is it (a :class:`digitlab.jobs.TrainingJob`) when
    this process started it, ``holder`` the lock file's description when another process did."""

    def __init__(self, message: str, job: Any = None, holder: dict[str, Any] | None = None):
        super().__init__(message)
        self.job = job
        self.holder = holder


@contextlib.contextmanager
def training_lock(models_dir: str | os.PathLike, info: dict[str, Any],
                  wait: float = LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Hold ``<models_dir>/.train.lock`` for a run, with ``info`` (who, what) written inside.

    Raises:
        JobBusyError: another process holds it (after waiting up to ``wait`` seconds).
    """
    path = Path(models_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(descriptor, wait, path)
        os.ftruncate(descriptor, 0)
        os.write(descriptor, json.dumps(info).encode())
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
    finally:
        os.close(descriptor)  # closing releases the lock; the file stays (deleting it would race)


def _acquire(descriptor: int, wait: float, path: Path) -> None:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = _read_holder(path)
                raise JobBusyError(describe_holder(holder), holder=holder) from None
            time.sleep(0.05)


def holder_info(name: str, architecture: str, source: str) -> dict[str, Any]:
    """What a run writes into the lock file, the same for the page's child and the CLI, so that
    every page can say which run holds the machine and since when."""
    return {"pid": os.getpid(), "name": name, "architecture": architecture, "source": source,
            "started_at": time.time()}


def lock_holder(models_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The info of the run holding the training lock of ``models_dir``, or ``None`` if free."""
    path = Path(models_dir) / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(path)
    finally:
        os.close(descriptor)
    return None


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        info = {}
    return info if isinstance(info, dict) else {}


def describe_holder(holder: dict[str, Any]) -> str:
    """A sentence about the run holding the lock, e.g. for a second server's page."""
    if not holder.get("name"):
        return "another training run is going on this machine; wait for it to finish"
    started = time.strftime("%H:%M:%S", time.localtime(holder.get("started_at", 0)))
    source = f" from the {holder['source']}" if holder.get("source") else ""
    return (f"another training run is going on this machine: {holder['name']!r} "
            f"({holder.get('architecture', '?')}{source}, process {holder.get('pid', '?')}, started {started})")

