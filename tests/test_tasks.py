"""ablation.data.tasks: scores of classification (any number of classes) and regression outputs."""

from __future__ import annotations

import numpy as np
import pytest

from ablation.data import tasks


def test_classification_scores_any_number_of_classes():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]]))
    y = np.array([0, 2, 1])
    s = tasks.score("classification", logits, y)
    assert s["error"] == pytest.approx(1 / 3) and s["accuracy"] == pytest.approx(2 / 3)
    assert s["loss"] == pytest.approx(-np.mean(np.log([0.7, 0.8, 0.4])))
    probs = np.exp(logits)
    assert tasks.score("classification", probs, y, probabilities=True)["loss"] == pytest.approx(s["loss"])
    binary = tasks.score("classification", np.array([[2.0, -1.0], [0.0, 1.0]]), np.array([1, 1]))
    assert binary["error"] == 0.5


def test_regression_scores_are_over_every_target():
    pred = np.array([[1.0, 2.0], [3.0, 5.0]])
    y = np.array([[1.0, 0.0], [3.0, 4.0]])
    s = tasks.score("regression", pred, y)
    assert s == pytest.approx({"loss": 5 / 4, "rmse": np.sqrt(5 / 4), "mae": 3 / 4})
    flat = tasks.score("regression", np.array([[2.0], [4.0]]), np.array([1.0, 4.0]))  # (n,) targets too
    assert flat["mae"] == pytest.approx(0.5)


def test_mean_baseline_and_names():
    y_train, y = np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]])
    assert tasks.mean_baseline_rmse(y_train, y) == pytest.approx(np.sqrt((0 + 4) / 2))
    assert tasks.objective("regression", True) == "val_rmse" and tasks.objective("classification", False) == "test_error"
    with pytest.raises(ValueError, match=r"argument 'task': expected one of classification, regression. "
                                         r"Received: task='ranking'"):
        tasks.primary("ranking")


def test_epoch_logs_of_a_member():
    logs = {"m1_data_loss": 0.5, "m1_rmse": 0.7, "m1_mae": 0.6, "m0_data_loss": 9.0}
    assert tasks.epoch_logs("regression", logs, "m1_") == {"loss": 0.5, "rmse": 0.7, "mae": 0.6}
    assert np.isnan(tasks.epoch_logs("classification", {}, "")["accuracy"])
