"""The labelled-digits database: round trip, writers at once, corrupt, locked and read-only files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlite_support import refuse_preparing

from digitlab.digits_db import (
    SCHEMA_VERSION,
    DigitsDb,
    DigitsDbError,
    ModelAnswer,
    NewDigit,
    default_db_path,
    picture_to_png,
)

ROOT = Path(__file__).resolve().parent.parent


def pad_png(digit: int = 1) -> bytes:
    """A 280×280 black pad with a white stroke, as the drawing pad sends it."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    pen = ImageDraw.Draw(image)
    pen.line([(140, 40), (140 + 5 * digit, 240)], fill=(255, 255, 255, 255), width=22)
    return picture_to_png(image)


def new_digit(writer: str = "me", label: int = 1, seed: int = 0) -> NewDigit:
    model_input = np.random.default_rng(seed).random((28, 28)).astype(np.float32)
    answers = (ModelAnswer("cnn", label, 0.93), ModelAnswer("mlp", (label + 1) % 10, 0.51))
    return NewDigit(writer, label, pad_png(label), model_input, answers)


def test_a_labelled_drawing_comes_back_whole(tmp_path):
    db = DigitsDb(tmp_path / "digits.sqlite")
    digit = new_digit(label=7)
    digit_id = db.add(digit)
    [stored] = db.digits("me")
    assert stored.id == digit_id and stored.writer == "me" and stored.label == 7
    assert stored.picture_png == digit.picture_png
    np.testing.assert_array_equal(stored.model_input, digit.model_input)
    assert stored.answers == (ModelAnswer("cnn", 7, pytest.approx(0.93)), ModelAnswer("mlp", 8, pytest.approx(0.51)))
    assert stored.created_at > 0
    assert db.counts() == {"me": [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]}


def test_the_file_is_in_wal_mode_with_a_schema_version(tmp_path):
    path = tmp_path / "digits.sqlite"
    DigitsDb(path).add(new_digit())
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_delete_removes_one_drawing_and_its_answers(tmp_path):
    db = DigitsDb(tmp_path / "digits.sqlite")
    keep, gone = db.add(new_digit(label=3)), db.add(new_digit(label=3, seed=1))
    assert db.delete(gone) and not db.delete(gone)
    assert [digit.id for digit in db.digits()] == [keep]
    with sqlite3.connect(db.path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM answers WHERE digit_id = ?", (gone,)).fetchone()[0] == 0


def test_relabel_changes_one_drawings_digit_and_nothing_else(tmp_path):
    db = DigitsDb(tmp_path / "digits.sqlite")
    first, second = db.add(new_digit(label=4)), db.add(new_digit(label=4, seed=1))
    assert db.relabel(first, 9) is True
    assert [(digit.id, digit.label) for digit in db.digits("me")] == [(first, 9), (second, 4)]
    assert db.writer_counts("me")[4] == 1 and db.writer_counts("me")[9] == 1
    assert db.relabel(999, 9) is False  # gone: nothing changes
    with pytest.raises(ValueError, match="a digit 0–9"):
        db.relabel(first, 10)
    assert db.digits("me")[0].label == 9


def test_writers_and_counts_are_kept_apart(tmp_path):
    db = DigitsDb(tmp_path / "digits.sqlite")
    db.add_many([new_digit("me", 3), new_digit("me", 3, 1), new_digit("ana", 0)])
    assert db.counts() == {"ana": [1] + [0] * 9, "me": [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]}
    assert db.writer_counts("nobody") == [0] * 10
    assert [digit.label for digit in db.digits("ana")] == [0]



def test_a_writer_is_one_person_whatever_the_case_it_is_typed_in(tmp_path):
    db = DigitsDb(tmp_path / "digits.sqlite")
    db.add_many([new_digit("Ana", 3), new_digit("ana", 4, 1), new_digit(" ANA ", 5, 2), new_digit("Zoë", 0)])
    db.add(new_digit("ZOË", 1))
    assert db.counts() == {"Ana": [0, 0, 0, 1, 1, 1, 0, 0, 0, 0], "Zoë": [1, 1] + [0] * 8}
    assert {digit.writer for digit in db.digits("aNa")} == {"Ana"} and len(db.digits("ana")) == 3
    assert db.writer_counts("zoë")[:2] == [1, 1]
    assert db.spelling("ana") == "Ana" and db.spelling("Ben") == "Ben"


def test_a_file_with_one_writer_in_two_cases_counts_them_together(tmp_path):
    db = DigitsDb(tmp_path / "digits.sqlite")
    db.add(new_digit("ben", 2))
    with sqlite3.connect(db.path) as connection:  # as a file written before names were matched
        connection.execute("UPDATE digits SET writer = 'Ben'")
    db.add(new_digit("ben", 7, 1))
    with sqlite3.connect(db.path) as connection:
        connection.execute("UPDATE digits SET writer = 'ben' WHERE label = 7")
    assert db.counts() == {"Ben": [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]}
    assert sorted(digit.label for digit in db.digits("BEN")) == [2, 7]

def test_no_file_yet_means_no_digits(tmp_path):
    db = DigitsDb(tmp_path / "missing" / "digits.sqlite")
    assert db.digits() == [] and db.counts() == {}
    assert not db.path.exists()


def test_the_path_follows_the_store_or_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("DIGITLAB_DIGITS_DB", raising=False)
    assert default_db_path(tmp_path) == tmp_path / "digits.sqlite"
    monkeypatch.setenv("DIGITLAB_DIGITS_DB", str(tmp_path / "other.sqlite"))
    assert default_db_path(tmp_path) == tmp_path / "other.sqlite"


@pytest.mark.parametrize(("change", "message"), [
    ({"label": 10}, "label must be a digit"),
    ({"writer": ""}, "invalid writer name"),
    ({"writer": "a\nb"}, "invalid writer name"),
    ({"picture_png": b"GIF89a not a png"}, "not a PNG or JPEG"),
    ({"model_input": np.zeros((28, 27))}, "28×28"),
    ({"model_input": np.full((28, 28), 2.0)}, "[0, 1]"),
])
def test_bad_digits_are_refused_and_nothing_is_written(tmp_path, change, message):
    db = DigitsDb(tmp_path / "digits.sqlite")
    good = new_digit()
    bad = NewDigit(**{**good.__dict__, **change})
    with pytest.raises(ValueError, match=message):
        db.add_many([good, bad])
    assert db.digits() == []


def test_two_writers_labelling_at_once_lose_no_row(tmp_path):
    path = tmp_path / "digits.sqlite"
    per_thread = 40
    errors = []

    def label(writer: str) -> None:
        db = DigitsDb(path)  # each session has its own object, as each server process would
        try:
            for index in range(per_thread):
                db.add(new_digit(writer, index % 10, index))
        except Exception as error:  # noqa: BLE001 - collected and asserted on below
            errors.append(error)

    threads = [threading.Thread(target=label, args=(writer,)) for writer in ("ana", "ben")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    counts = DigitsDb(path).counts()
    assert counts == {"ana": [4] * 10, "ben": [4] * 10}


CHILD = """
import sys, numpy as np
from digitlab.digits_db import DigitsDb, NewDigit
from tests_png import png
db = DigitsDb(sys.argv[1])
for index in range(25):
    db.add(NewDigit(sys.argv[2], index % 10, png, np.zeros((28, 28), np.float32)))
"""


def test_two_processes_labelling_at_once_lose_no_row(tmp_path):
    path = tmp_path / "digits.sqlite"
    (tmp_path / "tests_png.py").write_text(f"png = {pad_png()!r}\n")
    (tmp_path / "child.py").write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    children = [subprocess.Popen([sys.executable, str(tmp_path / "child.py"), str(path), writer], env=env,
                                 stderr=subprocess.PIPE, text=True) for writer in ("ana", "ben")]
    outcomes = [(child.returncode, error) for child in children for _, error in [child.communicate(timeout=120)]]
    assert outcomes == [(0, ""), (0, "")]
    assert DigitsDb(path).counts() == {"ana": [3, 3, 3, 3, 3, 2, 2, 2, 2, 2], "ben": [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]}


def test_a_new_file_another_process_is_still_preparing_is_waited_for(tmp_path, monkeypatch):
    db = DigitsDb(tmp_path / "digits.sqlite")
    refusals = refuse_preparing(monkeypatch, DigitsDb)
    db.add(new_digit())
    assert len(refusals) == 2 and DigitsDb(db.path).counts() == {"me": [0, 1] + [0] * 8}


def test_a_corrupt_file_gives_one_clear_error(tmp_path):
    path = tmp_path / "digits.sqlite"
    path.write_bytes(b"this is not an SQLite file at all " * 200)
    db = DigitsDb(path)
    for action in (lambda: db.add(new_digit()), db.digits, db.counts):
        with pytest.raises(DigitsDbError, match="is corrupt") as caught:
            action()
        assert "\n" not in str(caught.value)
    assert path.read_bytes().startswith(b"this is not an SQLite file")  # left as it was


def test_a_locked_file_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr("digitlab.digits_db.BUSY_TIMEOUT_SECONDS", 0.2)
    path = tmp_path / "digits.sqlite"
    DigitsDb(path).add(new_digit())
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        with pytest.raises(DigitsDbError, match="is locked by another program"):
            DigitsDb(path).add(new_digit())
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(DigitsDb(path).digits()) == 1


@pytest.fixture()
def read_only(tmp_path):
    """Make a file read-only, for root too (``chattr +i``); undone after the test."""
    made = []

    def make(path: Path) -> None:
        path.chmod(0o444)
        if os.geteuid() == 0:  # root writes through file modes; an immutable file stops it
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
                pytest.skip("running as root without chattr: cannot make a file read-only")
            made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_a_read_only_file_is_read_but_not_written(tmp_path, read_only):
    path = tmp_path / "digits.sqlite"
    DigitsDb(path).add(new_digit(label=4))
    read_only(path)
    db = DigitsDb(path)
    assert [digit.label for digit in db.digits()] == [4]
    with pytest.raises(DigitsDbError, match="cannot be written") as caught:
        db.add(new_digit())
    assert "\n" not in str(caught.value)
    assert db.counts() == {"me": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]}


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "digits.sqlite"
    DigitsDb(path).add(new_digit())
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(DigitsDbError, match="newer digitlab"):
        DigitsDb(path).digits()
