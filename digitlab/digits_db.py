"""A person's own labelled digits: one SQLite file beside the model store.

Each row is one drawing a writer labelled: the pad picture as drawn (PNG), the 28×28 input the
models got, the true digit, what every model answered and how sure it was, and when. The
file is ``<store root>/digits.sqlite`` unless ``$DIGITLAB_DIGITS_DB`` (or the CLI's
``--digits-db``) names another.

Several web sessions and terminals write at once, so the file is in WAL mode (readers never
block the writer), every write is one ``BEGIN IMMEDIATE`` transaction, and a busy file is
waited on for a few seconds before giving up. The schema carries a version; opening an older
file applies the missing migrations in one transaction. Every SQLite failure — a corrupt
file, a file locked for too long, a read-only file or folder — becomes one
:class:`DigitsDbError` whose message is one line a person can act on.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from digitlab.images import decode_image
from digitlab.sqlite_tx import is_busy, transaction, when_free

ENV_VAR = "DIGITLAB_DIGITS_DB"
FILE_NAME = "digits.sqlite"
DEFAULT_WRITER = "me"
WRITER_PATTERN = re.compile(r"^[^\x00-\x1f\x7f]{1,40}$")  # 1–40 printable characters
BUSY_TIMEOUT_SECONDS = 5.0  # a write waits this long for another writer before it gives up
INPUT_SHAPE = (28, 28)
MAX_PICTURE_PIXELS = 2048 * 2048  # no pad sends more; the same cap as the drawing pad's
NUM_CLASSES = 10

# Migration n brings the schema from version n to n + 1; the version table says where a file is.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE digits (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        writer TEXT NOT NULL,
        label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
        picture BLOB NOT NULL,
        model_input BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX digits_by_writer ON digits (writer, label);
    CREATE TABLE answers (
        digit_id INTEGER NOT NULL REFERENCES digits (id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        digit INTEGER NOT NULL CHECK (digit BETWEEN 0 AND 9),
        confidence REAL NOT NULL,
        PRIMARY KEY (digit_id, model)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class DigitsDbError(Exception):
    """The digits database cannot be read or written; the message is one line saying why."""


@dataclass(frozen=True)
class ModelAnswer:
    """What one model said about a drawing when it was labelled."""

    model: str
    digit: int
    confidence: float


@dataclass(frozen=True)
class NewDigit:
    """A labelled drawing about to be stored (validated by :meth:`DigitsDb.add`)."""

    writer: str
    label: int
    picture_png: bytes
    model_input: np.ndarray  # (28, 28) float in [0, 1]
    answers: tuple[ModelAnswer, ...] = ()


@dataclass(frozen=True)
class StoredDigit:
    """One labelled drawing as read back from the database."""

    id: int
    writer: str
    label: int
    picture_png: bytes
    model_input: np.ndarray  # (28, 28) float32 in [0, 1]
    answers: tuple[ModelAnswer, ...]
    created_at: float  # seconds since the epoch


def default_db_path(models_root: str | os.PathLike) -> Path:
    """``$DIGITLAB_DIGITS_DB``, else ``digits.sqlite`` in the model store's folder."""
    configured = os.environ.get(ENV_VAR)
    return Path(configured) if configured else Path(models_root) / FILE_NAME


def validate_writer(writer: str) -> str:
    """``writer`` stripped, if it is 1–40 printable characters; else ``ValueError`` saying so."""
    name = writer.strip() if isinstance(writer, str) else ""
    if not WRITER_PATTERN.fullmatch(name):
        raise ValueError(f"invalid writer name {writer!r}: use 1–40 printable characters")
    return name


def writer_key(writer: str) -> str:
    """What two spellings of one writer share: "Ana", "ana" and "ANA" label as one person."""
    return _stored_key(validate_writer(writer))


def picture_to_png(picture: Image.Image | np.ndarray) -> bytes:
    """A pad picture (PIL image or uint8 array) as PNG bytes, as it is stored."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(np.asarray(picture, np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def validate_digit(digit: NewDigit) -> NewDigit:
    """The digit with a clean writer name and a float32 input; ``ValueError`` for anything wrong.

    The picture is decoded the way uploads are (:func:`digitlab.images.decode_image`), so a
    forged or oversized picture never reaches the file.
    """
    writer = validate_writer(digit.writer)
    label = _checked_label(digit.label)
    decode_image(digit.picture_png, max_pixels=MAX_PICTURE_PIXELS)
    model_input = np.asarray(digit.model_input, dtype=np.float32)
    if model_input.shape != INPUT_SHAPE or not np.all(np.isfinite(model_input)):
        raise ValueError(f"the model input must be a finite 28×28 picture, got shape {model_input.shape}")
    if model_input.min() < 0.0 or model_input.max() > 1.0:
        raise ValueError("the model input's pixels must be in [0, 1]")
    for answer in digit.answers:
        if not 0 <= int(answer.digit) <= 9 or not 0.0 <= float(answer.confidence) <= 1.0:
            raise ValueError(f"the answer of {answer.model!r} is not a digit with a confidence in [0, 1]")
    return NewDigit(writer, label, bytes(digit.picture_png), model_input, tuple(digit.answers))


def _checked_label(label: object) -> int:
    """``label`` as an int, if it is a digit 0–9. ``ValueError`` otherwise."""
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label <= 9:
        raise ValueError(f"the label must be a digit 0–9, not {label!r}")
    return int(label)


class DigitsDb:
    """The labelled digits in one SQLite file; safe to share between threads and processes.

    Each call opens its own short-lived connection, so one object can serve every session of
    a web server without sharing a connection across threads.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._ready = False

    # -- connections -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """A connection inside one transaction (``BEGIN IMMEDIATE`` for writes), closed after."""
        try:
            if not write and not self.path.exists():
                raise DigitsDbError(f"no digits database at {self.path} yet: label a drawing first")
            if write:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise DigitsDbError(self._describe(error)) from None
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            connection.create_function("writer_key", 1, _stored_key, deterministic=True)
            # Every commit reaches the disk before the page says "Saved": a labelled drawing survives
            # a power cut. The fsync is most of a label's cost (19 ms of 37 ms p50 on a busy 2-core VM).
            connection.execute("PRAGMA synchronous = FULL")
            if not self._ready:
                when_free(lambda: self._prepare(connection), BUSY_TIMEOUT_SECONDS)
            with transaction(connection, immediate=write):
                yield connection
        except sqlite3.Error as error:
            raise DigitsDbError(self._describe(error)) from None
        finally:
            connection.close()

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """WAL mode, then any missing migrations in one transaction (once per object).

        A file already at the current schema is only read, so a read-only file can still be
        listed and scored.
        """
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal" and self._version(connection) != SCHEMA_VERSION:
            raise DigitsDbError(f"the digits database {self.path} cannot switch to WAL mode (it is {mode})")
        if self._version(connection) != SCHEMA_VERSION:
            with transaction(connection, immediate=True):
                self._migrate(connection)
        self._ready = True

    def _version(self, connection: sqlite3.Connection) -> int:
        """The file's schema version; 0 for a new, empty file."""
        exists = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        row = connection.execute("SELECT version FROM schema_version").fetchone() if exists else None
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise DigitsDbError(f"the digits database {self.path} is from a newer digitlab "
                                f"(schema {version}, this one knows {SCHEMA_VERSION})")
        return version

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Apply the migrations the file lacks and record the new version (inside a transaction)."""
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = self._version(connection)  # again: another process may have migrated meanwhile
        for script in MIGRATIONS[version:]:
            for statement in filter(str.strip, script.split(";")):
                connection.execute(statement)
        connection.execute("DELETE FROM schema_version")
        connection.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))

    def _describe(self, error: Exception) -> str:
        """One line for a person: what is wrong with the file and what to do."""
        text = str(error).lower()
        where = f"the digits database {self.path}"
        if is_busy(error):
            return f"{where} is locked by another program; try again in a moment"
        if "readonly" in text or "read-only" in text or "permission" in text or "unable to open" in text:
            return (f"{where} cannot be written (read-only file or folder); point --digits-db or "
                    f"${ENV_VAR} at a writable place")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return f"{where} is corrupt (not an SQLite file); move it away to start a new one"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"{where} failed: {first[:200]}"

    # -- writing ---------------------------------------------------------------------------
    def add(self, digit: NewDigit) -> int:
        """Store one labelled drawing; returns its id. ``ValueError`` for invalid data."""
        return self.add_many([digit])[0]

    def add_many(self, digits: Sequence[NewDigit]) -> list[int]:
        """Store all of ``digits`` in one transaction, or none of them; returns their ids."""
        clean = [validate_digit(digit) for digit in digits]  # all checked before anything is written
        now = time.time()
        with self._connect(write=True) as connection:
            return [self._insert(connection, replace(digit, writer=self._spelling(connection, digit.writer)), now)
                    for digit in clean]

    @staticmethod
    def _spelling(connection: sqlite3.Connection, writer: str) -> str:
        """The spelling ``writer`` was first stored under, whatever its case; ``writer`` if new."""
        row = connection.execute("SELECT writer FROM digits WHERE writer_key(writer) = ? ORDER BY id LIMIT 1",
                                 (writer_key(writer),)).fetchone()
        return writer if row is None else row[0]

    def spelling(self, writer: str) -> str:
        """How ``writer`` is stored: typing "ana" after "Ana" labelled goes on as "Ana".

        ``ValueError`` for an invalid name; a new writer keeps the name as typed (stripped).
        """
        name = validate_writer(writer)
        if not self.path.exists():
            return name
        with self._connect(write=False) as connection:
            return self._spelling(connection, name)

    @staticmethod
    def _insert(connection: sqlite3.Connection, digit: NewDigit, now: float) -> int:
        cursor = connection.execute(
            "INSERT INTO digits (writer, label, picture, model_input, created_at) VALUES (?, ?, ?, ?, ?)",
            (digit.writer, digit.label, digit.picture_png, digit.model_input.astype("<f4").tobytes(), now))
        digit_id = int(cursor.lastrowid)
        connection.executemany(
            "INSERT INTO answers (digit_id, model, digit, confidence) VALUES (?, ?, ?, ?)",
            [(digit_id, answer.model, int(answer.digit), float(answer.confidence)) for answer in digit.answers])
        return digit_id

    def relabel(self, digit_id: int, label: int) -> bool:
        """Give a stored drawing another true digit (its writer changed their mind); returns
        whether it exists. ``ValueError`` for a label that is not 0–9."""
        label = _checked_label(label)
        with self._connect(write=True) as connection:
            return connection.execute("UPDATE digits SET label = ? WHERE id = ?",
                                      (label, int(digit_id))).rowcount > 0

    def delete(self, digit_id: int) -> bool:
        """Remove one labelled drawing (and its answers); returns whether it existed."""
        with self._connect(write=True) as connection:
            return connection.execute("DELETE FROM digits WHERE id = ?", (int(digit_id),)).rowcount > 0

    # -- reading ---------------------------------------------------------------------------
    def digits(self, writer: str | None = None) -> list[StoredDigit]:
        """Every labelled drawing (of ``writer``, in any case, if given), oldest first."""
        where, parameters = (("WHERE writer_key(writer) = ?", (writer_key(writer),)) if writer is not None
                             else ("", ()))
        if not self.path.exists():
            return []
        with self._connect(write=False) as connection:
            rows = connection.execute(
                f"SELECT id, writer, label, picture, model_input, created_at FROM digits {where} ORDER BY id",
                parameters).fetchall()
            answers = self._answers(connection, where, parameters)
        return [StoredDigit(row[0], row[1], row[2], bytes(row[3]), _input_from_bytes(row[4]),
                            answers.get(row[0], ()), row[5]) for row in rows]

    @staticmethod
    def _answers(connection: sqlite3.Connection, where: str,
                 parameters: tuple) -> dict[int, tuple[ModelAnswer, ...]]:
        found: dict[int, list[ModelAnswer]] = {}
        for digit_id, model, digit, confidence in connection.execute(
                "SELECT digit_id, model, digit, confidence FROM answers "
                f"WHERE digit_id IN (SELECT id FROM digits {where}) ORDER BY digit_id, model", parameters):
            found.setdefault(digit_id, []).append(ModelAnswer(model, digit, confidence))
        return {key: tuple(value) for key, value in found.items()}

    def counts(self) -> dict[str, list[int]]:
        """Per writer, how many drawings of each digit 0–9 are stored (no file yet: none).

        A writer is named as first stored; spellings differing only in case (a file written
        before writers were matched so) count as that one writer.
        """
        if not self.path.exists():
            return {}
        with self._connect(write=False) as connection:
            rows = connection.execute("SELECT writer, label, COUNT(*), MIN(id) FROM digits "
                                      "GROUP BY writer, label ORDER BY MIN(id)").fetchall()
        names: dict[str, str] = {}
        counts: dict[str, list[int]] = {}
        for writer, label, count, _ in rows:
            name = names.setdefault(_stored_key(writer), writer)
            counts.setdefault(name, [0] * NUM_CLASSES)[label] += count
        return dict(sorted(counts.items()))

    def writer_counts(self, writer: str) -> list[int]:
        """How many drawings of each digit 0–9 ``writer`` (in any case) has stored."""
        wanted = writer_key(writer)
        return next((count for name, count in self.counts().items() if _stored_key(name) == wanted),
                    [0] * NUM_CLASSES)


def _stored_key(writer: str | None) -> str | None:
    """``writer_key`` of a name already in the file (valid when written), for SQL and merging."""
    return None if writer is None else writer.strip().casefold()


def _input_from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").reshape(INPUT_SHAPE).astype(np.float32)
