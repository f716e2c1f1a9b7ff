"""`python -m digitlab` end to end on small data: train, list, evaluate, predict, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from store_support import copy_store

from digitlab.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, mnist_path):
    """A store holding one quick MLP trained through the CLI."""
    store = tmp_path_factory.mktemp("store")
    code = main(["train", "--arch", "mlp", "--epochs", "1", "--train-size", "3000", "--name", "quick",
                 "--models", str(store), "--data", str(mnist_path), "--no-augment", "--validation-fraction", "0.1"])
    assert code == 0
    # These tests read files with the model alone. Its own "not a digit" test, fitted as it was
    # trained, is tested in test_feature_novelty.py; trained on the stand-in digits (smoothed 8×8
    # scans) it finds a pen-drawn 1 unlike everything it learned, which is right but not tested here.
    for statistics in store.glob("*.features.npz"):
        statistics.unlink()
    return store


def _digit_png(path: Path, draw_one: bool = True) -> Path:
    image = Image.new("L", (200, 200), 255)  # black ink on white paper: the polarity is detected
    pen = ImageDraw.Draw(image)
    if draw_one:
        pen.line([(100, 30), (100, 170)], fill=0, width=14)
    image.save(path)
    return path


def test_train_writes_model_and_card(trained_store, capsys):
    card = json.loads((trained_store / "quick.json").read_text())
    assert card["architecture"] == "mlp" and card["epochs_run"] == 1
    assert card["test"]["accuracy"] > 0.8 and len(card["test"]["confusion"]) == 10
    assert card["train_samples"] + card["validation_samples"] == 3000 and card["versions"]["keras"]
    assert abs(card["validation_samples"] - 300) <= 5  # 10 % of each digit, rounded


def test_list_shows_the_headline_and_json(trained_store, capsys):
    assert main(["list", "--models", str(trained_store)]) == 0
    assert "quick — mlp" in capsys.readouterr().out
    assert main(["list", "--models", str(trained_store), "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["name"] == "quick" and entry["usable"] and entry["test_accuracy"] > 0.8


def test_evaluate_matches_the_card(trained_store, mnist_path, capsys):
    assert main(["evaluate", "quick", "--models", str(trained_store), "--data", str(mnist_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    card = json.loads((trained_store / "quick.json").read_text())
    assert result["accuracy"] == pytest.approx(card["test"]["accuracy"], abs=1e-4)


def test_evaluate_scores_models_averaged_and_refuses_an_average_of_one(trained_store, mnist_path, tmp_path,
                                                                       capsys):
    store = tmp_path / "store"
    copy_store(trained_store, store)
    shutil.copy(store / "quick.json", store / "twin.json")  # the same weights: the average reads as one
    assert main(["evaluate", "quick+twin", "--models", str(store), "--data", str(mnist_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    card = json.loads((store / "quick.json").read_text())
    assert result["accuracy"] == pytest.approx(card["test"]["accuracy"], abs=1e-4)
    assert "temperature" not in result  # an average has no temperature of its own
    assert main(["evaluate", "quick+quick", "--models", str(store), "--data", str(mnist_path)]) == 1
    assert "at least two different models" in capsys.readouterr().err


def test_predict_reads_image_files(trained_store, tmp_path, capsys):
    one = _digit_png(tmp_path / "one.png")
    blank = _digit_png(tmp_path / "blank.png", draw_one=False)
    assert main(["predict", str(one), str(blank), "--model", "quick", "--models", str(trained_store), "--json"]) == 0
    first, second = json.loads(capsys.readouterr().out)
    assert first["digit"] == 1 and sum(first["probabilities"]) == pytest.approx(1, abs=1e-3)
    assert second["digit"] is None and second["message"]


def test_predict_notes_strokes_too_heavy_for_the_digits_size(trained_store, tmp_path, capsys):
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(105, 100), (175, 100), (130, 185)], fill=0, width=32, joint="curve")
    image.save(tmp_path / "heavy.png")
    one = _digit_png(tmp_path / "one.png")
    args = ["predict", str(tmp_path / "heavy.png"), str(one), "--model", "quick", "--models", str(trained_store)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("note: the strokes are heavy for a digit this size") == 1
    assert main([*args, "--json"]) == 0
    heavy, regular = json.loads(capsys.readouterr().out)
    assert "thinner pen" in heavy["advice"] and "advice" not in regular


def test_predict_with_models_averaged_says_what_each_one_said(trained_store, tmp_path, capsys):
    store = tmp_path / "store"
    copy_store(trained_store, store)
    shutil.copy(store / "quick.json", store / "twin.json")
    one = _digit_png(tmp_path / "one.png")
    assert main(["predict", str(one), "--model", "quick+twin", "--models", str(store), "--json"]) == 0
    [averaged] = json.loads(capsys.readouterr().out)
    assert main(["predict", str(one), "--model", "quick", "--models", str(store), "--json"]) == 0
    [alone] = json.loads(capsys.readouterr().out)
    assert averaged["digit"] == alone["digit"] == 1 and averaged["by_model"] == {"quick": 1, "twin": 1}
    assert averaged["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-3)
    assert main(["predict", str(one), "--model", "quick+quick", "--models", str(store)]) == 1
    assert "at least two different models" in capsys.readouterr().err


def test_predict_reports_a_non_image_and_exits_non_zero(trained_store, tmp_path, capsys):
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"this is not a picture")
    assert main(["predict", str(fake), "--model", "quick", "--models", str(trained_store)]) == 1
    assert "not a PNG or JPEG" in capsys.readouterr().out


def test_predict_names_a_missing_file_and_a_folder_in_plain_words(trained_store, tmp_path, capsys):
    missing = tmp_path / "missing.png"
    assert main(["predict", str(missing), str(tmp_path), "--model", "quick", "--models", str(trained_store)]) == 1
    assert capsys.readouterr().out.splitlines() == [f"{missing}: error: No such file or directory",
                                                     f"{tmp_path}: error: Is a directory"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--name", "../evil", "--epochs", "1"], "invalid model name"),
        (["train", "--name", "cnn", "--epochs", "1"], "shipped model"),
        (["train", "--name", "quick", "--epochs", "1", "--train-size", "500"], "already exists"),
        (["train", "--name", "new", "--epochs", "0"], "epochs"),
        (["train", "--name", "new", "--learning-rate", "nan", "--epochs", "1"], "learning rate"),
        (["evaluate", "nothere"], "no model named"),
        (["train", "--name", "new", "--epochs", "1", "--watch", "missing.png:7"],
         "--watch missing.png: No such file or directory"),
    ],
)
def test_errors_go_to_stderr_with_exit_code_one(trained_store, mnist_path, capsys, argv, message):
    code = main([*argv, "--models", str(trained_store), "--data", str(mnist_path)])
    captured = capsys.readouterr()
    assert code == 1 and message in captured.err and "Traceback" not in captured.err


def test_missing_data_names_the_env_var(tmp_path, capsys):
    code = main(["train", "--name", "x", "--epochs", "1", "--models", str(tmp_path),
                 "--data", str(tmp_path / "nothing.npz")])
    assert code == 1 and "DIGITLAB_MNIST" in capsys.readouterr().err


def test_module_entry_point_runs(trained_store):
    result = subprocess.run([sys.executable, "-m", "digitlab", "list", "--models", str(trained_store)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and "quick" in result.stdout


def test_ctrl_c_stops_training_and_keeps_the_best_finished_epoch(tmp_path, mnist_path):
    import os
    import signal

    command = [sys.executable, "-m", "digitlab", "train", "--arch", "mlp", "--epochs", "50", "--train-size",
               "2000", "--no-augment", "--name", "interrupted", "--models", str(tmp_path), "--data", str(mnist_path)]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    for line in process.stderr:
        if line.startswith("epoch 1/50"):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    card = json.loads((tmp_path / "interrupted.json").read_text())
    assert card["stopped_early"] and 1 <= card["epochs_run"] < 50


def test_train_waits_in_the_queue_behind_a_run_going_and_can_give_up(tmp_path, mnist_path, capsys):
    from digitlab.jobs.queue import RunQueue, RunRequest, this_worker
    from digitlab.training import TrainConfig

    queue = RunQueue(tmp_path)
    queue.submit([RunRequest(TrainConfig("cnn", epochs=1), "other")], "page-visitor", data_size=60000)
    assert queue.claim(("local",), this_worker(), 1, ("local", "inline")).name == "other"
    code = main(["train", "--arch", "mlp", "--epochs", "1", "--name", "second", "--models", str(tmp_path),
                 "--data", str(mnist_path), "--queue-timeout", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "number 1 in the queue" in err and "'other' (page-visitor) came first" in err
    assert not (tmp_path / "second.json").exists()
    assert [(run.name, run.status) for run in queue.runs()] == [("other", "starting"), ("second", "cancelled")]


def test_a_cli_run_is_recorded_in_the_queue_with_its_owner_and_curves(tmp_path, mnist_path, capsys):
    from digitlab.jobs.queue import RunQueue, cli_owner

    code = main(["train", "--arch", "mlp", "--epochs", "2", "--train-size", "500", "--no-augment", "--name",
                 "queued-run", "--models", str(tmp_path), "--data", str(mnist_path)])
    assert code == 0, capsys.readouterr().err
    [run] = RunQueue(tmp_path).runs()
    assert (run.name, run.status, run.owner, run.executor) == ("queued-run", "done", cli_owner(), "inline")
    assert [row["epoch"] for row in run.history] == [1, 2] and run.card["epochs_run"] == 2
    assert run.submitted_at <= run.started_at <= run.finished_at


def test_refused_settings_leave_the_store_folder_untouched(tmp_path, mnist_path, capsys):
    code = main(["train", "--arch", "mlp", "--epochs", "0", "--name", "x", "--models", str(tmp_path),
                 "--data", str(mnist_path)])
    assert code == 1 and "epochs" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_train_watch_prints_each_pictures_probability_after_every_epoch(tmp_path, mnist_path, capsys):
    one = _digit_png(tmp_path / "one.png")
    code = main(["train", "--arch", "mlp", "--epochs", "2", "--train-size", "1000", "--name", "watched",
                 "--models", str(tmp_path / "store"), "--data", str(mnist_path), "--no-augment",
                 "--watch", f"{one}:1", "--watch", str(one)])
    assert code == 0
    lines = [line.strip() for line in capsys.readouterr().err.splitlines() if line.strip().startswith("watch ")]
    assert len(lines) == 4  # two pictures, two epochs
    assert lines[0].startswith("watch one.png (a 1): ") and "→ reads" in lines[0]
    assert lines[1].startswith("watch one.png: reads ")


def test_train_watch_refuses_a_blank_picture_and_a_fifth_one(tmp_path, mnist_path, capsys):
    blank = _digit_png(tmp_path / "blank.png", draw_one=False)
    one = _digit_png(tmp_path / "one.png")
    base = ["train", "--name", "x", "--epochs", "1", "--models", str(tmp_path / "store"), "--data", str(mnist_path)]
    assert main([*base, "--watch", str(blank)]) == 1
    assert "--watch " in capsys.readouterr().err
    assert main([*base, *["--watch", str(one)] * 5]) == 1
    err = capsys.readouterr().err
    assert "at most 4 pictures" in err and "Traceback" not in err
    assert not (tmp_path / "store" / "x.json").exists()
