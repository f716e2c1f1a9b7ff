"""Copying a test's model store while other apps of the same test process may still use it."""

from __future__ import annotations

import shutil
from pathlib import Path

# SQLite's write-ahead log and its index come and go with the connections of an app still
# running on the source store (the queue's executor): copying them races their deletion.
TRANSIENT = shutil.ignore_patterns("*.sqlite-wal", "*.sqlite-shm", "*.sqlite-journal")


def copy_store(source: Path, destination: Path) -> Path:
    """A copy of the store at ``source`` (models, cards, queue) at ``destination``, without
    SQLite's transient files, which a copy neither needs nor can count on."""
    shutil.copytree(source, destination, ignore=TRANSIENT)
    return destination
