"""Learning from teachers: the targets blend label and teachers, a student follows its teacher,
and the command line records the teachers or refuses a missing one in one line."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from digitlab.cli import main
from digitlab.config import TrainConfig
from digitlab.distillation import Teacher
from digitlab.training import train

QUICK = dict(epochs=1, batch_size=64, train_size=3000, validation_fraction=0.1, augment=False)


def _always(probabilities: list[float]) -> keras.Model:
    """A model that gives every picture the same probabilities."""
    inputs = keras.Input((28, 28))
    flat = keras.layers.Flatten()(inputs)
    logits = keras.layers.Dense(10, kernel_initializer="zeros",
                                bias_initializer=keras.initializers.Constant(np.log(probabilities)))(flat)
    return keras.Model(inputs, keras.layers.Softmax()(logits))


def _one_hot_ish(digit: int, rest: float = 0.01) -> list[float]:
    values = [rest] * 10
    values[digit] = 1 - 9 * rest
    return values


def test_targets_blend_the_label_with_the_teachers_calibrated_average():
    sure_three, sure_five = _one_hot_ish(3), _one_hot_ish(5)
    teacher = Teacher((_always(sure_three), _always(sure_five)), (1.0, 2.0), weight=0.25)
    targets = teacher.targets(tf.zeros([2, 28, 28]), tf.constant([7, 3])).numpy()

    softened_five = np.sqrt(sure_five) / np.sqrt(sure_five).sum()  # temperature 2
    expected_teacher = (np.array(sure_three) + softened_five) / 2
    np.testing.assert_allclose(targets[0], 0.75 * np.eye(10)[7] + 0.25 * expected_teacher, atol=1e-5)
    np.testing.assert_allclose(targets.sum(axis=1), [1.0, 1.0], atol=1e-5)
    assert targets[1, 3] > 0.75  # label and teacher agree


def test_a_student_follows_its_teacher(small_data):
    teacher = Teacher((_always(_one_hot_ish(3)),), (1.0,), weight=1.0)  # "everything is a 3"
    result = train(TrainConfig("mlp", learning_rate=1e-3, teachers=["always-3"], teacher_weight=1.0, **QUICK),
                   small_data, teacher=teacher)
    answers = result.model(small_data.x_test[:200].astype(np.float32) / 255.0, training=False).numpy().argmax(axis=1)
    assert (answers == 3).mean() > 0.95


def test_teachers_named_but_not_loaded_are_refused(small_data):
    with pytest.raises(ValueError, match="teachers"):
        train(TrainConfig("mlp", teachers=["cnn"], **QUICK), small_data)


@pytest.mark.parametrize("change", [{"teacher_weight": 0.0}, {"teacher_weight": 1.5},
                                    {"teacher_weight": float("nan")}, {"teachers": "cnn"}])
def test_bad_teacher_settings_are_refused_before_any_work(small_data, change):
    with pytest.raises(ValueError, match="teacher"):
        train(TrainConfig("mlp", **{**QUICK, **change}), small_data)


def test_the_cli_trains_with_a_teacher_and_records_it(tmp_path, mnist_path, capsys):
    common = ["--epochs", "1", "--train-size", "3000", "--no-augment", "--models", str(tmp_path),
              "--data", str(mnist_path)]
    assert main(["train", "--arch", "mlp", "--name", "teacher", *common]) == 0
    assert main(["train", "--arch", "mlp", "--name", "student", "--teacher", "teacher",
                 "--teacher-weight", "0.3", *common]) == 0
    card = json.loads((tmp_path / "student.json").read_text())
    assert card["config"]["teachers"] == ["teacher"] and card["config"]["teacher_weight"] == 0.3
    assert card["teacher_files"] == [json.loads((tmp_path / "teacher.json").read_text())["model_file"]]
    assert card["test"]["accuracy"] > 0.8


def test_a_missing_teacher_is_one_line_and_nothing_is_written(tmp_path, mnist_path, capsys):
    code = main(["train", "--arch", "mlp", "--name", "student", "--teacher", "nosuch", "--epochs", "1",
                 "--models", str(tmp_path), "--data", str(mnist_path)])
    error = capsys.readouterr().err
    assert code == 1 and "no model named 'nosuch'" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "student.json").exists()
