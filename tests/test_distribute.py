"""Training moves to more devices unchanged: the same `train()` under a MirroredStrategy; the
multi-worker path that does not work with Keras 3 is refused in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from digitlab.data import load_mnist
from digitlab.training import TrainConfig, train
from digitlab.inference import Predictor
from digitlab.evaluation import evaluate
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
data = load_mnist(sys.argv[1]).subset(2000, 500)
result = train(TrainConfig("mlp", epochs=1, batch_size=64, augment=False), data, strategy=strategy)
score = evaluate(Predictor(result.model), data.x_test, data.y_test)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "accuracy": score.accuracy}))
"""


@pytest.mark.slow
def test_training_under_a_mirrored_strategy_on_two_logical_cpus(mnist_path):
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(mnist_path)], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["accuracy"] > 0.75


def test_multi_worker_training_is_refused_in_one_line_without_tensors(tmp_path, mnist_path):
    """The issue's command: two loopback workers under TF_CONFIG used to print a whole batch."""
    tf_config = {"cluster": {"worker": ["127.0.0.1:23456", "127.0.0.1:23457"]}, "task": {"type": "worker", "index": 0}}
    result = subprocess.run(
        [sys.executable, "-m", "digitlab", "train", "--arch", "mlp", "--epochs", "1", "--train-size", "4000",
         "--no-augment", "--distribute", "--models", str(tmp_path), "--name", "mw", "--data", str(mnist_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "3"})
    ours = [line for line in result.stderr.splitlines() if line.startswith("digitlab")]  # not TF's start-up log
    assert result.returncode == 1
    assert ours == ["digitlab train: error: multi-worker training (TF_CONFIG) is not supported: Keras 3's fit "
                     "fails under MultiWorkerMirroredStrategy (keras-team/keras#20585). --distribute uses the GPUs "
                     "of one host; to use several machines, run several runs at once on a Ray cluster "
                     "(--ray ADDRESS)"]
    assert "PerReplica" not in result.stderr and not (tmp_path / "mw.json").exists()
