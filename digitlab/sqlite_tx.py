"""One SQLite transaction as a context manager, for the stores that keep their state in SQLite.

The training queue and the digits database both open a connection per operation in autocommit
mode (``isolation_level=None``) and run their statements inside an explicit ``BEGIN`` (or
``BEGIN IMMEDIATE`` when they will write, so two writers never deadlock on an upgrade): committed
when the block ends, rolled back when anything in it fails. Both prepare a new file once (WAL
mode, the schema) through :func:`when_free`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator

RETRY_SECONDS = 0.05  # between tries to prepare a file another process is preparing


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


def is_busy(error: Exception) -> bool:
    """Whether SQLite refused because another connection holds the file."""
    text = str(error).lower()
    return "locked" in text or "busy" in text


def when_free(prepare: Callable[[], None], timeout: float) -> None:
    """Run a file's one-time preparation, again every :data:`RETRY_SECONDS` for up to ``timeout``
    while another process holds the file: two processes opening a new file at once race to
    switch it to WAL and create its schema, and SQLite may refuse the loser at once instead of
    making it wait."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            prepare()
            return
        except sqlite3.OperationalError as error:
            if not is_busy(error) or time.monotonic() > deadline:
                raise
            time.sleep(RETRY_SECONDS)
