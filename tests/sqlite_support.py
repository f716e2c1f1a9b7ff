"""What the SQLite stores' tests share: a store whose first preparations lose the race to set up WAL."""

from __future__ import annotations

import sqlite3


def refuse_preparing(monkeypatch, store_class: type, times: int = 2) -> list[int]:
    """Make ``store_class._prepare`` fail ``times`` times as SQLite fails the loser of the race to
    switch a new file to WAL, then succeed; returns the list that counts the refusals."""
    prepare, refusals = store_class._prepare, []

    def busy_at_first(self, connection):
        if len(refusals) < times:
            refusals.append(1)
            raise sqlite3.OperationalError("database is locked")
        prepare(self, connection)

    monkeypatch.setattr(store_class, "_prepare", busy_at_first)
    return refusals
