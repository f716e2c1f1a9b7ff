"""The Train page's queue under AppTest, without training: a sweep's variants ranked and overlaid,
a sweep queued from the page (all or none), and runs left by a dead server shown as interrupted.

The queue is filled directly (a finished sweep, a run "going" under this test process, so the
page's own executor has no free slot and starts nothing), so these tests need no MNIST training.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from test_jobs import config, write_tiny_mnist

from digitlab.jobs.queue import RunQueue, RunRequest, this_worker

TRAIN_PAGE = "app_pages/train.py"
SWEEP = {"my-sweep-adam-lr1e-3": 0.91, "my-sweep-adam-lr3e-3": 0.95, "my-sweep-sgd-lr1e-3": 0.88}


def epoch_event(epoch: int, val_accuracy: float) -> dict:
    return {"kind": "epoch", "epoch": epoch, "epochs": 2, "batch": 5, "batches": 5, "elapsed": float(epoch),
            "eta": 0.0, "logs": {"loss": 1.0 / epoch, "accuracy": 0.8, "val_loss": 0.5, "val_accuracy": val_accuracy}}


@pytest.fixture()
def page_env(tmp_path: Path, monkeypatch) -> RunQueue:
    store = tmp_path / "models"
    store.mkdir()
    monkeypatch.setenv("DIGITLAB_MODELS", str(store))
    monkeypatch.setenv("DIGITLAB_MNIST", str(write_tiny_mnist(tmp_path / "tiny.npz")))
    return RunQueue(store)


def finished_sweep(queue: RunQueue) -> None:
    """Three finished variants with two epochs each; the best validation accuracy is SWEEP's."""
    requests = [RunRequest(config(), name) for name in SWEEP]
    for run in queue.submit(requests, "someone", data_size=300, sweep="my-sweep", owner_label="visitor abcd"):
        queue.claim(("local",), "gone-host:1", 9, ("local", "inline"))
        best = SWEEP[run.name]
        queue.record_progress(run.id, epochs=[epoch_event(1, best - 0.05), epoch_event(2, best)], last_batch=None)
        queue.finish(run.id, "done", card={"test_accuracy": best - 0.01, "epochs_run": 2})


def occupy_the_machine(queue: RunQueue) -> int:
    """A run 'going' under this process: alive, so nobody marks it interrupted; the slot is taken."""
    [run] = queue.submit([RunRequest(config(), "busy")], "someone", data_size=300, owner_label="visitor abcd")
    queue.claim(("local",), this_worker(), 1, ("local", "inline"))
    return run.id


def test_a_sweep_is_ranked_by_validation_accuracy_and_its_curves_overlaid(page_env, make_app):
    finished_sweep(page_env)
    app = make_app(TRAIN_PAGE)
    first = page_env.sweep_runs("my-sweep")[0]
    app.selectbox(key="train_watch").set_value(first.id).run()
    assert not app.exception
    assert any(text.startswith("**Sweep my-sweep** — 3 variants") for text in [m.value for m in app.markdown])
    [table] = [frame.value for frame in app.dataframe if "rank" in frame.value.columns]
    assert list(table["model"]) == ["my-sweep-adam-lr3e-3", "my-sweep-adam-lr1e-3", "my-sweep-sgd-lr1e-3"]
    assert list(table["val accuracy"]) == pytest.approx([0.95, 0.91, 0.88])
    assert list(table["rank"]) == [1, 2, 3]
    overlays = [chart for chart in app.get("vega_lite_chart")
                if '"color": {"field": "run"' in chart.proto.spec and "validation accuracy" in chart.proto.spec]
    assert len(overlays) == 1  # one chart, a line per variant


def test_a_sweep_from_the_page_queues_every_variant_or_none(page_env, make_app):
    occupy_the_machine(page_env)
    app = make_app(TRAIN_PAGE)
    app.text_input(key="train_name_mlp").set_value("lab")
    app.text_input(key="train_size_mlp").set_value("300")
    app.text_input(key="train_batch_mlp").set_value("32")
    app.text_input(key="sweep_rates").set_value("1e-3, fast")
    app.button(key="sweep_start").click().run()
    assert [e.value for e in app.error] == ["Sweep not started: learning rate 'fast' is not a float; write e.g. "
                                            "learning rate values separated by commas"]
    assert [run.name for run in page_env.runs()] == ["busy"]
    app.text_input(key="sweep_rates").set_value("1e-3,3e-3")
    app.button(key="sweep_start").click().run()
    assert [e.value for e in app.error] == [] and [e.value for e in app.toast] == [
        "Queued a sweep of 4 runs: lab-adam-lr1e-3, lab-adam-lr3e-3, "
                                              "lab-sgd-lr1e-3, lab-sgd-lr3e-3."]
    waiting = [run for run in page_env.runs() if run.status == "queued"]
    assert [(run.name, run.position, run.sweep) for run in waiting] == [
        ("lab-adam-lr1e-3", 1, "lab"), ("lab-adam-lr3e-3", 2, "lab"), ("lab-sgd-lr1e-3", 3, "lab"),
        ("lab-sgd-lr3e-3", 4, "lab")]
    assert {run.config["optimizer"] for run in waiting} == {"adam", "sgd"}
    app.button(key="train_cancel").click().run()  # the owner takes the watched variant off the queue
    assert page_env.get(waiting[0].id).status == "cancelled"
    for run in waiting[1:]:
        page_env.request_stop(run.id, run.owner, keep=False)


def test_runs_of_a_server_that_died_are_shown_interrupted(page_env, make_app):
    [run] = page_env.submit([RunRequest(config(), "orphan")], "someone", data_size=300)
    page_env.claim(("local",), "this-host-no-more:999999", 1, ("local", "inline"))
    page_env.record_progress(run.id, epochs=[epoch_event(1, 0.5)], last_batch=None)
    assert page_env.recover(now=time.time() + 31) == [run.id]  # its supervisor has been silent for 31 s
    app = make_app(TRAIN_PAGE)
    assert not app.exception
    assert any("Interrupted: the process supervising it ended before it finished" in w.value for w in app.warning)
    assert np.array_equal(app.dataframe[0].value["status"].to_numpy(), np.array(["interrupted"], dtype=object))


def test_a_misconfigured_executor_is_one_line_on_the_page(page_env, make_app, monkeypatch):
    monkeypatch.setenv("DIGITLAB_CONCURRENT_RUNS", "many")
    app = make_app(TRAIN_PAGE)
    assert not app.exception
    assert [e.value for e in app.error] == ["Training is not available on this server: $DIGITLAB_CONCURRENT_RUNS "
                                            "must be a whole number ≥ 1, got 'many'"]


def test_the_evaluate_page_ranks_a_sweep_and_overlays_its_curves(tmp_path, monkeypatch, make_app, mnist):
    from conftest import _shipped_mlp_as

    from digitlab.store import ModelStore

    store = ModelStore(tmp_path / "models")
    _shipped_mlp_as(store, "mlp-copy", mnist.subset(None, 200))  # the Evaluate page needs one usable model
    monkeypatch.setenv("DIGITLAB_MODELS", str(store.root))
    monkeypatch.setenv("DIGITLAB_MNIST", str(write_tiny_mnist(tmp_path / "tiny.npz")))
    queue = RunQueue(store.root)
    finished_sweep(queue)
    app = make_app("app_pages/evaluate.py")
    assert not app.exception
    assert any("Sweeps" in header.value for header in app.subheader)
    assert any(text.startswith("**Sweep my-sweep** — 3 variants") for text in [m.value for m in app.markdown])
    [table] = [frame.value for frame in app.dataframe if "rank" in frame.value.columns]
    assert list(table["model"]) == ["my-sweep-adam-lr3e-3", "my-sweep-adam-lr1e-3", "my-sweep-sgd-lr1e-3"]
    overlays = [chart for chart in app.get("vega_lite_chart") if '"color": {"field": "run"' in chart.proto.spec]
    assert len(overlays) == 1
