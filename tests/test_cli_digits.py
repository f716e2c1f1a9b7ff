"""``digitlab digits list / import / export`` and ``evaluate --on writer:NAME``, with UCI digits (no MNIST)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from handwriting_support import store_tiny_model, uci_pictures

from digitlab.cli import main
from digitlab.digits_db import DigitsDb


@pytest.fixture()
def db_path(tmp_path) -> Path:
    return tmp_path / "digits.sqlite"


def digit_file(path: Path, count: int = 20, **override) -> Path:
    pictures, labels = uci_pictures(count)
    arrays = {"images": pictures, "labels": labels, **override}
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def run(*args: str) -> int:
    return main(list(args))


def test_import_then_list_counts_per_writer_and_digit(tmp_path, db_path, capsys):
    assert run("digits", "import", str(digit_file(tmp_path / "mine.npz")), "--writer", "ana",
               "--digits-db", str(db_path)) == 0
    assert "imported 20 digits for 'ana'" in capsys.readouterr().out
    assert run("digits", "list", "--json", "--digits-db", str(db_path)) == 0
    [row] = json.loads(capsys.readouterr().out)
    _, labels = uci_pictures(20)
    assert row == {"writer": "ana", "digits": 20, "per_digit": np.bincount(labels, minlength=10).tolist()}
    assert run("digits", "list", "--digits-db", str(db_path)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["writer", "0"] and lines[1].split()[0] == "ana" and lines[1].split()[-1] == "20"


def test_export_writes_a_file_that_imports_back_to_the_same_inputs(tmp_path, db_path, capsys):
    run("digits", "import", str(digit_file(tmp_path / "mine.npz", 12)), "--writer", "me", "--digits-db", str(db_path))
    out = tmp_path / "out.npz"
    assert run("digits", "export", "--writer", "me", str(out), "--digits-db", str(db_path)) == 0
    with np.load(out, allow_pickle=False) as exported:
        assert exported["images"].shape == (12, 64, 64) and exported["images"].dtype == np.uint8  # as imported
        np.testing.assert_array_equal(exported["labels"], uci_pictures(12)[1])
    assert run("digits", "import", str(out), "--writer", "again", "--digits-db", str(db_path)) == 0
    db = DigitsDb(db_path)
    first, second = db.digits("me"), db.digits("again")
    assert [d.label for d in first] == [d.label for d in second]
    difference = max(np.abs(a.model_input - b.model_input).max() for a, b in zip(first, second, strict=True))
    assert difference < 0.02  # the same pictures give the same inputs
    assert not list(tmp_path.glob(".tmp-*"))


def test_export_of_a_writer_without_digits_says_so(tmp_path, db_path, capsys):
    assert run("digits", "export", "--writer", "nobody", str(tmp_path / "x.npz"), "--digits-db", str(db_path)) == 1
    assert "'nobody' has no labelled digits" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def _pickled(path: Path) -> Path:
    np.savez(path, images=np.array([object()], dtype=object), labels=np.array([1]))
    return path


def _not_zip(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"images": [1, 2, 3]}))
    return path


BAD_FILES = {
    "not an npz": (_not_zip, "is not an .npz file"),
    "pickled objects": (_pickled, "pickled Python objects"),
    "missing labels": (lambda p: digit_file(p, labels=None), "lacks the key(s) labels"),
    "missing images": (lambda p: digit_file(p, images=None), "lacks the key(s) images"),
    "float images": (lambda p: digit_file(p, images=np.zeros((3, 28, 28), np.float32)), "must be uint8"),
    "flat images": (lambda p: digit_file(p, images=np.zeros((3, 784), np.uint8)), "must be N×H×W"),
    "tiny images": (lambda p: digit_file(p, images=np.zeros((3, 4, 4), np.uint8), labels=np.arange(3)),
                    "each side must be"),
    "label out of range": (lambda p: digit_file(p, 5, labels=np.array([1, 2, 10, 3, -1])), "label 10 (entry 2)"),
    "fewer labels": (lambda p: digit_file(p, 5, labels=np.arange(4)), "4 entries for 5 pictures"),
    "float labels": (lambda p: digit_file(p, 5, labels=np.ones(5) * 1.5), "must be N integers"),
    "blank picture": (lambda p: digit_file(p, 3, images=np.zeros((3, 28, 28), np.uint8)), "holds no digit"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_is_refused_with_what_is_wrong_and_nothing_is_imported(tmp_path, db_path, capsys, kind):
    make, message = BAD_FILES[kind]
    run("digits", "import", str(digit_file(tmp_path / "good.npz", 4)), "--writer", "me", "--digits-db", str(db_path))
    capsys.readouterr()
    assert run("digits", "import", str(make(tmp_path / "bad.npz")), "--writer", "me",
               "--digits-db", str(db_path)) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert sum(DigitsDb(db_path).writer_counts("me")) == 4


def test_a_corrupt_database_is_one_line_on_the_command_line(tmp_path, db_path, capsys):
    db_path.write_bytes(b"garbage" * 1000)
    assert run("digits", "list", "--digits-db", str(db_path)) == 1
    err = capsys.readouterr().err
    assert "is corrupt" in err and err.count("\n") == 1


def test_evaluate_on_a_writer_scores_the_model_on_their_digits(tmp_path, db_path, capsys):
    store = store_tiny_model(tmp_path / "models")
    run("digits", "import", str(digit_file(tmp_path / "mine.npz", 60)), "--writer", "me", "--digits-db", str(db_path))
    capsys.readouterr()
    assert run("evaluate", "tiny", "--on", "writer:me", "--models", str(store), "--digits-db", str(db_path),
               "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["digits"] == 60 and result["correct"] + result["incorrect"] == 60
    assert result["accuracy"] > 0.5  # far above chance (10 %)
    assert len(result["misread"]) == result["incorrect"] and len(result["per_digit"]) == 10
    assert run("evaluate", "tiny", "--on", "writer:nobody", "--models", str(store), "--digits-db", str(db_path)) == 1
    assert "'nobody' has no labelled digits" in capsys.readouterr().err


def test_evaluate_refuses_an_unknown_test_set(capsys):
    with pytest.raises(SystemExit):
        run("evaluate", "tiny", "--on", "writer:")
    err = capsys.readouterr().err
    assert "unknown test set 'writer:'" in err and "writer:NAME" in err


@pytest.mark.parametrize("arguments", [("finetune", "--help"), ("digits", "list"), ("export", "--help")])
def test_digits_and_help_do_not_import_tensorflow(tmp_path, arguments):
    import os
    import subprocess
    import sys

    env = {**os.environ, "DIGITLAB_DIGITS_DB": str(tmp_path / "digits.sqlite")}
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "digitlab", *arguments], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert "tensorflow" not in imported and "keras" not in imported


def test_export_puts_pictures_of_different_sizes_on_one_field(tmp_path, db_path, capsys):
    from digitlab.digits_db import NewDigit, picture_to_png
    from digitlab.preprocess import preprocess

    run("digits", "import", str(digit_file(tmp_path / "mine.npz", 3)), "--writer", "me", "--digits-db", str(db_path))
    pad = np.zeros((280, 280), np.uint8)
    pad[40:240, 130:152] = 255  # a 1 drawn on the pad
    DigitsDb(db_path).add(NewDigit("me", 1, picture_to_png(pad), preprocess(pad).image))
    out = tmp_path / "out.npz"
    assert run("digits", "export", "--writer", "me", str(out), "--digits-db", str(db_path)) == 0
    with np.load(out, allow_pickle=False) as exported:
        assert exported["images"].shape == (4, 280, 280)
    assert run("digits", "import", str(out), "--writer", "again", "--digits-db", str(db_path)) == 0
    assert sum(DigitsDb(db_path).writer_counts("again")) == 4
