"""One SQLite transaction as a context manager, for the stores that keep their state in SQLite.

The training queue and the digits database both open a connection per operation in autocommit
mode (``isolation_level=None``) and run their statements inside an explicit ``BEGIN`` (or
``BEGIN IMMEDIATE`` when they will write, so two writers never deadlock on an upgrade): committed
when the block ends, rolled back when anything in it fails.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection, *, immediate: bool = False) -> Iterator[sqlite3.Connection]:
    """``BEGIN`` (``BEGIN IMMEDIATE`` when ``immediate``) … ``COMMIT``; ``ROLLBACK`` and re-raise on any error."""
    connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
