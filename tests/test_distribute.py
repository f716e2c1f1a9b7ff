"""Training moves to more devices unchanged: the same `train()` under a MirroredStrategy."""

from __future__ import annotations

import json
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
