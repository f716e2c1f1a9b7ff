"""Sweeps: every combination of the values given, named after what varies, ranked by validation
accuracy; and ``digitlab sweep`` end to end on a tiny synthetic MNIST (no real MNIST needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_jobs import config, make_store, write_tiny_mnist

from digitlab.cli import main
from digitlab.jobs.queue import QueuedRun, RunQueue
from digitlab.jobs.sweep import parse_values, rank_key, ranked, rate_label, sweep_requests


def test_a_sweep_is_every_optimizer_times_every_rate_named_after_what_varies():
    requests = sweep_requests(config(), "lenet", learning_rates=[1e-3, 3e-3], optimizers=["adam", "sgd"])
    assert [request.name for request in requests] == ["lenet-adam-lr1e-3", "lenet-adam-lr3e-3",
                                                      "lenet-sgd-lr1e-3", "lenet-sgd-lr3e-3"]
    assert [(r.config.optimizer, r.config.learning_rate) for r in requests] == [
        ("adam", 1e-3), ("adam", 3e-3), ("sgd", 1e-3), ("sgd", 3e-3)]
    assert {r.config.epochs for r in requests} == {config().epochs}  # everything else as given
    assert [r.name for r in sweep_requests(config(), "m", learning_rates=[0.0025])] == ["m-lr2_5e-3"]


@pytest.mark.parametrize(("text", "message"), [("1e-3,fast", "learning rate 'fast' is not a float"),
                                               ("", "learning rate '' is not a float")])
def test_unreadable_values_are_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_values(text, float, "learning rate")


def test_oversized_or_repeated_sweeps_are_refused():
    with pytest.raises(ValueError, match="at most 24 variants, this one asks for 25"):
        sweep_requests(config(), "big", learning_rates=[i / 1000 for i in range(1, 26)])
    with pytest.raises(ValueError, match="a learning rate is given twice"):
        sweep_requests(config(), "twice", learning_rates=[1e-3, 1e-3])
    assert rate_label(0.01) == "1e-2"


def _run(run_id: int, best: float | None) -> QueuedRun:
    epochs = () if best is None else ({"epoch": 1, "logs": {"val_accuracy": best - 0.1}},
                                      {"epoch": 2, "logs": {"val_accuracy": best}})
    return QueuedRun(run_id, f"r{run_id}", {}, "o", "o", "local", "s", "done", 0.0, epochs=epochs)


def test_variants_rank_by_their_best_validation_accuracy_unfinished_last():
    runs = [_run(1, 0.90), _run(2, None), _run(3, 0.97), _run(4, 0.93)]
    assert [run.id for run in ranked(runs)] == [3, 4, 1, 2]
    assert rank_key(runs[1])[0] is True


@pytest.mark.slow
def test_the_sweep_command_trains_every_variant_and_prints_them_ranked(tmp_path: Path, capsys):
    data = write_tiny_mnist(tmp_path / "tiny.npz")
    store = make_store(tmp_path / "models")
    code = main(["sweep", "--arch", "mlp", "--learning-rate", "1e-3,3e-2", "--epochs", "2", "--train-size", "300",
                 "--batch-size", "30", "--validation-fraction", "0.2", "--no-augment", "--name", "sw",
                 "--models", str(store), "--data", str(data), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)
    assert sorted(row["name"] for row in rows) == ["sw-lr1e-3", "sw-lr3e-2"]
    assert [row["rank"] for row in rows] == [1, 2] and rows[0]["val_accuracy"] >= rows[1]["val_accuracy"]
    assert all(row["status"] == "done" and (store / f"{row['name']}.json").exists() for row in rows)
    assert "sw-lr1e-3: epoch 2/2" in err
    runs = RunQueue(store).sweep_runs("sw")
    assert [run.name for run in runs] == ["sw-lr1e-3", "sw-lr3e-2"] and all(run.executor == "local" for run in runs)
    assert runs[0].finished_at <= runs[1].started_at  # locally, one after another
